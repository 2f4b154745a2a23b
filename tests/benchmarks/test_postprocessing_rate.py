"""The postprocessing rate benchmark runs (its figures are printed, never asserted)."""

from __future__ import annotations

import pytest

from benchmarks.postprocessing_rate import STREAMS, in_process, main
from tests.inference.conftest import TINY_CHAT_DIR

pytestmark = pytest.mark.skipif(
    not (TINY_CHAT_DIR / "tokenizer.json").exists(), reason="models/tiny-chat is not built"
)


def test_smoke_prints_both_in_process_rates(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--smoke", "--skip-triton", "--tokenizer", str(TINY_CHAT_DIR)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "in-process",
        "in-process (with output_log_probs)",
    ]
    assert all("tokens/s" in line for line in lines)


def test_in_process_counts_one_token_per_stream_per_round() -> None:
    rate = in_process(TINY_CHAT_DIR, rounds=3, log_probs=True)
    assert rate.calls == rate.tokens == 3 * STREAMS
    assert rate.seconds > 0
