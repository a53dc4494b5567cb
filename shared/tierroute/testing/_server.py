"""The :class:`FakeProvider` server: lifecycle, scripts, call counters and the request log."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tierroute.testing._handler import Handler
from tierroute.testing._script import ModelScript

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FakeProvider", "RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake provider received.

    Attributes:
        path: The request path, e.g. ``/v1/chat/completions``.
        model: The requested model (None when the request named none).
        body: The parsed JSON body (``{}`` for GET requests).
        headers: Request headers, names lower-cased.
        timestamp: ``time.time()`` when the request was decided.
        outcome: ``"ok"``, a fault kind (``"rate_limit"``, ``"timeout"``, ...), ``"context_window"`` (the
            script's window was exceeded), ``"not_found"``, ``"invalid_json"`` or ``"unknown_url"``.
        method: ``"GET"`` or ``"POST"``.
        call_number: The 1-based chat call number for the model (None for other endpoints).
    """

    path: str
    model: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    timestamp: float
    outcome: str
    method: str = "POST"
    call_number: int | None = None

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed response."""
        return bool(self.body.get("stream"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@dataclass
class _State:
    scripts: dict[str, ModelScript]
    calls: dict[str, int] = field(default_factory=dict)
    records: list[RecordedRequest] = field(default_factory=list)


class FakeProvider:
    """An OpenAI-compatible (and Anthropic Messages) HTTP server with scripted replies and injected faults.

    It listens on ``127.0.0.1`` in a daemon thread, speaks HTTP/1.1 with keep-alive and real SSE streaming,
    and answers ``POST /v1/chat/completions``, ``POST /v1/messages``, ``POST /v1/embeddings`` and
    ``GET /v1/models``. Unknown models get a 404 ``model_not_found`` error.

    Example:
        ```python
        with FakeProvider(models={"budget": ModelScript(reply="hi", faults=[Fault("rate_limit", every=3)])}) as fp:
            litellm.completion(model="openai/budget", api_base=fp.base_url, api_key="sk-fake", messages=[...])
            assert fp.requests_for("budget")[0].outcome == "ok"
        ```

    Args:
        models: Model name -> script. More can be added with :meth:`set_script`.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        embedding_dim: Default dimension of embedding vectors.
        log: Log each request to stderr.
    """

    def __init__(
        self,
        models: Mapping[str, ModelScript] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        embedding_dim: int = 16,
        log: bool = False,
    ) -> None:
        if embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1")
        self.host = host
        self.embedding_dim = embedding_dim
        self.log = log
        self._requested_port = port
        self._lock = threading.Lock()
        self._state = _State(scripts=dict(models or {}))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started_at = time.time()
        self._clock_start = time.monotonic()

    @classmethod
    def from_script_file(cls, path: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Create a provider from a YAML or JSON script file (the format of ``python -m tierroute.testing``).

        Args:
            path: ``{"models": {name: {reply: ..., faults: [{kind: ..., every: ...}]}}, "embedding_dim": 16}``.
            host: Interface to bind.
            port: Port to bind; 0 picks a free one.

        Returns:
            The provider, not yet started.

        Raises:
            ConfigError: When the file is malformed; the message names the offending key path.
        """
        from tierroute.testing._loader import load_script_file

        scripts, dim = load_script_file(path)
        return cls(scripts, host=host, port=port, embedding_dim=dim or 16)

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind the port and serve in a daemon thread.

        Returns:
            The provider itself.

        Raises:
            RuntimeError: When it is already running.
        """
        if self._server is not None:
            raise RuntimeError("FakeProvider is already running")
        self._stopping.clear()
        server = _Server((self.host, self._requested_port), self)
        self._server = server
        self._started_at = time.time()
        self._clock_start = time.monotonic()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: When the provider is not running.
        """
        if self._server is None:
            raise RuntimeError("FakeProvider is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1`` (``api_base`` for ``openai/<model>``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic base URL (``api_base`` for ``anthropic/<model>``; clients append ``/v1/messages``)."""
        return self.url

    # -------------------------------------------------------------------------------------- scripts

    def set_script(self, model: str, script: ModelScript) -> None:
        """Add or replace a model's script; takes effect on the next request.

        Args:
            model: The model name clients request.
            script: Its behaviour.
        """
        with self._lock:
            self._state.scripts[model] = script

    def remove_script(self, model: str) -> None:
        """Remove a model, so requests for it get 404 ``model_not_found``.

        Args:
            model: The model name.
        """
        with self._lock:
            self._state.scripts.pop(model, None)

    def script(self, model: str) -> ModelScript | None:
        """Return a model's script, or None when the model is unknown.

        Args:
            model: The model name.
        """
        with self._lock:
            return self._state.scripts.get(model)

    def model_names(self) -> list[str]:
        """Return the scripted model names, sorted."""
        with self._lock:
            return sorted(self._state.scripts)

    # ---------------------------------------------------------------------------------- recordings

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._state.records)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """Return the recorded requests for one model, oldest first.

        Args:
            model: The requested model name.
        """
        with self._lock:
            return [r for r in self._state.records if r.model == model]

    def call_count(self, model: str) -> int:
        """Return how many chat calls a model has received since start or :meth:`reset`.

        Args:
            model: The requested model name.
        """
        with self._lock:
            return self._state.calls.get(model, 0)

    def reset(self) -> None:
        """Forget recorded requests, zero the per-model call counters and restart the fault-window clock."""
        with self._lock:
            self._state.records.clear()
            self._state.calls.clear()
            self._clock_start = time.monotonic()

    # ------------------------------------------------------------------------- used by the handler

    def _next_call(self, model: str) -> tuple[int, float]:
        with self._lock:
            number = self._state.calls.get(model, 0) + 1
            self._state.calls[model] = number
            return number, time.monotonic() - self._clock_start

    def _record(
        self,
        method: str,
        path: str,
        model: str | None,
        body: dict[str, Any],
        headers: dict[str, str],
        outcome: str,
        call_number: int | None,
    ) -> None:
        record = RecordedRequest(
            path=path,
            model=model,
            body=body,
            headers=headers,
            timestamp=time.time(),
            outcome=outcome,
            method=method,
            call_number=call_number,
        )
        with self._lock:
            self._state.records.append(record)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the provider stops first; return False when interrupted by :meth:`stop`."""
        return not self._stopping.wait(seconds)

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"FakeProvider({where}, models={self.model_names()})"
