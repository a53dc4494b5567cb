"""Turn the core's :class:`~tierroute.router.RouteStream` into LlamaIndex ``ChatResponse`` generators."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatResponseAsyncGen, ChatResponseGen
from tierroute.router import RouteStream

from llamaindex_tierroute.events import emit_route_event
from llamaindex_tierroute.utils import StreamAccumulator

__all__ = ["achat_stream", "chat_stream"]


def chat_stream(stream: RouteStream) -> ChatResponseGen:
    """Cumulative responses as chunks arrive, then a closing one with usage and the trace (sync)."""
    acc = StreamAccumulator()
    try:
        for chunk in stream:
            out = acc.add(chunk)
            if out is not None:
                yield out
    except Exception as exc:
        emit_route_event(getattr(exc, "trace", None) or stream.trace, stream=True, error=exc)
        raise
    emit_route_event(stream.trace, stream=True)
    yield acc.final(stream.trace)


async def achat_stream(stream: RouteStream) -> ChatResponseAsyncGen:
    """Async :func:`chat_stream`."""
    acc = StreamAccumulator()
    try:
        async for chunk in stream:
            out = acc.add(chunk)
            if out is not None:
                yield out
    except Exception as exc:
        emit_route_event(getattr(exc, "trace", None) or stream.trace, stream=True, error=exc)
        raise
    emit_route_event(stream.trace, stream=True)
    yield acc.final(stream.trace)
