"""Credentials we must use (TikTok access tokens, webhook secrets, store API
tokens) encrypted at rest.

They are sealed with AES-256-GCM (``cryptography``'s AEAD) under a key kept in
a key file, never in ClickHouse: a copy of the database, a backup or a
ClickHouse server's disk holds only ciphertext. The key file is created on
first start (mode 0600) in the data directory, or at ``PIXEL_SECRET_KEY_FILE``
(needed where several hosts share one ClickHouse: they must share the file).

A sealed value reads ``enc:v1:<key id>:<base64(nonce | ciphertext | tag)>``;
the pixel id and field name are the associated data, so a sealed value copied
onto another pixel or field does not open. The file holds a list of keys and
names the current one, so :meth:`SecretBox.rotate` can seal everything anew
and only then drop the old key: a crash half-way leaves every value readable.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pixel_server.atomic import replace_file

PREFIX: Final = "enc:v1:"
KEY_FILE: Final = "secret.key"
_NONCE: Final = 12


class SecretKeyError(Exception):
    """The key file is missing a key, unreadable, or too open. Safe to show."""


class SecretBox:
    """Keys are read (or the file created) on first use, not on construction:
    the server builds its parts before it holds the data directory's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, bytes] = {}
        self._current = ""

    def _ready(self) -> None:
        if not self._current:
            self._load()

    # key file ---------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key_id = secrets.token_hex(4)
            self._save({key_id: AESGCM.generate_key(bit_length=256)}, key_id)
        if self.path.stat().st_mode & 0o077:
            raise SecretKeyError(f"secret key file {self.path} is readable by others: chmod 600 it")
        try:
            doc = orjson.loads(self.path.read_bytes())
            keys = {k: base64.b64decode(v) for k, v in doc["keys"].items()}
            current = doc["current"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SecretKeyError(f"secret key file {self.path} is unreadable: {exc}") from None
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise SecretKeyError(f"secret key file {self.path} is damaged")
        self._keys, self._current = keys, current

    def _save(self, keys: dict[str, bytes], current: str) -> None:
        doc = {
            "current": current,
            "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()},
        }
        replace_file(self.path, orjson.dumps(doc))
        self._keys, self._current = dict(keys), current

    # values -----------------------------------------------------------------

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal(self, value: str, context: str) -> str:
        """``value`` encrypted under the current key; '' stays ''."""
        if not value:
            return ""
        self._ready()
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, value.encode(), context.encode())
        return f"{PREFIX}{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, value: str, context: str) -> str:
        """The clear value of a sealed one (a value stored before sealing is as is)."""
        if not self.is_sealed(value):
            return value
        self._ready()
        key_id, _, blob = value[len(PREFIX) :].partition(":")
        if key_id not in self._keys:
            self._load()  # another host sharing the key file may have rotated it
        key = self._keys.get(key_id)
        if key is None:
            raise SecretKeyError(f"a secret was sealed with key {key_id!r}, not in {self.path}")
        raw = base64.b64decode(blob)
        try:
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(f"a secret does not open with key {key_id!r}") from None

    # rotation ---------------------------------------------------------------

    def begin_rotation(self) -> str:
        """Add a new key and make it current; old keys still open old values."""
        self._load()
        key_id = secrets.token_hex(4)
        self._save({**self._keys, key_id: AESGCM.generate_key(bit_length=256)}, key_id)
        return key_id

    def finish_rotation(self) -> None:
        """Drop every key but the current one (once everything is sealed anew)."""
        self._save({self._current: self._keys[self._current]}, self._current)

    @property
    def current_key_id(self) -> str:
        self._ready()
        return self._current

    def sealed_with_current(self, value: str) -> bool:
        return not value or value.startswith(f"{PREFIX}{self.current_key_id}:")
