"""The end-to-end demo behind ``tierroute demo`` / ``make demo``.

The built-in prompts (:mod:`tierroute.demo_prompts`) run through a :class:`~tierroute.router.TierRouter`:
routing, the cascade, the ledger. Against the user's providers when every ``os.environ/`` key the config
names is set; otherwise against :class:`~tierroute.testing.FakeProvider`, a local OpenAI-compatible server,
whose replies and token counts come from a small quality matrix (token counts drawn from recorded model
answers in ``$TIERROUTE_DATA_DIR/routellm/gsm8k``, or estimated from the prompts when that data is absent),
priced at the configured models' list prices. Then the spend report is read back from the ledger it wrote.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierroute.config import RouterConfig
from tierroute.demo_prompts import DEMO_PROMPTS
from tierroute.types import RouteTrace

__all__ = ["DemoResult", "build_demo_matrix", "data_dir", "expected_tier", "fake_config", "run_demo"]

#: Where each built-in prompt should go (by the start of its text): the labels the confusion table uses.
_EXPECTED = {
    "Condense today's standup": "budget",
    "Which queue does this ticket": "budget",
    "Lay out a six-month roadmap": "premium",
    "Suggest a name for a neighbourhood": "premium",  # an allowed explicit override
    "Is 'me and him goes there'": "budget",
    "tl;dr please": "budget",
    "Turn this paragraph into bullet": "budget",
    "Write a function that removes": "mid",
    "Why does this code raise": "mid",
    "Add unit tests for the date": "mid",
    "What's the capital of Australia": "budget",
    "How do you say 'thank you": "budget",
    "Convert 5 miles": "budget",
    "Pull the email addresses": "budget",
    "Positive or negative?": "budget",
    "Write a SQL query listing": "mid",
    "Draft a polite email": "mid",
    "What's the difference between a process": "mid",
    "Compare Postgres and MySQL": "mid",
    "Outline a blog post": "mid",
    "Design a payments service": "premium",
    "Prove that the square root": "premium",
    "What legal exposure": "premium",
    "Checkout latency tripled": "premium",
    "Propose a study": "premium",
    "hi": "budget",
    "thanks!": "budget",
    "ok": "budget",
    "can you help me with something?": "budget",
    "hmm, not sure": "budget",
}


def expected_tier(prompt: str) -> str | None:
    """The tier a built-in prompt should be routed to (None for prompts this module does not know)."""
    for start, tier in _EXPECTED.items():
        if prompt == start or (len(start) > 8 and prompt.startswith(start)):
            return tier
    return None


def data_dir() -> Path:
    """``$TIERROUTE_DATA_DIR``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("TIERROUTE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _unit(*parts: str) -> float:
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big") / 2**64


def _gsm8k_answers(root: Path) -> dict[str, list[tuple[str, bool]]]:
    """Recorded GSM8K answers of the weak and strong model: ``{"weak"|"strong": [(text, correct)]}``."""
    path = root / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    out: dict[str, list[tuple[str, bool]]] = {"weak": [], "strong": []}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            for side, model in (("weak", "mistralai/Mixtral-8x7B-Instruct-v0.1"), ("strong", "gpt-4-1106-preview")):
                text = row.get(f"{model}_response") or ""
                if text.strip():
                    out[side].append((text, row.get(model) == "True"))
    return out


def build_demo_matrix(
    prompts: Sequence[Mapping[str, Any]], tiers: Sequence[str], root: Path | None = None
) -> tuple[list[dict[str, Any]], str]:
    """A quality matrix for the demo prompts: per tier a reply, token counts and a score.

    Completion token counts are those of recorded answers (GSM8K, RouteLLM data: the weak model's for the
    cheaper half of the tiers, the strong model's for the rest), picked per prompt and tier by a hash; the
    score is whether that recorded answer was correct. Without the data, counts are estimated from the prompt.

    Returns:
        The rows (the quality-matrix shape; model columns are the tier names) and a sentence saying where the
        numbers came from.
    """
    answers: dict[str, list[tuple[str, bool]]] = {}
    source = "token counts estimated from the prompts themselves (no recorded answers found)"
    if root is not None:
        try:
            answers = _gsm8k_answers(root)
            n = len(answers["weak"]) + len(answers["strong"])
            source = f"token counts from {n:,} recorded GSM8K answers in {root} (RouteLLM data)"
        except OSError:
            answers = {}
    rows = []
    for i, item in enumerate(prompts):
        prompt = str(item["prompt"])
        p_tokens = math.ceil(len(prompt) / 4) + 8
        scores: dict[str, float] = {}
        tokens: dict[str, dict[str, int]] = {}
        responses: dict[str, str] = {}
        for j, tier in enumerate(tiers):
            side = "strong" if j >= len(tiers) / 2 else "weak"
            pool = answers.get(side) or []
            if pool:
                text, ok = pool[int(_unit(prompt, tier) * len(pool))]
                c_tokens, score = max(1, math.ceil(len(text) / 4)), 1.0 if ok else 0.0
            else:
                c_tokens, score = int(40 + p_tokens * 2 * (1 + 0.5 * j)), 1.0
            tokens[tier] = {"prompt": p_tokens, "completion": c_tokens}
            scores[tier] = score
            responses[tier] = f"[{tier}, FakeProvider] answer to: {prompt[:60]}"
        rows.append(
            {
                "id": f"demo-{i + 1}",
                "prompt": prompt,
                "task_type": (item.get("metadata") or {}).get("task_type"),
                "scores": scores,
                "tokens": tokens,
                "responses": responses,
            }
        )
    return rows, source


def _list_price(model: str) -> tuple[float, float]:
    import litellm

    try:
        info = litellm.get_model_info(model)
        return float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0)
    except Exception:
        return 0.0, 0.0


