"""Optional encryption at rest of what tasks carry: arguments, results, errors, questions.

Task payloads can hold anything a caller sends or a tool returns — file contents, tokens,
personal data — and Redis keeps them until their TTL ends (and in its AOF/RDB files and
replicas). With a key, every payload is sealed with Fernet (AES-128-CBC + HMAC-SHA256, from
the well-reviewed ``cryptography`` package) before it leaves the process, so Redis only ever
holds ciphertext; the key never goes to Redis. Several keys (comma-separated, newest first)
allow rotation: new payloads use the first, old ones still open with any.

What stays readable to Redis, because the engine routes on it: task keys, function names,
statuses, timestamps, metadata (the MCP layer's tool name and owner) and progress.

Sealed values are marked ``enc1:`` so a docket can be switched on to encryption with tasks
of the plain era still readable (and a docket without the key says clearly what is missing).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "MCP_TASKS_ENCRYPTION_KEY"
_MARK = b"enc1:"


class CipherError(ValueError):
    """A stored payload cannot be opened: no key, or not the key it was sealed with."""


class Codec:
    """Seals payloads on the way to Redis and opens them on the way back (or passes them
    through unchanged when no key is configured)."""

    def __init__(self, keys: str | bytes | list[str | bytes] | None = None) -> None:
        if isinstance(keys, (str, bytes)):
            keys = [k for k in _split(keys) if k]
        self._names_key = b""
        if keys:
            first = keys[0].encode() if isinstance(keys[0], str) else keys[0]
            # Key names derived from sealed data (a limit per argument value) use an HMAC
            # under a key of their own, derived from the newest encryption key.
            self._names_key = hashlib.sha256(b"mcp-tasks key names\0" + first).digest()
            try:
                self._fernet: MultiFernet | None = MultiFernet([Fernet(k) for k in keys])
            except ValueError as exc:
                raise ValueError(
                    f"an encryption key must be 32 url-safe base64-encoded bytes "
                    f"(make one with `mcp-tasks keygen`): {exc}"
                ) from None
        else:
            self._fernet = None

    @classmethod
    def from_env(cls) -> Codec:
        return cls(os.environ.get(KEY_ENV) or None)

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def name(self, text: str) -> str:
        """``text`` as it may appear in a Redis key name: unchanged without a key, else an
        HMAC of it (a plain hash of a low-entropy value, a user id say, is easy to invert)."""
        if self._fernet is None:
            return text
        return hmac.new(self._names_key, text.encode(), hashlib.sha256).hexdigest()

    def seal(self, plain: str | bytes) -> bytes:
        data = plain.encode() if isinstance(plain, str) else plain
        if self._fernet is None:
            return data
        return _MARK + self._fernet.encrypt(data)

    def open(self, stored: bytes | str) -> bytes:
        data = stored.encode() if isinstance(stored, str) else stored
        if not data.startswith(_MARK):
            return data
        if self._fernet is None:
            raise CipherError(f"this task's data is encrypted: set {KEY_ENV} to open it")
        try:
            return self._fernet.decrypt(data[len(_MARK) :])
        except InvalidToken:
            raise CipherError(
                f"this task's data was encrypted with another key than {KEY_ENV} holds"
            ) from None


def new_encryption_key() -> str:
    """A fresh key for :data:`KEY_ENV`."""
    return Fernet.generate_key().decode()


def _split(keys: str | bytes) -> list[str]:
    text = keys.decode() if isinstance(keys, bytes) else keys
    return [part.strip() for part in text.split(",")]


PLAIN = Codec()
"""The codec of a docket without a key (also what state parsing uses by default)."""
