"""The ledger's background writer: a thread that commits queued rows in batches.

Requests only put a row on a queue (no I/O on the request path). The thread commits a batch when it holds
``batch_size`` rows or when its oldest row has waited ``flush_interval_s``, whichever comes first; a failed
commit is retried with backoff (the rows stay queued in memory meanwhile). :meth:`LedgerWriter.flush`
waits until every row queued before it is committed; :meth:`LedgerWriter.close` flushes and stops the thread,
and runs at interpreter exit too.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["LedgerWriter", "Sink", "WriterStats"]

log = logging.getLogger("tierroute")


class Sink(Protocol):
    """Where the writer thread puts rows."""

    def commit(self, rows: list[dict[str, Any]]) -> None:
        """Write the rows in one transaction and commit it."""
        ...

    def maintain(self) -> None:
        """Periodic housekeeping (retention); called about hourly from the writer thread."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class _Flush:
    deadline: float  # time.monotonic() until which failed commits are retried for this marker
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = True


class _Stop(_Flush):
    pass


@dataclass(slots=True)
class WriterStats:
    """Counters of one writer.

    Attributes:
        written: Rows committed.
        batches: Commits that succeeded.
        failed_commits: Commits that failed (and were retried).
        dropped: Rows dropped because the queue was full (``on_full: drop``) or the writer gave up at exit.
    """

    written: int = 0
    batches: int = 0
    failed_commits: int = 0
    dropped: int = 0