def fake_config(cfg: RouterConfig, base_url: str, ledger_url: str) -> RouterConfig:
    """The config with every tier pointed at FakeProvider, priced at its real model's list price."""
    model_list = []
    for tier in cfg.tiers:
        deps = cfg.deployments(tier)
        real = deps[0].litellm_params.model if deps else tier
        extra = (deps[0].litellm_params.model_extra or {}) if deps else {}
        inp, out = _list_price(real)
        model_list.append(
            {
                "model_name": tier,
                "litellm_params": {
                    "model": f"openai/{tier}-demo",
                    "api_base": base_url,
                    "api_key": "sk-fake-demo",
                    "input_cost_per_token": float(extra.get("input_cost_per_token", inp)),
                    "output_cost_per_token": float(extra.get("output_cost_per_token", out)),
                },
            }
        )
    data = cfg.model_dump(mode="python", exclude={"model_list"})
    data["model_list"] = model_list
    data["ledger"] = {**data["ledger"], "url": ledger_url, "enabled": True}
    data["state"] = {"backend": "memory"}
    data["cascade"]["retries"]["backoff_s"] = 0.01
    data.pop("metrics", None)
    return RouterConfig.from_dict(data)


@dataclass
class DemoResult:
    """What the demo did.

    Attributes:
        mode: ``fake`` (FakeProvider) or ``live`` (the configured providers).
        note: One sentence on where replies and numbers came from.
        ledger_url: The ledger the rows went to.
        rows: One dict per prompt: prompt, metadata, decision, served tier and model, cost, outcome.
        report: The spend report read back from the ledger (:func:`tierroute.report.build_report`).
        faults: The faults injected (fake mode).
    """

    mode: str
    note: str
    ledger_url: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


def live_ready(cfg: RouterConfig) -> bool:
    """Whether every ``os.environ/`` key the model list names is set."""
    return bool(cfg.model_list) and not cfg.warnings()


