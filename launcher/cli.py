"""Command lines of ``python -m launcher`` and ``python -m launcher.stack``.

Both take their settings from the environment, so the command line only offers ``--help``
(listing those variables with their defaults); anything else is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from launcher.settings import LauncherSettings


def environment_help() -> str:
    """One line per ``TRITON_*`` variable with its default."""
    fields = LauncherSettings.model_fields
    width = max(len(name) for name in fields) + len("TRITON_")
    lines = ["environment (TRITON_*):"]
    for name, field in fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"  {'TRITON_' + name.upper():<{width}}  default: {default}")
    return "\n".join(lines)


def parse_command_line(
    prog: str, description: str, argv: Sequence[str] | None, extra_epilog: str = ""
) -> argparse.Namespace:
    """Parse ``argv`` (``--help`` prints usage and exits 0; other arguments exit 2)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="\n\n".join(part for part in (extra_epilog, environment_help()) if part),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.parse_args(argv)
