"""Train the classifier's learned correction on the tuning split.

    python -m evals.train_router [--cv K]      K-fold cross-validation on the tuning split, per L2 strength
    python -m evals.train_router --write       train on the whole tuning split, write the weights file

The correction is a logistic regression over words, word pairs and CJK
character pairs, fitted with the rules' log-odds as a fixed offset: it learns
only what the hand-written cues get wrong. Training is deterministic (fixed
seed and order) and uses the tuning split only; the weights file records a
digest of the ids it was trained on, and a unit test checks it against the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_FILE = ROOT / "layers" / "harpoon" / "harpoon" / "router_weights.json"

L2 = 1e-3  # the smallest (best cross-validated, --cv) that keeps tests/unit/test_classifier.py's everyday prompts right
EPOCHS = 30
LEARNING_RATE = 0.2
MIN_COUNT = 2  # a feature must occur in this many training prompts
MAX_SHARE = 0.05  # ... and in at most this share of them: "a", "the", "de" carry no meaning of their own
PRUNE = 0.02  # smaller weights are dropped from the file
SEED = 20261126


def rule_log_odds(text: str) -> tuple[float, str]:
    """The rules' log-odds for ``text`` and the text they judged."""
    from harpoon import classifier as c

    values, _, _, _, judged = c._all_features(text)
    return c._rules_log_odds(values), judged


def prepare(examples) -> list[tuple[float, list[str], float, str]]:
    from harpoon.classifier import _learned_features

    rows = []
    for ex in examples:
        offset, judged = rule_log_odds(ex.text)
        rows.append((offset, sorted(_learned_features(judged)), 1.0 if ex.label == "complex" else 0.0, ex.id))
    return rows


def fit(rows, l2: float = L2) -> tuple[float, dict[str, float]]:
    counts: dict[str, int] = {}
    for _, features, _, _ in rows:
        for f in features:
            counts[f] = counts.get(f, 0) + 1
    vocab = {f for f, n in counts.items() if MIN_COUNT <= n <= MAX_SHARE * len(rows)}
    data = [(offset, [f for f in features if f in vocab], y) for offset, features, y, _ in rows]
    weights = dict.fromkeys(sorted(vocab), 0.0)
    bias = 0.0  # kept in the file format; not learned
    order = list(range(len(data)))
    rng = random.Random(SEED)
    for epoch in range(EPOCHS):
        rng.shuffle(order)
        rate = LEARNING_RATE / (1 + epoch * 0.2)
        for i in order:
            offset, features, y = data[i]
            z = offset + bias + sum(weights[f] for f in features)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = p - y  # no bias term: the prior stays the rules' (BIAS), words only move a prompt from it
            for f in features:
                weights[f] -= rate * (g + l2 * weights[f] * len(data) / counts[f])
    return round(bias, 3), {f: round(w, 3) for f, w in sorted(weights.items()) if abs(w) >= PRUNE}


def predict(offset: float, features: list[str], model: tuple[float, dict[str, float]]) -> str:
    bias, weights = model
    return "complex" if offset + bias + sum(weights.get(f, 0.0) for f in features) >= 0 else "simple"


def cross_validate(rows, folds: int, l2_values: list[float]) -> list[list[object]]:
    from evals.routing import Scores

    shuffled = sorted(rows, key=lambda r: hashlib.sha256(r[3].encode()).hexdigest())
    out = []
    rules = Scores.of(("complex" if y else "simple", "complex" if o >= 0 else "simple") for o, _, y, _ in rows)
    out.append(["rules only", f"{rules.accuracy:.3f}", f"{rules.precision:.3f}", f"{rules.recall:.3f}"])
    for l2 in l2_values:
        pairs = []
        for k in range(folds):
            train = [r for i, r in enumerate(shuffled) if i % folds != k]
            model = fit(train, l2)
            pairs += [("complex" if y else "simple", predict(o, f, model)) for o, f, y, _ in shuffled[k::folds]]
        s = Scores.of(pairs)
        out.append([f"rules + learned, L2 {l2:g}", f"{s.accuracy:.3f}", f"{s.precision:.3f}", f"{s.recall:.3f}"])
    return out


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    sys.path[:0] = [str(ROOT / "layers" / "harpoon"), str(ROOT)]
    from bench.table import render
    from evals.routing import load_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=int, default=0, help="K-fold cross-validation on the tuning split")
    parser.add_argument("--write", action="store_true", help="train on the tuning split and write the weights")
    args = parser.parse_args(argv)
    tune = [ex for ex in load_examples() if ex.split == "tune"]
    rows = prepare(tune)
    if args.cv:
        print(f"{args.cv}-fold cross-validation on the tuning split ({len(rows)} prompts); the rules were tuned on "
              "all of it, so 'rules only' is optimistic")
        print(render(["model", "accuracy", "precision", "recall"],
                     cross_validate(rows, args.cv, [1e-5, 1e-4, 1e-3, 1e-2])))
    if args.write:
        bias, weights = fit(rows)
        model = {
            "about": "harpoon classifier: learned correction to the rules' log-odds (evals/train_router.py)",
            "trained_on": {"split": "tune", "prompts": len(rows), "ids_sha256": ids_digest([r[3] for r in rows])},
            "params": {"l2": L2, "epochs": EPOCHS, "learning_rate": LEARNING_RATE, "min_count": MIN_COUNT,
                       "max_share": MAX_SHARE,
                       "prune": PRUNE, "seed": SEED},
            "bias": bias,
            "weights": weights,
        }
        WEIGHTS_FILE.write_text(json.dumps(model, ensure_ascii=False, indent=0, sort_keys=True) + "\n",
                                encoding="utf-8")
        print(f"wrote {WEIGHTS_FILE.relative_to(ROOT)}: {len(weights)} weights, trained on {len(rows)} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
