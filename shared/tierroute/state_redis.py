"""The Redis :class:`~tierroute.state.StateStore`: several processes share circuits and windows.

Every multi-step operation is one Lua script, so it is atomic across processes. See :mod:`tierroute.state`
for the record model.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tierroute.errors import ConfigError, MissingDependencyError
from tierroute.state import (
    OPEN_RECORD_GRACE_S,
    WINDOW_BUCKETS,
    CircuitState,
    StateStore,
    StateStoreError,
    _bucket,
    _circuit_state,
    _span,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["LoopClient", "RedisLoopClients", "RedisStateStore", "redact_url", "validate_redis_url"]

# ---- redis ----------------------------------------------------------------------------------------------

# KEYS: state hash, failures zset. ARGV: now, cutoff, allowed_fails, open_until, member, fails_ttl_ms,
# open_ttl_ms, window_s.
_RECORD_FAILURE = """
local now = tonumber(ARGV[1])
local cu = redis.call('HGET', KEYS[1], 'cooldown_until')
local function open()
  redis.call('HSET', KEYS[1], 'cooldown_until', ARGV[4])
  redis.call('HDEL', KEYS[1], 'probe_until')
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return 1
end
if cu then
  if now < tonumber(cu) then return 0 end
  return open()
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[5])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return open() end
redis.call('HSET', KEYS[1], 'window_s', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
"""

# KEYS: state hash, failures zset. ARGV: now.
_RECORD_SUCCESS = """
local cu = redis.call('HGET', KEYS[1], 'cooldown_until')
if not cu then return 0 end
if tonumber(ARGV[1]) < tonumber(cu) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

# KEYS: state hash, failures zset. ARGV: now. Returns {cooldown_until, probe_until, failures}.
_CIRCUIT = """
local h = redis.call('HMGET', KEYS[1], 'cooldown_until', 'probe_until', 'window_s')
local n = 0
if h[3] then
  local cutoff = string.format('(%.17g', tonumber(ARGV[1]) - tonumber(h[3]))
  n = redis.call('ZCOUNT', KEYS[2], cutoff, '+inf')
end
return {h[1] or '', h[2] or '', n}
"""

# KEYS: state hash. ARGV: now, probe_until, min_ttl_ms.
_ACQUIRE_PROBE = """
local cu = redis.call('HGET', KEYS[1], 'cooldown_until')
if not cu then return 0 end
local now = tonumber(ARGV[1])
if now < tonumber(cu) then return 0 end
local pu = redis.call('HGET', KEYS[1], 'probe_until')
if pu and now < tonumber(pu) then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

# KEYS: window hash (field 'w' = bucket width, 'b<index>' = bucket sums). ARGV: now, window_s, value, width.
_WINDOW_ADD = """
local w = redis.call('HGET', KEYS[1], 'w')
if w then w = tonumber(w) else
  w = tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'w', ARGV[4])
end
local now = tonumber(ARGV[1])
local idx = math.floor(now / w)
local span = math.max(1, math.ceil(tonumber(ARGV[2]) / w - 1e-9))
redis.call('HINCRBYFLOAT', KEYS[1], string.format('b%d', idx), ARGV[3])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 1) == 'b' and tonumber(string.sub(f, 2)) <= idx - span then
    redis.call('HDEL', KEYS[1], f)
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) + w) * 1000) + 1000)
return 1
"""

_SCRIPTS = {
    "record_failure": _RECORD_FAILURE,
    "record_success": _RECORD_SUCCESS,
    "circuit": _CIRCUIT,
    "acquire_probe": _ACQUIRE_PROBE,
    "window_add": _WINDOW_ADD,
}


def _num(x: float) -> str:
    return repr(float(x))


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000.0)) + 1000


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or a ``password`` query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{userinfo}@{hostport}"
        query = parts.query
        if "password" in query.lower():
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable url>"


def validate_redis_url(url: str) -> None:
    """Check a Redis URL's scheme, host, port, db and query.

    Raises:
        ConfigError: The URL is malformed (``state.url``); the password is not shown.
    """
    safe = redact_url(url)
    hint = "use redis://[user:password@]host:port/db, rediss://... or unix:///path/to/redis.sock"
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"unsupported scheme {parts.scheme!r}")
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("no socket path")
        else:
            if not parts.hostname:
                raise ValueError("no host")
            _ = parts.port  # raises ValueError when not a valid port number
            db = parts.path.strip("/")
            if db and not db.isdigit():
                raise ValueError(f"database {db!r} is not a number")
        from redis.asyncio.connection import parse_url

        parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"malformed Redis URL {safe}: {exc}", path="state.url", hint=hint) from None


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@dataclass
class LoopClient:
    """One event loop's Redis client and its registered Lua scripts."""

    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: Redis
    scripts: dict[str, AsyncScript]


