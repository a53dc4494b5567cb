"""The Step 0 runner: every sample x every model, concurrently within rate limits, resumable.

Each finished call (answer, tokens, cost, latency) is appended to ``calls.jsonl`` in the output folder and
flushed at once, so an interrupted run loses only the calls in flight; running the same command again skips
every call already there. The cache key is the model group's deployments, the messages and the chat
parameters, so changing any of them re-runs exactly the affected calls. Scores are recomputed from cached
answers on every run (judge calls are cached too).

Calls go through :class:`~tierroute.backends.litellm.LiteLLMBackend` (a tier = a LiteLLM model group), one
attempt each: recoverable failures (rate limit, timeout, 5xx, connection) are retried with backoff; a
refusal or a bad request is recorded as a failed answer (score 0); calls still failing are left out of the
matrix and reported, and the next run retries them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierroute.bench.matrix import QualityRow
from tierroute.bench.samples import Sample
from tierroute.bench.scorers import resolve_scorer, score_answer
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError
from tierroute.types import FailureKind, RouteRequest, Usage

__all__ = ["BenchOptions", "BenchRun", "CallCache", "RateLimiter", "run_bench"]

_RETRY = {
    FailureKind.RATE_LIMIT,
    FailureKind.TIMEOUT,
    FailureKind.SERVER_ERROR,
    FailureKind.CONNECTION,
    FailureKind.TRUNCATED_STREAM,
    FailureKind.UNKNOWN,
}


@dataclass
class BenchOptions:
    """How to run the benchmark.

    Attributes:
        models: Model groups (tiers) to benchmark; default every tier of the config.
        concurrency: Calls in flight at once, across models.
        timeout_s: Per-call timeout.
        retries: Retries of a recoverable failure.
        params: Chat parameters for every call (a sample's ``params`` override them).
        judge: The tier that grades ``judge``-scored samples.
        progress: Show a rich progress bar.
    """

    models: Sequence[str] | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    params: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0})
    judge: str | None = None
    progress: bool = True


class CallCache:
    """Append-only JSONL of finished calls, keyed by :func:`call_key`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").split("\n"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by an interruption: that call runs again
                if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                    self.records[rec["key"]] = rec
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached record, if any."""
        return self.records.get(key)

    def put(self, record: dict[str, Any]) -> None:
        """Store a record and flush it to disk."""
        self.records[record["key"]] = record
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


class RateLimiter:
    """Sliding one-minute window of requests and tokens for one model group (None = unlimited)."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self._events: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of ``tokens`` tokens fits in the window, then count it."""
        if self.rpm is None and self.tpm is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= 60.0:
                    self._events.popleft()
                used = sum(t for _, t in self._events)
                rpm_ok = self.rpm is None or len(self._events) < self.rpm
                tpm_ok = self.tpm is None or used + tokens <= self.tpm or not self._events
                if rpm_ok and tpm_ok:
                    self._events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self._events[0][0])))


def _limits(config: RouterConfig, tier: str) -> tuple[int | None, int | None]:
    rpm: list[int | None] = []
    tpm: list[int | None] = []
    for d in config.deployments(tier):
        extra = {**(d.litellm_params.model_extra or {}), **(d.model_extra or {})}
        rpm.append(int(extra["rpm"]) if extra.get("rpm") is not None else None)
        tpm.append(int(extra["tpm"]) if extra.get("tpm") is not None else None)

    def total(xs: list[int | None]) -> int | None:
        return None if not xs or any(x is None for x in xs) else sum(x for x in xs if x is not None)

    return total(rpm), total(tpm)


