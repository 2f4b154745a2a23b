from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.generation.stops import StopMatcher


def run(stops: list[str], deltas: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(delta) for delta in deltas) + matcher.flush()
    return out, matcher.stopped


def test_stop_split_across_deltas() -> None:
    assert run(["END"], ["abc E", "N", "D more"]) == ("abc ", True)


def test_partial_match_that_fails_is_released() -> None:
    assert run(["END"], ["abc EN", "x"]) == ("abc ENx", False)


def test_no_stops_passes_through() -> None:
    assert run([], ["a", "b"]) == ("ab", False)


alphabet = st.text(alphabet="abc", max_size=30)


@given(
    text=alphabet,
    stop=st.text(alphabet="abc", min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 30)),
)
def test_equals_truncating_the_whole_text(text: str, stop: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    deltas = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    expected = text.split(stop, 1)[0]
    out, stopped = run([stop], deltas)
    assert out == expected
    assert stopped == (stop in text)
