"""api/ids.py: ids stay unique when something else seeds the shared ``random`` generator."""

from __future__ import annotations

import os
import random

from api.ids import unique_hex


def test_ids_do_not_repeat_when_the_shared_generator_is_reseeded() -> None:
    # A library or a test framework (hypothesis replays examples) may seed ``random``; ids
    # are primary keys (responses, items, usage records) and must not repeat after it.
    random.seed(0)
    first = unique_hex()
    random.seed(0)
    assert unique_hex() != first
    assert len(unique_hex(192)) == 48


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id back to the parent, then exit at once
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    assert len(child) == 32 and child != unique_hex()