class RedisLoopClients:
    """One ``redis.asyncio`` client per running event loop (clients are bound to the loop that made them).

    Shared by every Redis-backed store (state, budgets), so each may be called from any loop or thread.

    Args:
        url: A URL already checked with :func:`validate_redis_url`.
        timeout_s: Connect and read timeout of each call.
        scripts: Lua sources registered on every client, by name.
    """

    def __init__(self, url: str, timeout_s: float, scripts: dict[str, str]) -> None:
        self._url = url
        self._timeout = timeout_s
        self._sources = dict(scripts)
        self._lock = threading.Lock()
        self._clients: dict[int, LoopClient] = {}

    def get(self) -> LoopClient:
        """The calling loop's client (made on first use; clients of closed loops are dropped)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(id(loop))
            if entry is not None and entry.loop() is loop:
                return entry
            for k, e in list(self._clients.items()):
                dead = e.loop()
                if dead is None or dead.is_closed():
                    del self._clients[k]
            from redis.asyncio import Redis

            client = Redis.from_url(
                self._url,
                decode_responses=True,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
            )
            scripts = {name: client.register_script(src) for name, src in self._sources.items()}
            entry = self._clients[id(loop)] = LoopClient(weakref.ref(loop), client, scripts)
            return entry

    async def aclose(self, *, all_loops: bool = False) -> None:
        """Close the calling loop's client; with ``all_loops``, also those of other running loops."""
        current = asyncio.get_running_loop()
        with self._lock:
            entries = list(self._clients.values())
            for key, entry in list(self._clients.items()):
                loop = entry.loop()
                if loop is current or all_loops or loop is None or loop.is_closed():
                    del self._clients[key]
        for entry in entries:
            loop = entry.loop()
            if loop is current:
                await entry.client.aclose()
            elif all_loops and loop is not None and loop.is_running() and not loop.is_closed():
                fut = asyncio.run_coroutine_threadsafe(entry.client.aclose(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(fut), timeout=self._timeout)


class RedisStateStore(StateStore):
    """State in Redis, shared by every process that uses the same URL and prefix.

    Every multi-step operation is one Lua script, hence atomic across processes. Keys live under
    ``{prefix}:{{key}}:...`` (the braces keep a key's records in one Redis Cluster slot) and all carry TTLs:
    failure windows expire after ``window_s``, sums after their window, open circuits
    :data:`OPEN_RECORD_GRACE_S` after their cooldown.

    ``redis.asyncio`` clients are bound to the event loop that created them, so the store keeps one client
    per running loop and can be called from any loop or thread.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://...`` or ``unix:///path.sock``.
        prefix: Namespace of every key.
        socket_timeout_s: Connect and read timeout of each Redis call.

    Raises:
        MissingDependencyError: redis-py is not installed.
        ConfigError: The URL is malformed (``state.url``).
    """

    def __init__(self, url: str, prefix: str = "tierroute", *, socket_timeout_s: float = 5.0) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("redis", "redis", "the Redis state store") from exc
        validate_redis_url(url)
        self._url = url
        self.safe_url = redact_url(url)
        self.prefix = prefix
        self._timeout = socket_timeout_s
        self._pool = RedisLoopClients(url, socket_timeout_s, _SCRIPTS)

    def __repr__(self) -> str:
        return f"RedisStateStore(url={self.safe_url!r}, prefix={self.prefix!r})"

    # ---- clients ---------------------------------------------------------------------------------------

    def _client(self) -> LoopClient:
        return self._pool.get()

    def _error(self, exc: BaseException) -> StateStoreError:
        detail = str(exc).replace(self._url, self.safe_url)
        password = urlsplit(self._url).password
        if password:
            detail = detail.replace(password, "***")
        return StateStoreError(f"Redis state store at {self.safe_url} failed: {detail}", url=self.safe_url)

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        from redis.exceptions import RedisError

        entry = self._client()
        try:
            return await entry.scripts[name](keys=list(keys), args=list(args), client=entry.client)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise self._error(exc) from exc

    def _keys(self, key: str) -> tuple[str, str]:
        base = f"{self.prefix}:{{{key}}}"
        return f"{base}:cb", f"{base}:fails"

    def _window_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:win"

    # ---- circuits --------------------------------------------------------------------------------------

    async def record_failure(
        self, key: str, *, now: float, window_s: float, allowed_fails: int, cooldown_s: float
    ) -> bool:
        """See :meth:`StateStore.record_failure`."""
        args: list[str | int | float] = [
            _num(now),
            _num(now - window_s),
            allowed_fails,
            _num(now + cooldown_s),
            f"{_num(now)}:{uuid.uuid4().hex}",
            _ms(window_s),
            _ms(cooldown_s + OPEN_RECORD_GRACE_S),
            _num(window_s),
        ]
        return bool(await self._run("record_failure", self._keys(key), args))

    async def record_success(self, key: str, *, now: float) -> None:
        """See :meth:`StateStore.record_success`."""
        await self._run("record_success", self._keys(key), [_num(now)])

    async def circuit(self, key: str, *, now: float) -> CircuitState:
        """See :meth:`StateStore.circuit`."""
        cu, pu, n = await self._run("circuit", self._keys(key), [_num(now)])
        return _circuit_state(now, int(n), float(cu) if cu else None, float(pu) if pu else None)

    async def acquire_probe(self, key: str, *, now: float, ttl_s: float) -> bool:
        """See :meth:`StateStore.acquire_probe`."""
        args: list[str | int | float] = [_num(now), _num(now + ttl_s), _ms(ttl_s + OPEN_RECORD_GRACE_S)]
        return bool(await self._run("acquire_probe", self._keys(key)[:1], args))

    # ---- windows ---------------------------------------------------------------------------------------

    async def window_add(self, key: str, value: float, *, now: float, window_s: float) -> None:
        """See :meth:`StateStore.window_add`."""
        args: list[str | int | float] = [_num(now), _num(window_s), _num(value), _num(window_s / WINDOW_BUCKETS)]
        await self._run("window_add", [self._window_key(key)], args)

    async def window_sum(self, key: str, *, now: float, window_s: float) -> float:
        """See :meth:`StateStore.window_sum`."""
        from redis.exceptions import RedisError

        entry = self._client()
        try:
            fields: dict[str, str] = await entry.client.hgetall(self._window_key(key))  # type: ignore[assignment]
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise self._error(exc) from exc
        if "w" not in fields:
            return 0.0
        width = float(fields["w"])
        oldest = _bucket(now, width) - _span(window_s, width)
        return float(sum(float(v) for f, v in fields.items() if f.startswith("b") and int(f[1:]) > oldest))

    # ---- housekeeping ----------------------------------------------------------------------------------

    async def reset(self, key_prefix: str | None = None) -> None:
        """See :meth:`StateStore.reset`. Deletes matching keys with SCAN + UNLINK (not atomic as a whole)."""
        from redis.exceptions import RedisError

        pattern = f"{_glob_escape(self.prefix)}:"
        pattern += "*" if key_prefix is None else f"{{{_glob_escape(key_prefix)}*"
        client = self._client().client
        try:
            batch: list[str] = []
            async for name in client.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise self._error(exc) from exc

    async def aclose(self, *, all_loops: bool = False) -> None:
        """Close the calling event loop's client (the store reconnects if used again).

        Args:
            all_loops: Also close the clients of other event loops that are still running (for shutdown:
                calls in flight on those loops fail). Clients of closed loops are dropped either way.
        """
        await self._pool.aclose(all_loops=all_loops)