def call_key(config: RouterConfig, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """Cache key of a call: the group's deployments (model strings), messages and parameters."""
    deployments = sorted(d.litellm_params.model for d in config.deployments(model))
    blob = json.dumps({"m": model, "d": deployments, "msg": list(messages), "p": dict(params)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class BenchRun:
    """What a run produced.

    Attributes:
        rows: The quality matrix.
        models: Benchmarked models.
        calls_made: Calls sent in this run (cache misses).
        calls_cached: Calls answered from the cache.
        failed: ``(sample id, model, error)`` of calls that failed after retries (left out of the matrix).
    """

    rows: list[QualityRow]
    models: list[str]
    calls_made: int = 0
    calls_cached: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)


async def _call(
    backend: Any, model: str, messages: list[dict[str, Any]], params: dict[str, Any], opts: BenchOptions
) -> dict[str, Any]:
    """One call with retries; a record for the cache, or ``{"error": ...}`` when it should not be cached."""
    from tierroute.errors_map import classify, retry_after

    req = RouteRequest.from_messages(messages)
    for attempt in range(opts.retries + 1):
        t0 = time.perf_counter()
        try:
            resp = await backend.acall(model, req, params, opts.timeout_s)
        except Exception as exc:
            kind = classify(exc)
            if kind not in _RETRY:
                return {
                    "text": "",
                    "failed": f"{kind.value}: {type(exc).__name__}",
                    "latency_s": 0.0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cost_usd": 0.0,
                }
            if attempt == opts.retries:
                return {"error": f"{kind.value}: {type(exc).__name__}: {str(exc)[:200]}"}
            wait = retry_after(exc) or min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(min(wait, 60.0))
            continue
        latency = time.perf_counter() - t0
        usage: Usage = resp.usage
        cost = resp.cost_usd if resp.cost_usd is not None else backend.price(model, usage)
        return {
            "text": resp.text,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": float(cost or 0.0),
            "latency_s": latency,
            "served_model": resp.served_model,
        }
    return {"error": "no attempt made"}  # pragma: no cover


async def run_bench(
    config: RouterConfig,
    samples: Sequence[Sample],
    out_dir: str | os.PathLike[str],
    opts: BenchOptions | None = None,
    *,
    backend: Any = None,
) -> BenchRun:
    """Run every sample on every model (resuming from ``out_dir/calls.jsonl``) and score the answers.

    Raises:
        ConfigError: A model or the judge is not a tier with a deployment, or a scorer is misconfigured.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    opts = opts or BenchOptions()
    models = list(opts.models or config.tiers)
    for m in [*models, *([opts.judge] if opts.judge else [])]:
        if not config.deployments(m):
            raise ConfigError(
                f"model {m!r} has no deployment in the config",
                path="model_list",
                hint=f"benchmark model groups of the config: {sorted({d.model_name for d in config.model_list})}",
            )
    for sample in samples:  # fail before any call is paid for
        resolve_scorer(sample.scorer_name)
        if sample.scorer_name == "judge" and not opts.judge:
            raise ConfigError(
                f"sample {sample.id!r} is scored by an LLM judge but no judge model is set",
                path="scorer",
                hint="pass --judge TIER (a model group of the config)",
            )
    if backend is None:
        from tierroute.backends.litellm import LiteLLMBackend

        backend = LiteLLMBackend(config)
    cache = CallCache(Path(out_dir) / "calls.jsonl")
    limiters = {m: RateLimiter(*_limits(config, m)) for m in {*models, *([opts.judge] if opts.judge else [])}}
    sem = asyncio.Semaphore(max(1, opts.concurrency))
    run = BenchRun(rows=[], models=models)

    async def cached_call(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        key = call_key(config, model, messages, params)
        hit = cache.get(key)
        if hit is not None:
            run.calls_cached += 1
            return hit
        est = sum(len(str(m.get("content") or "")) for m in messages) // 4 + int(params.get("max_tokens") or 256)
        async with sem:
            await limiters[model].acquire(est)
            rec = await _call(backend, model, messages, params, opts)
        run.calls_made += 1
        if "error" not in rec:
            prompt = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
            cache.put({"key": key, "model": model, "prompt": prompt[:500], **rec})
        return rec

    async def judge(prompt: str) -> str:
        assert opts.judge is not None
        rec = await cached_call(opts.judge, [{"role": "user", "content": prompt}], {"temperature": 0})
        if "error" in rec:
            raise RuntimeError(f"judge call failed: {rec['error']}")
        return str(rec.get("text", ""))

    results: dict[tuple[str, str], dict[str, Any]] = {}
    progress = Progress(
        TextColumn("[bold]bench"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        disable=not opts.progress,
        transient=False,
    )

    async def one(sample: Sample, model: str, task_id: Any) -> None:
        params = {**opts.params, **sample.params}
        rec = await cached_call(model, sample.chat, params)
        if "error" in rec:
            run.failed.append((sample.id, model, str(rec["error"])))
        else:
            rec = dict(rec)
            rec["score"] = await score_answer(str(rec.get("text", "")), sample, judge if opts.judge else None)
            results[(sample.id, model)] = rec
        progress.update(task_id, advance=1, description=f"{run.calls_made} sent, {run.calls_cached} cached")

    try:
        with progress:
            task_id = progress.add_task("", total=len(samples) * len(models))
            await asyncio.gather(*(one(s, m, task_id) for s in samples for m in models))
    finally:
        cache.close()
    for s in samples:
        got = {m: results[(s.id, m)] for m in models if (s.id, m) in results}
        if not got:
            continue
        run.rows.append(
            QualityRow(
                id=s.id,
                prompt=s.prompt,
                messages=s.messages,
                task_type=s.task_type,
                scores={m: float(r["score"]) for m, r in got.items()},
                costs={m: float(r.get("cost_usd", 0.0)) for m, r in got.items()},
                tokens={
                    m: {"prompt": int(r.get("prompt_tokens", 0)), "completion": int(r.get("completion_tokens", 0))}
                    for m, r in got.items()
                },
                latency_s={m: float(r.get("latency_s", 0.0)) for m, r in got.items()},
                responses={m: str(r.get("text", "")) for m, r in got.items()},
            )
        )
    return run
