"""The API session tokens a wallet signed in for, kept in ``<wallet dir>/sessions.json`` until they expire, so a
command does not sign in again (nor ask for the keystore password) while the last session lasts.

One token per (API URL, address). A token is a bearer credential for reads and relayed actions, never for keys:
the file is written 0600, atomically (a temporary file renamed over it), in the 0700 wallet dir. Two commands
writing at once may lose one token: the next command then signs in again, nothing worse. A damaged file is
treated as empty and rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wallet.errors import WalletStorageError

FILE_NAME = "sessions.json"
FILE_MODE = 0o600
DIR_MODE = 0o700
VERSION = 1
# a token this close to its expiry is not used: a request sent with it could arrive after it lapsed
MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class CachedSession:
    token: str
    expires_at: datetime


class SessionCache:
    """The session tokens of one wallet dir's wallets, per API."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, directory: Path) -> SessionCache:
        return cls(directory / FILE_NAME)

    def get(self, api: str, address: str, now: datetime | None = None) -> str | None:
        """The cached token, unless it is missing or expires within ``MARGIN``."""
        found = self._read().get(_key(api, address))
        if found is None or found.expires_at - MARGIN <= (now or datetime.now(UTC)):
            return None
        return found.token

    def put(self, api: str, address: str, token: str, expires_at: datetime) -> None:
        """Keeps the token until ``expires_at``; expired entries of other wallets are dropped on the way."""
        now = datetime.now(UTC)
        sessions = {key: s for key, s in self._read().items() if s.expires_at > now}
        sessions[_key(api, address)] = CachedSession(token, expires_at)
        self._write(sessions)

    def drop(self, api: str, address: str) -> None:
        """Forgets the token (the API said it is no longer valid)."""
        sessions = self._read()
        if sessions.pop(_key(api, address), None) is not None:
            self._write(sessions)

    def _read(self) -> dict[str, CachedSession]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # unreadable or not JSON: start afresh
            return {}
        entries = data.get("sessions") if isinstance(data, dict) and data.get("version") == VERSION else None
        if not isinstance(entries, dict):
            return {}
        sessions = {}
        for key, entry in entries.items():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                expires_at = datetime.fromisoformat(entry["expires_at"])
                if expires_at.tzinfo is not None and isinstance(entry["token"], str):
                    sessions[key] = CachedSession(entry["token"], expires_at)
        return sessions

    def _write(self, sessions: dict[str, CachedSession]) -> None:
        body: dict[str, Any] = {
            "version": VERSION,
            "sessions": {
                key: {"token": s.token, "expires_at": s.expires_at.isoformat()} for key, s in sorted(sessions.items())
            },
        }
        data = json.dumps(body, indent=1).encode()
        directory = self.path.parent
        temporary = directory / f".{self.path.name}.{secrets.token_hex(4)}.tmp"  # dot-named: keystore listing skips it
        try:
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise WalletStorageError(self.path, exc.strerror or str(exc)) from None
        finally:
            temporary.unlink(missing_ok=True)


def _key(api: str, address: str) -> str:
    return f"{api.rstrip('/')} {address}"
