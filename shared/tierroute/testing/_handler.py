"""The HTTP request handler of the fake provider: routing, scripted answers and injected faults."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tierroute.testing._answer import Api, compose_answer, prompt_tokens_for
from tierroute.testing._shapes import (
    ErrorReply,
    StreamPlan,
    anthropic_message,
    anthropic_stream,
    error_reply,
    openai_completion,
    openai_stream,
)
from tierroute.testing._text import embedding_vector, estimate_tokens

if TYPE_CHECKING:
    from tierroute.testing._script import Fault, ModelScript
    from tierroute.testing._server import FakeProvider, _Server

__all__ = ["Handler"]

_CHAT_PATHS: dict[str, Api] = {"/chat/completions": "openai", "/messages": "anthropic"}


class _Abort(Exception):
    """The response was deliberately not (fully) sent; the connection is already closed."""


class Handler(BaseHTTPRequestHandler):
    """Serves one connection (HTTP/1.1 keep-alive) for :class:`FakeProvider`."""

    protocol_version = "HTTP/1.1"
    server_version = "tierroute-fake/0.1"
    disable_nagle_algorithm = True
    server: _Server
    _responded = False

    # ------------------------------------------------------------------------------------ plumbing

    @property
    def provider(self) -> FakeProvider:
        """The provider that owns this server."""
        return self.server.provider

    def setup(self) -> None:
        """Register the connection so :meth:`FakeProvider.stop` can close idle keep-alive sockets."""
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        """Flush and close the connection files; tolerate sockets a fault already closed."""
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Log to stderr only when the provider was created with ``log=True``."""
        if self.provider.log:
            sys.stderr.write(f"[fake-provider] {self.address_string()} {format % args}\n")

    def _route(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/v1" or path.startswith("/v1/"):
            return path[3:] or "/"
        return path

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_error(self, reply: ErrorReply) -> None:
        self._send_json(reply.status, reply.body, reply.headers)

    def _hard_close(self, *, reset: bool) -> None:
        """Close the socket now: with ``reset`` a TCP RST (SO_LINGER 0), else a plain FIN."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for stream in (self.wfile, self.rfile):
            with contextlib.suppress(OSError):
                stream.close()
        self.connection.close()  # the fd really closes now that the makefile() reader is closed
        # BaseHTTPRequestHandler flushes and closes these after the verb returns: give it harmless stand-ins.
        self.wfile = io.BytesIO()
        self.rfile = io.BytesIO()
        raise _Abort

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and not self.provider._sleep(seconds):
            self._hard_close(reset=False)

    def _record(self, path: str, model: str | None, body: dict[str, Any], outcome: str, call: int | None) -> None:
        self.provider._record(self.command, path, model, body, self._headers(), outcome, call)

    # -------------------------------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        """Serve ``/v1/models``, ``/v1/models/{id}`` and ``/health``."""
        self._dispatch(self._get)

    def do_POST(self) -> None:
        """Serve ``/v1/chat/completions``, ``/v1/messages`` and ``/v1/embeddings``."""
        self._dispatch(self._post)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Start a response and remember that one was started."""
        self._responded = True
        super().send_response(code, message)

    def _dispatch(self, action: Callable[[], None]) -> None:
        self._responded = False
        try:
            action()
        except _Abort:
            pass
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as exc:  # a failing reply callable must not kill the server
            self.close_connection = True
            if self._responded:
                return
            message = f"FakeProvider script error: {type(exc).__name__}: {exc}"
            body = {"error": {"message": message, "type": "server_error", "param": None, "code": "fake_script_error"}}
            with contextlib.suppress(OSError):
                self._send_json(500, body)

    def _get(self) -> None:
        path = self._route()
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        created = int(self.provider._started_at)
        names = self.provider.model_names()
        if path == "/models":
            self._record(self.path, None, {}, "ok", None)
            data = [{"id": n, "object": "model", "created": created, "owned_by": "tierroute-fake"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        elif path.startswith("/models/") and path[len("/models/") :] in names:
            name = path[len("/models/") :]
            self._record(self.path, name, {}, "ok", None)
            self._send_json(200, {"id": name, "object": "model", "created": created, "owned_by": "tierroute-fake"})
        elif path.startswith("/models/"):
            name = path[len("/models/") :]
            self._record(self.path, name, {}, "not_found", None)
            self._send_error(error_reply("openai", "not_found", model=name))
        else:
            self._unknown_url()

    def _unknown_url(self) -> None:
        self._record(self.path, None, {}, "unknown_url", None)
        message = f"Unknown request URL: {self.command} {self.path}."
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
        self._send_json(404, body)

    def _post(self) -> None:
        raw = self._read_body()
        path = self._route()
        api: Api = _CHAT_PATHS.get(path, "openai")
        if path not in _CHAT_PATHS and path != "/embeddings":
            self._unknown_url()
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._record(self.path, None, {}, "invalid_json", None)
            self._send_error(error_reply(api, "invalid_json", model=""))
            return
        model = body.get("model")
        script = self.provider.script(model) if isinstance(model, str) else None
        if script is None or not isinstance(model, str):
            name = model if isinstance(model, str) else ""
            self._record(self.path, name or None, body, "not_found", None)
            self._send_error(error_reply(api, "not_found", model=name))
        elif path == "/embeddings":
            self._embeddings(model, script, body)
        else:
            self._chat(api, model, script, body)

    # ----------------------------------------------------------------------------------------- chat

    def _chat(self, api: Api, model: str, script: ModelScript, body: dict[str, Any]) -> None:
        call, elapsed = self.provider._next_call(model)
        fault = script.pick_fault(call, elapsed)
        stream = bool(body.get("stream"))
        if fault is not None:
            self._record(self.path, model, body, fault.kind, call)
            self._fault(api, model, script, body, fault, call, stream)
            return
        prompt_tokens = prompt_tokens_for(script, body)
        if script.context_window is not None and prompt_tokens > script.context_window:
            self._record(self.path, model, body, "context_window", call)
            limit = script.context_window
            self._send_error(
                error_reply(api, "context_window", model=model, prompt_tokens=prompt_tokens, context_limit=limit)
            )
            return
        self._record(self.path, model, body, "ok", call)
        self._wait(script.latency_s)
        self._answer(api, model, script, body, call, stream, truncate_after=None)

    def _answer(
        self,
        api: Api,
        model: str,
        script: ModelScript,
        body: dict[str, Any],
        call: int,
        stream: bool,
        truncate_after: int | None,
    ) -> None:
        answer = compose_answer(script, body, api=api, model=model, call_number=call)
        served = script.served_model or model
        created = int(time.time())
        if api == "anthropic":
            response_id = f"msg_{uuid.uuid4().hex[:24]}"
            if stream:
                self._stream(anthropic_stream(answer, model=served, response_id=response_id), script, truncate_after)
                return
            payload: dict[str, Any] = anthropic_message(answer, model=served, response_id=response_id)
        else:
            response_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            if stream:
                options = body.get("stream_options")
                include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
                plan = openai_stream(
                    answer, model=served, response_id=response_id, created=created, include_usage=include_usage
                )
                self._stream(plan, script, truncate_after)
                return
            payload = openai_completion(answer, model=served, response_id=response_id, created=created)
        if truncate_after is None:
            self._send_json(200, payload)
            return
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self._hard_close(reset=False)

    def _stream(self, plan: StreamPlan, script: ModelScript, truncate_after: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        frames = plan.body + plan.tail if truncate_after is None else plan.body[: 1 + truncate_after]
        for index, frame in enumerate(frames):
            if index:
                self._wait(script.chunk_delay_s)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        if truncate_after is not None:
            self._hard_close(reset=False)
        self.wfile.write(b"0\r\n\r\n")

    def _fault(
        self, api: Api, model: str, script: ModelScript, body: dict[str, Any], fault: Fault, call: int, stream: bool
    ) -> None:
        if fault.kind == "timeout":
            self._wait(fault.hang_s)
            self._hard_close(reset=False)
        elif fault.kind == "connection_reset":
            self._hard_close(reset=True)
        elif fault.kind == "truncated_stream":
            self._answer(api, model, script, body, call, stream, truncate_after=fault.after_chunks)
        else:
            auth = self.headers.get("Authorization", "") or self.headers.get("x-api-key", "")
            reply = error_reply(
                api,
                fault.kind,
                model=model,
                fault=fault,
                api_key=auth.removeprefix("Bearer ").strip(),
                prompt_tokens=prompt_tokens_for(script, body),
                context_limit=script.context_window,
            )
            self._send_error(reply)

    # ----------------------------------------------------------------------------------- embeddings

    def _embeddings(self, model: str, script: ModelScript, body: dict[str, Any]) -> None:
        raw = body.get("input", "")
        items: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        dimensions = body.get("dimensions")
        dim = dimensions if isinstance(dimensions, int) and dimensions > 0 else None
        dim = dim or script.embedding_dim or self.provider.embedding_dim
        as_base64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        tokens = 0
        for index, item in enumerate(items):
            text = item if isinstance(item, str) else json.dumps(item)
            tokens += estimate_tokens(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
            vector = embedding_vector(text, dim)
            encoded: Any = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        self._record(self.path, model, body, "ok", None)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(200, {"object": "list", "data": data, "model": script.served_model or model, "usage": usage})
