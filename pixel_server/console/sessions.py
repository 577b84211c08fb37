"""Console sessions: a report token is exchanged once for a server-side session.

A session id is 256 random bits, sent only in an HttpOnly, SameSite=Strict
cookie (Secure behind https). The server keeps only its SHA-256, with the hash
of the token it was opened with, so neither a stolen sessions file nor a log
can be replayed. A session ends on logout, after ``idle_s`` without a request,
``absolute_s`` after login whatever happens, and as soon as its token is
revoked or expires (checked on every request against the registry).

Sessions survive a restart: they live in memory and in a 0600 JSON file in the
data directory (rewritten atomically on login and logout; the last-seen time is
written at most once a minute, so idle expiry may be up to a minute generous
after a restart). One storage process serves the console, so one file is
enough; with several console processes, each would keep its own sessions.

The CSRF token of a session is derived from its id (``csrf_of``): a page can
show it without it revealing the id, and nothing more is stored.

Login tickets carry the old ``GET /login?token=`` links over to the POST
login: the GET swaps the token for a ticket (single use, two minutes) that the
page posts back, so the token never appears in a page.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import orjson

from pixel_server.atomic import replace_file

FILE_NAME: Final = "console-sessions.json"
IDLE_S: Final = 12 * 3600.0
ABSOLUTE_S: Final = 7 * 86_400.0
TICKET_S: Final = 120.0
_TOUCH_WRITE_S: Final = 60.0


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_of(session_id: str) -> str:
    """The session's CSRF token: one-way from its id, so a page may carry it."""
    return hashlib.sha256(b"csrf:" + session_id.encode()).hexdigest()[:32]


@dataclass
class Session:
    token_hash: str
    created: float
    last_seen: float


class SessionStore:
    """Thread-safe; ``path`` None keeps sessions in memory only (tests of expiry)."""

    def __init__(
        self,
        path: Path | None,
        *,
        idle_s: float = IDLE_S,
        absolute_s: float = ABSOLUTE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._tickets: dict[str, tuple[str, float]] = {}  # hash -> (token hash, until)
        self._written = 0.0
        self._load()

    # ---------------------------------------------------------------- file

    def _load(self) -> None:
        if self.path is None:
            return
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
            raw = orjson.loads(self.path.read_bytes())
            self._sessions = {k: Session(**v) for k, v in raw.items()}

    def _save(self) -> None:
        """Atomically, 0600 (caller holds the lock)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(self.path, orjson.dumps({k: asdict(v) for k, v in self._sessions.items()}))
        self._written = self._clock()

    # ------------------------------------------------------------ sessions

    def open(self, token_hash: str) -> str:
        """A new session for a (checked) token; returns its id, shown only in the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._sessions[_hash(session_id)] = Session(token_hash, now, now)
            self._save()
        return session_id

    def get(self, session_id: str) -> Session | None:
        """The live session (its last-seen time moved on), or None."""
        if not session_id:
            return None
        key = _hash(session_id)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                self._save()
                return None
            session.last_seen = now
            if now - self._written > _TOUCH_WRITE_S:
                self._save()
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            if self._sessions.pop(_hash(session_id), None) is not None:
                self._save()

    def end_for_token(self, token_hash: str) -> int:
        """End every session of a token (revoked); returns how many."""
        with self._lock:
            gone = [k for k, s in self._sessions.items() if s.token_hash == token_hash]
            for key in gone:
                del self._sessions[key]
            if gone:
                self._save()
        return len(gone)

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_s or now - session.created > self.absolute_s

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]

    # ------------------------------------------------------------- tickets

    def ticket(self, token_hash: str) -> str:
        """A single-use, short-lived stand-in for a token (old GET login links)."""
        ticket = secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
            self._tickets[_hash(ticket)] = (token_hash, now + TICKET_S)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The ticket's token hash, once; None when unknown, used or too old."""
        with self._lock:
            found = self._tickets.pop(_hash(ticket), None)
        if found is None or found[1] < self._clock():
            return None
        return found[0]
