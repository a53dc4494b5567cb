"""Run coroutines from sync code on one private background event loop (shared by every sync call)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="tierroute-sync", daemon=True).start()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also when the caller's thread has a running loop.

    Raises:
        RuntimeError: Called from inside tierroute's own loop (use the async API there).
    """
    loop = _get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("tierroute: use the async API (acomplete/astream) inside async code")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def iter_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code on the background loop."""
    it = agen.__aiter__()

    async def step() -> tuple[bool, T | None]:
        try:
            return True, await it.__anext__()
        except StopAsyncIteration:
            return False, None

    try:
        while True:
            ok, item = run_sync(step())
            if not ok:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            run_sync(close())
