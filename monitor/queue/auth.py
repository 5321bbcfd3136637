"""Who may use the queue: users with scrypt password hashes, an API token, login sessions.

Secrets come only from settings (a users file, a token in the environment or a file);
nothing has a default. A password hash is ``scrypt$N$r$p$<salt>$<hash>`` (base64), made by
:func:`hash_password` (``python -m monitor.queue.auth`` prints one for a password read
from stdin). Sessions are random ids held in memory (a restart logs everyone out), each
with a CSRF token for the page's forms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def load_users(path: str | Path) -> dict[str, str]:
    """``{"user": "scrypt$..."}`` from a JSON file; a clear error for anything else."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: expected a JSON object of user name -> password hash")
    return data


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf: str
    expires: float


class Authenticator:
    """Checks passwords and tokens; keeps login sessions."""

    def __init__(self, users: dict[str, str], token: str | None = None, token_user: str = "api-client",
                 session_ttl: float = 8 * 3600, clock: Callable[[], float] = time.monotonic) -> None:
        if not users and not token:
            raise ValueError("the queue needs MEDSAFETY_QUEUE_USERS_FILE or MEDSAFETY_QUEUE_TOKEN(_FILE): "
                             "there is no default login")
        self.users = users
        self._token = token
        self.token_user = token_user
        self.session_ttl = session_ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def login(self, user: str, password: str) -> str | None:
        """A new session id, or None for a wrong user or password (same work either way)."""
        stored = self.users.get(user, _DUMMY_HASH)
        ok = verify_password(password, stored) and user in self.users
        if not ok:
            return None
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(user, secrets.token_urlsafe(16), self._clock() + self.session_ttl)
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[session_id]  # type: ignore[arg-type]
            return None
        return session

    def logout(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    def token_holder(self, authorization: str | None) -> str | None:
        """The user a ``Bearer`` header authenticates, if any."""
        if not self._token or not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer "):].strip()
        return self.token_user if hmac.compare_digest(offered.encode(), self._token.encode()) else None


_DUMMY_HASH = hash_password(secrets.token_urlsafe(8))


if __name__ == "__main__":  # pragma: no cover
    print(hash_password(sys.stdin.readline().rstrip("\n")))
