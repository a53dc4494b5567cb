"""The LangChain run a call belongs to: its metadata and tags (routing input) and tracer annotations (output).

LangChain hands ``_generate``/``_agenerate`` the run manager, but calls ``_stream``/``_astream`` without it (from
``stream()``, ``astream()`` and from ``invoke`` when a streaming handler such as ``astream_events`` or
LangGraph's ``messages`` mode is attached). ChatTierRoute therefore records the run's context in a context
variable where it still has it (around ``_generate_with_cache`` and the first step of ``stream``), and the
streaming methods read it from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig, ensure_config
from tierroute.types import RouteTrace

from langchain_tierroute._tools import OpenAIToolsChatModel

__all__ = [
    "RunAwareChatModel",
    "RunContext",
    "RunManager",
    "annotate_run",
    "current_run",
    "request_tier",
    "run_context",
]

RunManager = CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a call knows about its LangChain run."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    run_manager: RunManager | None = None


_CURRENT: ContextVar[RunContext | None] = ContextVar("langchain_tierroute_run", default=None)


def run_context(run_manager: RunManager | None) -> RunContext:
    """The run's context: from the run manager when LangChain passed one, else the one recorded around the call."""
    if run_manager is not None:
        return RunContext(run_manager.metadata, run_manager.tags, run_manager)
    return _CURRENT.get() or RunContext()


@contextlib.contextmanager
def current_run(ctx: RunContext) -> Iterator[None]:
    """Record ``ctx`` as the current run's context for the calls made inside the block."""
    token = _CURRENT.set(ctx)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def annotate_run(run_manager: RunManager | None, trace: RouteTrace | None, error: BaseException | None = None) -> None:
    """Put the tier, layer and cost into this run's metadata in every tracer attached to it.

    LangChain fixes a run's metadata when the run starts, before the tier is known; tracers (LangSmith's
    ``LangChainTracer`` among them) keep the run in ``run_map`` and send its ``extra["metadata"]`` again when it
    ends, so keys added here reach LangSmith and any other tracer.
    """
    if run_manager is None or trace is None:
        return
    served = trace.served
    meta: dict[str, Any] = {
        "tierroute_tier": served.tier if served is not None else trace.decision.tier,
        "tierroute_layer": trace.decision.layer,
        "tierroute_decided_tier": trace.decision.tier,
        "tierroute_served_model": served.served_model if served is not None else None,
        "tierroute_attempts": len(trace.attempts),
        "tierroute_cost_usd": trace.cost_usd,
    }
    if error is not None:
        meta["tierroute_error"] = type(error).__name__
    run_id = str(run_manager.run_id)
    for handler in run_manager.handlers:
        run_map = getattr(handler, "run_map", None)
        run = run_map.get(run_id) if isinstance(run_map, dict) else None
        extra = getattr(run, "extra", None)
        if isinstance(extra, dict):
            extra.setdefault("metadata", {}).update(meta)


def request_tier(trace: RouteTrace | None) -> str:
    """Fallback ``model_name`` when no attempt reported a served model: the decided tier."""
    return trace.decision.tier if trace is not None else "tierroute"


class RunAwareChatModel(OpenAIToolsChatModel):
    """A chat model whose ``_stream``/``_astream`` can read their run's context (see the module docstring)."""

    def _config_context(self, config: RunnableConfig | None) -> RunContext:
        """The run context LangChain will build from ``config`` (for ``stream``, which hides its run manager)."""
        cfg = ensure_config(config)
        metadata = {**(cfg.get("metadata") or {}), **(self.metadata or {})}
        return RunContext(metadata, [*(cfg.get("tags") or []), *(self.tags or [])])

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # LangChain may take its streaming branch from here, which calls _stream without the run manager
        with current_run(run_context(run_manager)):
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with current_run(run_context(run_manager)):
            return await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream as ``BaseChatModel.stream`` does; the run's metadata and tags reach ``_stream`` too."""
        it = super().stream(input, config, stop=stop, **kwargs)
        with current_run(self._config_context(config)):  # _stream reads it before its first chunk
            first = next(it, None)
        if first is None:
            return
        yield first
        yield from it

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        it = super().astream(input, config, stop=stop, **kwargs).__aiter__()
        with current_run(self._config_context(config)):
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                return
        yield first
        async for chunk in it:
            yield chunk
