"""API key material: generation, hashing and constant-time comparison.

A key is ``sk-`` followed by 43 URL-safe characters (256 random bits). With that much entropy a
single SHA-256 is the right hash: a slow KDF adds nothing against guessing and costs CPU on
every request. The key itself is shown once and never stored or logged.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-"
HINT_LENGTH = 10


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hint_of(key: str) -> str:
    """What a listing shows: enough to recognise the key, far too little to use it."""
    return key[:HINT_LENGTH]


def matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of the hash of ``key`` with a stored hash."""
    return secrets.compare_digest(hash_key(key).encode(), stored_hash.encode())


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
