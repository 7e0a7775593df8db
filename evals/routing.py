"""How well the local classifier routes, on the labeled set in tests/data/routing.

    python -m evals.routing [--split heldout|tune|all] [--threshold T]
    python -m evals.routing calibrate --target-share S [--split tune] [--file F.jsonl]

Every prompt is labeled by the policy in docs/routing.md; the split of each
prompt is fixed in the data (40 % held out, chosen from the id's hash, never
used for tuning). The report: accuracy, precision and recall for "complex",
the confusion matrix, the share routed to the large model and the GPU cost
relative to sending everything to it (catalog prices, assuming the same GPU
time per request), by language and by kind of prompt.

`calibrate` prints the threshold that sends a target share of a sample to the
large model (RouteLLM-style): the score quantile, since a prompt goes to the
large model when its score is >= the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "tests" / "data" / "routing"


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: str
    category: str
    language: str
    note: str | None
    split: str


def load_examples(paths: list[Path] | None = None) -> list[Example]:
    examples = []
    for path in paths or sorted(DATA_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                examples.append(Example(row["id"], row["text"], row["label"], row["category"], row["language"],
                                        row.get("note"), row.get("split", "tune")))
    return examples


@dataclass(frozen=True)
class Scores:
    """Confusion counts with "complex" as the positive class."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, pairs) -> "Scores":
        counts = Counter((label == "complex", predicted == "complex") for label, predicted in pairs)
        return cls(tp=counts[True, True], fp=counts[False, True], fn=counts[True, False], tn=counts[False, False])

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def large_share(self) -> float:
        return (self.tp + self.fp) / self.n if self.n else 0.0


def predict(examples: list[Example], threshold: float) -> list[tuple[Example, float, str]]:
    from harpoon.classifier import classify

    out = []
    for ex in examples:
        result = classify(ex.text, threshold=threshold)
        out.append((ex, result.score, result.tier))
    return out


def relative_cost(predicted_tiers: list[str]) -> float:
    """GPU cost of the routed models over the cost of the large model for
    every request, from catalog prices, with the same GPU time per request."""
    from harpoon.catalog import load_catalog

    catalog = load_catalog()
    large = catalog.largest.price_per_gpu_second
    spent = sum(catalog.for_tier(tier).price_per_gpu_second for tier in predicted_tiers)
    return spent / (large * len(predicted_tiers)) if predicted_tiers else 0.0


def threshold_for_share(scores: list[float], target_share: float) -> float:
    """The threshold t in (0, 1) that routes about `target_share` of these
    scores to the large model (score >= t)."""
    if not scores:
        raise ValueError("no scores to calibrate on")
    ranked = sorted(scores, reverse=True)
    k = round(target_share * len(ranked))
    if k <= 0:
        t = ranked[0] + 0.001
    elif k >= len(ranked):
        t = ranked[-1]
    else:
        t = (ranked[k - 1] + ranked[k]) / 2 if ranked[k - 1] != ranked[k] else ranked[k - 1]
    return round(min(0.999, max(0.001, t)), 4)


def _table(headers: list[str], rows: list[list[object]]) -> str:
    from bench.table import render

    return render(headers, rows)


def source(ex: Example) -> str:
    """Which independently written set a prompt comes from, by id prefix: "v2-", "v3-", "v4-"...; none: v1."""
    prefix = ex.id.split("-", 1)[0]
    return prefix if prefix[:1] == "v" and prefix[1:].isdigit() else "v1"


def report(examples: list[Example], threshold: float, title: str) -> str:
    results = predict(examples, threshold)
    overall = Scores.of((ex.label, tier) for ex, _, tier in results)
    lines = [f"{title}: {overall.n} prompts, threshold {threshold:g}", ""]
    lines.append(_table(["metric", "value"], [
        ["accuracy", f"{overall.accuracy:.3f}"],
        ["precision (complex)", f"{overall.precision:.3f}"],
        ["recall (complex)", f"{overall.recall:.3f}"],
        ["routed to the large model", f"{overall.large_share:.1%}"],
        ["GPU cost vs always large", f"{relative_cost([tier for _, _, tier in results]):.1%}"],
    ]))
    lines += ["", "confusion matrix (rows: label, columns: routed)"]
    lines.append(_table(["", "routed simple", "routed complex"], [
        ["label simple", overall.tn, overall.fp], ["label complex", overall.fn, overall.tp]]))
    for key, name in ((source, "set"), (lambda ex: ex.language, "language"), (lambda ex: ex.note or "-", "kind"),
                      (lambda ex: ex.category, "category")):
        groups: dict[str, list] = defaultdict(list)
        for ex, _, tier in results:
            groups[key(ex)].append((ex.label, tier))
        rows = []
        for g, pairs in sorted(groups.items()):
            s = Scores.of(pairs)
            recall = f"{s.recall:.3f}" if s.tp + s.fn else "-"
            rows.append([g, len(pairs), f"{s.accuracy:.3f}", recall])
        lines += ["", _table([name, "prompts", "accuracy", "recall (complex)"], rows)]
    misses = [(ex, score, tier) for ex, score, tier in results if tier != ex.label]
    if misses:
        lines += ["", f"misrouted ({len(misses)}):"]
        for ex, score, tier in misses:
            text = " ".join(ex.text.split())
            lines.append(f"  {ex.id:8} label={ex.label:7} score={score:.3f}  {text[:90]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path[:0] = [str(ROOT / "layers" / "harpoon"), str(ROOT)]
    from harpoon.classifier import DEFAULT_THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="eval", choices=["eval", "calibrate"])
    parser.add_argument("--split", default=None, choices=["heldout", "tune", "all"],
                        help="eval: heldout (default); calibrate: tune (default)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--target-share", type=float, default=None, help="calibrate: share of large-model calls")
    parser.add_argument("--file", type=Path, action="append", default=None,
                        help="JSONL of prompts ({\"text\", optional \"label\"}); default: tests/data/routing")
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        if args.target_share is None or not 0 <= args.target_share <= 1:
            parser.error("calibrate needs --target-share in [0, 1]")
        return _calibrate(args)
    split = args.split or "heldout"
    examples = [ex for ex in load_examples(args.file) if split == "all" or ex.split == split]
    print(report(examples, args.threshold, f"Routing on the {split} split"))
    return 0


def _calibrate(args) -> int:
    if args.file:
        rows = [json.loads(line) for path in args.file for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        examples = [Example(str(i), r["text"], r.get("label", ""), "", r.get("language", "?"), None, "sample")
                    for i, r in enumerate(rows)]
    else:
        split = args.split or "tune"
        examples = [ex for ex in load_examples() if split == "all" or ex.split == split]
    scores = [score for _, score, _ in predict(examples, 0.5)]
    threshold = threshold_for_share(scores, args.target_share)
    achieved = sum(1 for s in scores if s >= threshold) / len(scores)
    print(f"{len(scores)} prompts; target share to the large model {args.target_share:.1%}")
    print(f"threshold {threshold:g} routes {achieved:.1%} to the large model "
          f"(set CLASSIFIER_THRESHOLD={threshold:g})")
    labeled = [ex for ex in examples if ex.label in ("simple", "complex")]
    if labeled:
        scores_at = Scores.of((ex.label, "complex" if s >= threshold else "simple")
                              for ex, s, _ in predict(labeled, 0.5))
        print(f"on these labeled prompts: accuracy {scores_at.accuracy:.3f}, complex recall {scores_at.recall:.3f}, "
              f"precision {scores_at.precision:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
