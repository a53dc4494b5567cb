"""Semantic-layer accuracy on the labelled prompts (tests/data/labelled_prompts.jsonl) with the local encoder.

Prints per-tier precision and recall of the semantic layer of ``examples/tierroute.yaml`` (abstentions count as
the config's ``default_tier``), then a 2-fold check of :meth:`SemanticPolicy.fit`: thresholds fitted on one half
of the prompts, accuracy measured on the other half.

    .venv/bin/python benchmarks/semantic_accuracy.py [--config examples/tierroute.yaml] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from tierroute.config import RouterConfig
    from tierroute.policies.semantic import SemanticPolicy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "examples" / "tierroute.yaml"))
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "labelled_prompts.jsonl"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    texts, labels = [r["prompt"] for r in rows], [r["tier"] for r in rows]
    cfg = RouterConfig.from_yaml(args.config)
    assert cfg.routing.semantic is not None and cfg.default_tier is not None
    result = SemanticPolicy(cfg.routing.semantic).evaluate(texts, labels, cfg.default_tier)

    folds = []
    for a, b in ((0, 1), (1, 0)):
        p = SemanticPolicy(cfg.routing.semantic)
        fitted = p.fit(texts[a::2], labels[a::2], cfg.default_tier)
        held = p.evaluate(texts[b::2], labels[b::2], cfg.default_tier)
        folds.append(
            {
                "fit_on": a,
                "threshold": fitted.threshold,
                "thresholds": fitted.thresholds,
                "held_out_accuracy": held.accuracy,
            }
        )

    if args.json:
        out = {
            "prompts": len(rows),
            "accuracy": result.accuracy,
            "abstain_rate": result.abstain_rate,
            "per_tier": {t: vars(s) for t, s in result.per_tier.items()},
            "two_fold": folds,
        }
        print(json.dumps(out, indent=2))
        return
    print(
        f"semantic layer of {args.config} on {len(rows)} labelled prompts (abstain -> default_tier {cfg.default_tier})"
    )
    print()
    print("| tier | prompts | routed there | precision | recall |")
    print("|---|---|---|---|---|")
    for t, s in result.per_tier.items():
        print(f"| {t} | {s.support} | {s.predicted} | {s.precision:.3f} | {s.recall:.3f} |")
    print(f"| **all** | {len(rows)} | | accuracy **{result.accuracy:.3f}** | abstained {result.abstain_rate:.1%} |")
    print()
    print("2-fold check of fit(): thresholds fitted on one half, accuracy on the other half")
    for f in folds:
        bars = f"threshold {f['threshold']:.2f} {f['thresholds']}"
        print(f"- fit on half {f['fit_on']}: {bars} -> held-out accuracy {f['held_out_accuracy']:.3f}")


if __name__ == "__main__":
    main()