async def _run(cfg: RouterConfig, prompts: Sequence[Mapping[str, Any]], concurrency: int) -> list[dict[str, Any]]:
    from tierroute.router import TierRouter

    sem = asyncio.Semaphore(concurrency)
    async with TierRouter(cfg) as router:
        await router.adecide("warm up")  # load the embedding model before the clock starts on any request

        async def one(i: int, item: Mapping[str, Any]) -> dict[str, Any]:
            prompt = str(item["prompt"])
            meta = dict(item.get("metadata") or {})
            exp = expected_tier(prompt)
            if exp is not None:
                meta.setdefault("expected_tier", exp)
            meta["request_id"] = f"demo-{i + 1}"
            trace: RouteTrace | None
            async with sem:
                try:
                    c = await router.acomplete(prompt, metadata=meta, max_tokens=1024)
                    trace, outcome, text = c.trace, "ok", c.text
                except Exception as exc:  # shown in the table, counted in the ledger
                    trace, outcome, text = getattr(exc, "trace", None), type(exc).__name__, str(exc)
            d = trace.to_dict() if trace is not None else {}
            return {
                "prompt": prompt,
                "metadata": item.get("metadata") or {},
                "expected_tier": exp,
                **(trace.decision.to_dict() if trace is not None else {}),
                "served_tier": d.get("tier"),
                "served_model": d.get("served_model"),
                "attempts": len(d.get("attempts") or []),
                "cost_usd": d.get("cost_usd", 0.0),
                "counterfactual_cost_usd": d.get("counterfactual_cost_usd", 0.0),
                "outcome": outcome,
                "reply": text[:200],
            }

        return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


def run_demo(
    config: RouterConfig,
    *,
    ledger_url: str | None = None,
    fake: bool | None = None,
    concurrency: int = 8,
    prompts: Sequence[Mapping[str, Any]] = DEMO_PROMPTS,
) -> DemoResult:
    """Route and execute the demo prompts, then read the spend report back from the ledger.

    Args:
        config: The router config.
        ledger_url: Where rows go; default: the config's ``ledger.url`` when live, a temp SQLite file when fake.
        fake: Force FakeProvider (True) or the real providers (False); None: real only when keys are set.
        concurrency: Requests in flight at once.
        prompts: The prompts (``{"prompt", "metadata"}`` dicts).
    """
    import time

    from tierroute.report import build_report

    use_fake = not live_ready(config) if fake is None else fake
    started_ms = int(time.time() * 1000) - 1000
    tmp = Path(tempfile.mkdtemp(prefix="tierroute-demo-")) / "ledger.db"
    if not use_fake:
        url = ledger_url or config.ledger.url or f"sqlite:///{tmp}"
        cfg = config.model_copy(update={"ledger": config.ledger.model_copy(update={"url": url, "enabled": True})})
        rows = asyncio.run(_run(cfg, prompts, concurrency))
        note = "live: calling the configured providers (their API keys are set); real money is spent"
        result = DemoResult("live", note, url, rows)
    else:
        from tierroute.testing import FakeProvider, Fault, ModelScript

        url = ledger_url or f"sqlite:///{tmp}"
        matrix, source = build_demo_matrix(prompts, config.tiers, data_dir())
        refused = next((r for r in matrix if str(r["prompt"]).startswith("tl;dr")), None)
        if refused is not None:  # one refusal from the cheapest tier: the not_refusal check escalates it
            refused["responses"][config.tiers[0]] = "I'm sorry, but I can't help with that."
        # two failures in a row on the cheapest tier: one retry, then a fallback (the example's circuit
        # breaker opens at three, so the rest of the run stays on the decided tiers)
        faults = {config.tiers[0]: [Fault("server_error", status=503, calls={4, 5})]}
        scripts = {
            f"{t}-demo": ModelScript.from_quality_matrix(
                matrix, t, faults=faults.get(t, []), served_model=f"{t}-demo (fake)"
            )
            for t in config.tiers
        }
        with FakeProvider(scripts) as fp:
            cfg = fake_config(config, fp.base_url, url)
            rows = asyncio.run(_run(cfg, prompts, concurrency))
        note = (
            "NO PROVIDER API KEYS SET: every call went to FakeProvider, a local fake OpenAI-compatible server; "
            f"replies are placeholders, {source}, priced at the configured models' list prices. "
            "Set the keys named in the config to run against the real providers."
        )
        desc = [f"{t}: {f.kind} ({_schedule(f)})" for t, fs in faults.items() for f in fs]
        if refused is not None:
            desc.append(f"{config.tiers[0]}: refuses {str(refused['prompt'])[:20]!r}...")
        result = DemoResult("fake", note, url, rows, faults=desc)
    result.report = build_report(
        url, table=config.ledger.table, db_schema=config.ledger.db_schema, since=started_ms, tiers=config.tiers
    )
    return result


def _schedule(f: Any) -> str:
    if f.every:
        return f"every {f.every}th call"
    if f.calls:
        return "calls " + ", ".join(str(c) for c in sorted(f.calls))
    return "scheduled"
