"""Unique ids for requests, leases and records: fast, unique, not secret.

``uuid.uuid4()`` and ``secrets`` ask the kernel for randomness, a system call each, and a
request made four of them on the hot path. These ids only have to be unique, so they come from
``random``'s generator, which the OS seeds when the process starts and which is seeded again
in every forked worker. Anything secret (API keys) keeps using ``secrets``.
"""

from __future__ import annotations

import random


def unique_hex(bits: int = 128) -> str:
    """``bits`` random bits as lowercase hex, zero-padded (32 characters for 128 bits)."""
    return f"{random.getrandbits(bits):0{bits // 4}x}"
