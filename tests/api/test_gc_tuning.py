from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api import gc_tuning
from api.gc_tuning import tune_gc


@pytest.fixture
def restored_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gc_tuning, "_frozen", False)
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_threshold_is_raised_and_startup_objects_are_frozen_once() -> None:
    gc.unfreeze()
    tune_gc(12_345, freeze=True)
    assert gc.get_threshold()[0] == 12_345
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # the modules, settings and objects alive at start-up
    survivor = [object() for _ in range(100)]
    tune_gc(12_345, freeze=True)  # a second app in the same process freezes nothing more
    assert gc.get_freeze_count() == frozen
    assert survivor


@pytest.mark.usefixtures("restored_gc")
def test_zero_keeps_pythons_threshold_and_freeze_can_be_off() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(0, freeze=False)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