class LedgerWriter:
    """Commits rows in batches from a daemon thread.

    Args:
        open_sink: Called in the writer thread (again after a failure to open); returns the :class:`Sink`.
        batch_size: Most rows per commit.
        flush_interval_s: Longest a row waits in the queue before its batch is committed.
        max_queue: Rows the queue holds before ``on_full`` applies.
        on_full: With a full queue, ``block`` (the request waits up to 1 s for room: back-pressure) or ``drop``
            (no wait); a row that finds no room is dropped and counted in :attr:`stats`.
        name: Thread name.
    """

    def __init__(
        self,
        open_sink: Callable[[], Sink],
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        max_queue: int = 100_000,
        on_full: Literal["block", "drop"] = "block",
        name: str = "tierroute-ledger",
    ) -> None:
        self._open_sink = open_sink
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.on_full = on_full
        self.block_timeout_s = 1.0
        self.name = name
        self.stats = WriterStats()
        self._q: queue.Queue[dict[str, Any] | _Flush] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._sink: Sink | None = None
        self._backoff = 0.05
        self._next_maintain = 0.0

    # ---- producer side ----------------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            _register_atexit(self)

    def put(self, row: dict[str, Any]) -> None:
        """Queue a row (starts the thread on first use).

        With a full queue (the database is down or slower than the request rate): ``block`` waits up to
        :attr:`block_timeout_s` for room, ``drop`` does not wait; a row that finds no room is dropped and counted.
        """
        self._ensure_started()
        try:
            if self.on_full == "block":
                self._q.put(row, timeout=self.block_timeout_s)
            else:
                self._q.put_nowait(row)
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1
                dropped = self.stats.dropped
            if dropped == 1 or dropped % 1000 == 0:
                log.error("tierroute ledger: queue full, %d row(s) dropped (%s)", dropped, self.last_error)

    @property
    def pending(self) -> int:
        """Rows (and markers) waiting in the queue."""
        return self._q.qsize()

    @property
    def running(self) -> bool:
        """Whether the writer thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued so far is committed; False on timeout or when the commit kept failing."""
        if not self.running:
            return self._q.empty()
        marker = _Flush(time.monotonic() + (timeout if timeout is not None else 3600.0))
        try:
            self._q.put(marker, timeout=timeout)
        except queue.Full:  # the writer is stuck behind a failing database
            return False
        return marker.done.wait(max(0.0, marker.deadline - time.monotonic())) and marker.ok

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush and stop the thread (a later :meth:`put` starts it again). False if rows could not be committed."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._q.empty()
        marker = _Stop(time.monotonic() + (timeout if timeout is not None else 3600.0))
        try:
            self._q.put(marker, timeout=timeout)
        except queue.Full:  # the writer is stuck behind a failing database; its rows stay unwritten
            log.error("tierroute ledger: close timed out with %d row(s) unwritten: %s", self.pending, self.last_error)
            return False
        ok = marker.done.wait(max(0.0, marker.deadline - time.monotonic())) and marker.ok
        thread.join(max(0.0, marker.deadline - time.monotonic()))
        return ok

    # ---- writer thread ------------------------------------------------------------------------------

    def _drain(self, pending: list[dict[str, Any]]) -> _Flush | None:
        """Move rows already waiting into ``pending`` (up to a batch); return a marker met on the way."""
        while len(pending) < self.batch_size:
            try:
                nxt = self._q.get_nowait()
            except queue.Empty:
                return None
            if not isinstance(nxt, dict):
                return nxt
            pending.append(nxt)
        return None

    def _commit(self, pending: list[dict[str, Any]], *, give_up_at: float) -> bool:
        """Commit every pending row in batches; on failure retry with backoff until ``give_up_at`` (monotonic)."""
        while True:
            try:
                if self._sink is None:
                    self._sink = self._open_sink()
                while pending:
                    batch = pending[: self.batch_size]
                    self._sink.commit(batch)
                    self.stats.written += len(batch)
                    self.stats.batches += 1
                    del pending[: len(batch)]
                self._backoff = 0.05
                return True
            except Exception as exc:
                self.stats.failed_commits += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.error(
                    "tierroute ledger: writing %d row(s) failed (%s); retrying in %.2fs",
                    len(pending),
                    self.last_error,
                    self._backoff,
                )
                wait = self._backoff
                self._backoff = min(self._backoff * 2, 5.0)
                if time.monotonic() + wait > give_up_at:
                    return False
                time.sleep(wait)

    def _maintain(self) -> None:
        if self._sink is None or time.monotonic() < self._next_maintain:
            return
        self._next_maintain = time.monotonic() + 3600.0
        try:
            self._sink.maintain()
        except Exception:
            log.exception("tierroute ledger: retention clean-up failed")

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        deadline = 0.0
        while True:
            item: dict[str, Any] | _Flush | None = None
            if len(pending) >= self.batch_size:
                # commits are failing: take nothing more (the queue fills: back-pressure or drops) until the retry
                time.sleep(max(0.0, deadline - time.monotonic()))
            else:
                timeout = None if not pending else max(0.0, deadline - time.monotonic())
                try:
                    item = self._q.get(timeout=timeout)
                except queue.Empty:
                    item = None
            marker: _Flush | None = None
            if isinstance(item, dict):
                if not pending:
                    deadline = time.monotonic() + self.flush_interval_s
                pending.append(item)
                marker = self._drain(pending)
                if marker is None and len(pending) < self.batch_size and time.monotonic() < deadline:
                    continue
            else:
                marker = item
            # a batch is full, its oldest row is due, or a flush/stop marker arrived
            ok = self._commit(pending, give_up_at=marker.deadline if marker is not None else 0.0)
            if not ok and marker is None:
                deadline = time.monotonic() + self._backoff
            self._maintain()
            if marker is None:
                continue
            stop = isinstance(marker, _Stop)
            if stop and pending:
                self.stats.dropped += len(pending)
                log.error("tierroute ledger: %d row(s) lost at shutdown: %s", len(pending), self.last_error)
                pending.clear()
            marker.ok = ok
            marker.done.set()
            if stop:
                sink, self._sink = self._sink, None
                if sink is not None:
                    try:
                        sink.close()
                    except Exception:
                        log.exception("tierroute ledger: closing the database failed")
                return


_WRITERS: weakref.WeakSet[LedgerWriter] = weakref.WeakSet()
_ATEXIT_DONE = False


def _register_atexit(writer: LedgerWriter) -> None:
    global _ATEXIT_DONE
    _WRITERS.add(writer)
    if not _ATEXIT_DONE:
        _ATEXIT_DONE = True
        atexit.register(_close_all)


def _close_all() -> None:
    for writer in list(_WRITERS):
        try:
            writer.close(timeout=15.0)
        except Exception:
            log.exception("tierroute ledger: flush at exit failed")
