"""Requests in flight, journaled in shared memory so that a crash loses none of their usage.

Each admitted request takes a fixed-size slot in a file mapped into memory
(``<pid>@<host>@<unique>.inflight`` in the usage journal directory). Its admission (what its
usage record and its limiter reservation need, as JSON) is written once; its progress (prompt
and completion tokens, the status sent) is stored in place before each body message goes to
the client: a few stores into a shared mapping, no system call. The mapped pages belong to the
kernel's page cache, so every store survives the process being killed (not the machine losing
power: nothing is synced). A later start reads the file of a dead process and settles each
request still in it (``api.usage.interrupted``).

A slot is written so that a kill between any two stores leaves it readable: the admission and
the counters first, the state (which marks the slot as taken) last; freeing it clears the state
first. Counters only grow, and each is one aligned 8-byte store.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

logger = logging.getLogger(__name__)

SUFFIX = ".inflight"
SLOT_SIZE = 4096  # one page: an admission's JSON is well under 2 KiB
SLOTS_PER_FILE = 256
# state u32, status u32, prompt u64, completion u64, admission length u32, admission bytes.
_HEAD = struct.Struct("<IIQQI")
_STATE = struct.Struct("<I")
_TOKENS = struct.Struct("<QQ")
_STATUS_AT, _TOKENS_AT, _META_AT = 4, 8, _HEAD.size
MAX_META = SLOT_SIZE - _META_AT


class SlotState(IntEnum):
    FREE = 0
    RUNNING = 1  # admitted; its limiter reservation is still held
    SETTLING = 2  # the reservation is being (or has been) settled by the request itself


class InflightSlot:
    """One request's place in the table; every method is a store into shared memory."""

    __slots__ = ("_free", "_map", "_offset", "_table")

    def __init__(self, table: InflightTable, region: mmap.mmap, offset: int) -> None:
        self._table, self._map, self._offset = table, region, offset
        self._free = False

    def progress(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Tokens delivered so far (called before the bytes that carry them are sent)."""
        if not self._free:
            _TOKENS.pack_into(
                self._map, self._offset + _TOKENS_AT, prompt_tokens, completion_tokens
            )

    def status(self, code: int) -> None:
        if not self._free:
            _STATE.pack_into(self._map, self._offset + _STATUS_AT, code)

    def settling(self) -> None:
        """The request settles its own reservation from here on: a replay must not."""
        if not self._free:
            _STATE.pack_into(self._map, self._offset, SlotState.SETTLING)

    def release(self) -> None:
        """The request's usage record is journaled: the slot is free for another request."""
        if not self._free:
            self._free = True
            _STATE.pack_into(self._map, self._offset, SlotState.FREE)
            self._table.give_back(self._map, self._offset)


@dataclass(frozen=True, slots=True)
class SlotView:
    """A taken slot as read back from a file."""

    state: SlotState
    status: int
    prompt_tokens: int
    completion_tokens: int
    admission: bytes


class InflightTable:
    """This process's slots: files of ``SLOTS_PER_FILE`` slots, added as requests need them."""

    def __init__(self, directory: Path, owner: str, slots_per_file: int = SLOTS_PER_FILE) -> None:
        self._dir, self._owner, self._per_file = directory, owner, slots_per_file
        self._files: list[tuple[Path, mmap.mmap]] = []
        self._free: list[tuple[mmap.mmap, int]] = []
        self._taken = 0

    def admit(self, admission: bytes) -> InflightSlot | None:
        """A slot holding ``admission`` (None when it cannot be journaled: too large)."""
        if len(admission) > MAX_META:
            logger.warning("admission of %d bytes is too large to journal", len(admission))
            return None
        if not self._free:
            self._add_file()
        region, offset = self._free.pop()
        region[offset + _META_AT : offset + _META_AT + len(admission)] = admission
        _HEAD.pack_into(region, offset, SlotState.FREE, 0, 0, 0, len(admission))
        _STATE.pack_into(region, offset, SlotState.RUNNING)  # last: the slot is now taken
        self._taken += 1
        return InflightSlot(self, region, offset)

    def give_back(self, region: mmap.mmap, offset: int) -> None:
        self._taken -= 1
        self._free.append((region, offset))

    @property
    def in_flight(self) -> int:
        return self._taken

    def close(self) -> None:
        """Remove the files if no request holds a slot; otherwise leave them to be replayed
        (a request that outlives shutdown still writes into its mapping, never a closed one)."""
        if self._taken:
            logger.warning("%d requests still in flight at shutdown: left to replay", self._taken)
            return
        for path, region in self._files:
            region.close()
            path.unlink(missing_ok=True)
        self._files, self._free = [], []

    def _add_file(self) -> None:
        path = self._dir / f"{self._owner}@{uuid.uuid4().hex}{SUFFIX}"
        size = SLOT_SIZE * self._per_file
        with path.open("w+b") as handle:
            handle.truncate(size)
            region = mmap.mmap(handle.fileno(), size)
        self._files.append((path, region))
        # Popped from the end: the file's first slot is used first.
        self._free += [(region, SLOT_SIZE * i) for i in reversed(range(self._per_file))]


def read_slots(path: Path) -> Iterator[SlotView]:
    """The taken slots of a table file (of a process that is gone)."""
    data = path.read_bytes()
    for offset in range(0, len(data) - SLOT_SIZE + 1, SLOT_SIZE):
        state, status, prompt, completion, length = _HEAD.unpack_from(data, offset)
        if state == SlotState.FREE:
            continue
        with contextlib.suppress(ValueError):
            start = offset + _META_AT
            yield SlotView(
                SlotState(state),
                status,
                prompt,
                completion,
                data[start : start + min(length, MAX_META)],
            )
