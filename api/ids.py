"""Unique ids for requests, leases and records: fast, unique, not secret.

``uuid.uuid4()`` and ``secrets`` ask the kernel for randomness, a system call each, and a
request made four of them on the hot path. These ids only have to be unique, so they come from
a Mersenne Twister of this module's own, seeded from the OS at import and again in every
forked child. Not the ``random`` module's shared generator: anything in the process that
seeds that one (a library, a test framework replaying examples) would repeat ids, and
stored ids are primary keys. Anything secret (API keys) keeps using ``secrets``.
"""

from __future__ import annotations

import os
import random

_generator = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _generator.seed(os.urandom(32)))


def unique_hex(bits: int = 128) -> str:
    """``bits`` random bits as lowercase hex, zero-padded (32 characters for 128 bits)."""
    return f"{_generator.getrandbits(bits):0{bits // 4}x}"
