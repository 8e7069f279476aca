"""Sessions in Redis: one key per subscriber and service code, saved by compare-and-set.

A record is ``b"<version>|<json>"``. Loading is one ``GET``; saving is one script call that
writes only if the version is still the one read, so a retried hop racing the original can
never clobber the winner's session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.pipeliner import Pipeliner
from gateway.redis_clients import Client

# KEYS[1] = session key; ARGV = expected version (0: must not exist), new record, ttl seconds
_CAS = """
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = tonumber(string.match(current, '^(%d+)|')) or 0 end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass
class Record:
    """One subscriber's session: where they are, what they chose, what they were last told."""

    version: int = 0
    ref: str = ""  # the aggregator session it belongs to
    # The inputs of that session already applied, as their count, a digest of them all (for
    # aggregators that send the whole path: tells a retry or a stray hop from the next one)
    # and the last (a retry of it, for those that send only the latest): the record stays
    # small however long a session runs.
    depth: int = 0
    trail: str = ""
    last: str = ""
    hops: int = 0  # hops answered in that session
    recent: list[str] = field(default_factory=list)  # the sessions before it, newest first
    seen: int = 0  # the screens this session has reached (gateway.funnel.BITS)
    reply: tuple[str, bool] = ("", False)  # the answer to ``path``, for replays
    state: str = ""
    ctx: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # time of the last hop (epoch seconds)
    # The positions in the path of inputs typed on a secret screen (a PIN): the trail is the
    # digest of the path with these masked, and ``last`` is never one of them.
    masked: list[int] = field(default_factory=list)
    # Drawn when the record is made, kept while it lives: the keys of carts and orders made
    # after its first hop carry it, so a session id an aggregator hands out again after the
    # record expired keys them anew ("": a record made, or saved last, by a process before
    # nonces: keyed by the session id alone; a checkout's key, once stored, stays).
    nonce: str = ""

    def dumps(self, version: int) -> bytes:
        body = {
            "ref": self.ref,
            "d": self.depth,
            "t": self.trail,
            "l": self.last,
            "hops": self.hops,
            "recent": self.recent,
            "seen": self.seen,
            "reply": list(self.reply),
            "st": self.state,
            "c": self.ctx,
            "at": round(self.at, 3),
        }
        if self.masked:
            body["m"] = self.masked
        if self.nonce:
            body["n"] = self.nonce
        return b"%d|" % version + orjson.dumps(body)

    @classmethod
    def loads(cls, raw: bytes | None) -> Record | None:
        if not raw:
            return None
        head, _, body = raw.partition(b"|")
        try:
            data = orjson.loads(body)
            walked = (
                {"depth": data["d"], "trail": data["t"], "last": data["l"]}
                if "d" in data
                else walk(data["path"])  # a record of the first release
            )
            return cls(
                version=int(head),
                ref=data["ref"],
                **walked,
                hops=data.get("hops", 0),
                recent=data.get("recent", []),
                seen=data.get("seen", 0),
                reply=(data["reply"][0], bool(data["reply"][1])),
                state=data["st"],
                ctx=data["c"],
                at=data["at"],
                masked=[int(i) for i in data.get("m", ())],
                nonce=str(data.get("n", "")),
            )
        except (orjson.JSONDecodeError, ValueError, KeyError, IndexError, TypeError):
            return None  # unreadable (an older format): start afresh rather than fail the hop


def trail(path: Sequence[str]) -> str:
    """A digest of a whole path of inputs (one hash, however long the path)."""
    data = "\x1f".join(path).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest() if path else ""


MASK = "*"  # what a secret input becomes: never an input itself (AT's separator)


def masked_path(path: Sequence[str], positions: Sequence[int]) -> Sequence[str]:
    """``path`` with the inputs at ``positions`` (a PIN) replaced by :data:`MASK`."""
    if not positions:
        return path
    hidden = set(positions)
    return [MASK if i in hidden else value for i, value in enumerate(path)]


def walk(path: Sequence[str]) -> dict[str, Any]:
    """The record fields of a session whose inputs so far are ``path``."""
    return {"depth": len(path), "trail": trail(path), "last": path[-1] if path else ""}


class SessionStore:
    def __init__(
        self, redis: Client, prefix: str, ttl: int, pipeliner: Pipeliner | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self._cas = redis.register_script(_CAS)
        self._pipeliner = pipeliner or Pipeliner(redis)

    async def close(self) -> None:
        await self._pipeliner.close()

    def key(self, service_code: str, msisdn: str) -> str:
        return f"{self.prefix}s:{{{service_code}:{msisdn}}}"

    def load(self, key: str) -> Awaitable[bytes | None]:
        """The raw record, in one round trip (the catalog's versions come by other means:
        gateway.catalog.CatalogVersions). A future, not a coroutine: one frame less a hop."""
        return self._pipeliner.execute("GET", key)

    def save(self, key: str, record: Record) -> Awaitable[int]:
        """Write ``record`` if nobody saved since it was read: 1, or 0 when the race was
        lost."""
        args = [record.version, record.dumps(record.version + 1), self.ttl]
        return self._pipeliner.run_script(self._cas, [key], args)
