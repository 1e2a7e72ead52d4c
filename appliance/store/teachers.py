"""Teacher accounts on the box: usernames and salted password hashes (werkzeug's scrypt)."""
from __future__ import annotations

import re
from pathlib import Path

from tinydb import Query, TinyDB
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ConfigError
from ..fsutil import file_lock
from .storage import AtomicJSONStorage

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,39}$")
MIN_PASSWORD = 8


class TeacherAccounts:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _table(self):
        return TinyDB(self.path, storage=AtomicJSONStorage).table("teachers")

    def set_password(self, username: str, password: str) -> None:
        """Create the account, or change its password (provisioning again is safe)."""
        if not USERNAME_RE.match(username or ""):
            raise ConfigError(f"teacher username {username!r} must be 2-40 letters, digits, "
                              "'-', '_' or '.'", hint="choose a simple username like 'ms-okafor'")
        if len(password or "") < MIN_PASSWORD:
            raise ConfigError(f"the teacher password must be at least {MIN_PASSWORD} characters",
                              hint="choose a longer password")
        record = {"username": username, "password_hash": generate_password_hash(password)}
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            table = self._table()
            if not table.update(record, Query().username == username):
                table.insert(record)

    def verify(self, username: str, password: str) -> bool:
        found = self._table().get(Query().username == username)
        # Hash even for an unknown user, so timing does not tell which usernames exist.
        stored = found["password_hash"] if found else generate_password_hash("x" * MIN_PASSWORD)
        return check_password_hash(stored, password or "") and found is not None

    def usernames(self) -> list[str]:
        return sorted(d["username"] for d in self._table().all())
