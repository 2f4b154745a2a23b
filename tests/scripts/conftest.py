"""Puts scripts/ on sys.path, as running a script from there does, so that the scripts and
their shared modules (scripts/tiny_models) import in these tests."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
