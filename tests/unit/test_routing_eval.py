"""The routing evaluation set and the evaluation's arithmetic."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest

from evals.routing import Scores, load_examples, relative_cost, threshold_for_share

POLICY = {
    "simple": {"greeting", "factual_lookup", "definition", "translation", "grammar_fix", "classification_extraction",
               "short_summary", "simple_list_format"},
    "complex": {"multi_step_reasoning", "proof_computation", "code", "analysis_comparison", "planning_design",
                "long_form_writing"},
}
EXAMPLES = load_examples()


def test_the_set_is_large_balanced_and_covers_the_policy():
    assert len(EXAMPLES) >= 300
    assert len({ex.id for ex in EXAMPLES}) == len({" ".join(ex.text.split()) for ex in EXAMPLES}) == len(EXAMPLES)
    labels = Counter(ex.label for ex in EXAMPLES)
    assert set(labels) == {"simple", "complex"} and min(labels.values()) >= 0.4 * len(EXAMPLES)
    for ex in EXAMPLES:
        assert ex.category in POLICY[ex.label], ex.id  # every label follows the policy's categories
    assert {ex.category for ex in EXAMPLES} == POLICY["simple"] | POLICY["complex"]
    assert len({ex.language for ex in EXAMPLES}) >= 5
    notes = Counter(ex.note for ex in EXAMPLES)
    assert notes["short_but_hard"] >= 30 and notes["long_but_easy"] >= 30
    assert all(ex.label == "complex" for ex in EXAMPLES if ex.note == "short_but_hard")
    assert all(ex.label == "simple" for ex in EXAMPLES if ex.note == "long_but_easy")


def _words(text: str) -> frozenset[str]:
    """Lower-case words; for text without Latin letters (Chinese, Japanese), the characters."""
    words = re.findall(r"\w+", text.lower())
    return frozenset(words) if re.search(r"[a-z]", text.lower()) else frozenset(text)


def test_no_prompt_is_a_near_duplicate_of_another():
    """Sets written by different people converge on classic prompts; a near
    copy in the tuning split would leak into the held-out figures."""
    words = [(ex.id, _words(ex.text)) for ex in EXAMPLES]
    close = [
        (a, b)
        for i, (a, wa) in enumerate(words)
        for b, wb in words[i + 1 :]
        if len(wa & wb) >= 0.5 * len(wa | wb)
    ]
    assert not close


def test_the_split_is_fixed_by_the_id_and_the_held_out_part_is_sizeable():
    for ex in EXAMPLES:
        held = int(hashlib.sha256(ex.id.encode()).hexdigest()[:8], 16) % 10 < 4
        assert ex.split == ("heldout" if held else "tune"), ex.id
    heldout = [ex for ex in EXAMPLES if ex.split == "heldout"]
    assert len(heldout) >= 100 and {ex.label for ex in heldout} == {"simple", "complex"}


def test_scores_count_complex_as_the_positive_class():
    s = Scores.of([("complex", "complex"), ("complex", "simple"), ("simple", "complex"), ("simple", "simple"),
                   ("simple", "simple")])
    assert (s.tp, s.fn, s.fp, s.tn) == (1, 1, 1, 2)
    assert (s.accuracy, s.precision, s.recall, s.large_share) == (0.6, 0.5, 0.5, 0.4)


def test_cost_is_relative_to_sending_everything_to_the_large_model():
    from harpoon.catalog import load_catalog

    catalog = load_catalog()
    ratio = catalog.get("gemma-270m").price_per_gpu_second / catalog.get("qwen-30b").price_per_gpu_second
    assert relative_cost(["complex"] * 4) == 1.0
    assert relative_cost(["simple"] * 4) == pytest.approx(ratio)
    assert relative_cost(["simple", "complex"]) == pytest.approx((1 + ratio) / 2)


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_calibration_hits_the_target_share(share):
    scores = [i / 100 for i in range(1, 100)]
    t = threshold_for_share(scores, share)
    achieved = sum(1 for s in scores if s >= t) / len(scores)
    assert abs(achieved - share) <= 1 / len(scores) + 1e-9


def test_heldout_quality_does_not_fall_below_the_measured_floor():
    """A regression guard, not the goal: the held-out figures measured when the
    classifier was last trained (accuracy 0.861, precision 0.897, recall 0.824
    on 1,487 prompts; docs/routing.md), a little below. Issue 5's target, 0.90
    accuracy and 0.90 complex recall, is not met."""
    from harpoon.classifier import classify

    held = [ex for ex in EXAMPLES if ex.split == "heldout"]
    s = Scores.of((ex.label, classify(ex.text).tier) for ex in held)
    assert s.accuracy >= 0.855 and s.precision >= 0.89 and s.recall >= 0.81, (s.accuracy, s.precision, s.recall)


def test_the_learned_weights_were_trained_on_this_tuning_split_only():
    """router_weights.json records a digest of the ids it was trained on: they
    must be exactly the tuning split of the data in this repository (retrain
    with `make train-routing` after changing the data)."""
    import json

    from evals.train_router import WEIGHTS_FILE, ids_digest

    model = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    tune = [ex.id for ex in EXAMPLES if ex.split == "tune"]
    assert model["trained_on"] == {"split": "tune", "prompts": len(tune), "ids_sha256": ids_digest(tune)}
    assert model["bias"] == 0.0  # the prior is the rules' BIAS; the learned part only moves prompts by their words
    assert all(k[:2] in ("w:", "b:", "c:") for k in model["weights"])


def test_training_is_deterministic_and_learns_a_word():
    from evals.train_router import fit

    # 100 prompts: "zork" in 4 complex ones, "blip" in 4 simple ones, every "pad" word once.
    rows = [(0.0, ["w:zork", f"w:pad{i}"], 1.0, f"a{i}") for i in range(4)]
    rows += [(0.0, ["w:blip", f"w:pad{i + 4}"], 0.0, f"b{i}") for i in range(4)]
    rows += [(0.0, [f"w:pad{i + 8}"], float(i % 2), f"c{i}") for i in range(92)]
    first, second = fit(rows), fit(list(rows))
    assert first == second
    bias, weights = first
    assert weights["w:zork"] > 0 > weights["w:blip"]
    assert not any(k.startswith("w:pad") for k in weights)  # seen in one prompt each: below MIN_COUNT


def test_inference_counts_exactly_the_features_training_saw():
    """_learned_z looks words up without building feature names (for speed);
    it must add up the same features _learned_features gives training."""
    import math

    from harpoon import classifier as c

    bias, _, _, _ = c._learned_model()
    weights = json.loads(c._WEIGHTS_FILE.read_text(encoding="utf-8"))["weights"]
    for ex in EXAMPLES[::7]:
        z, used = c._learned_z(ex.text)
        expected = [f for f in c._learned_features(ex.text) if f in weights]
        assert sorted(name for name, _ in used) == sorted(expected), ex.id
        assert z == bias + math.fsum(weights[f] for f in expected), ex.id
