"""The web UI's formatters at their boundaries: counts, dollars, durations and rates read as written here."""

from __future__ import annotations

import pytest

from llmlens.server.routes._formatting import cost_or_unpriced, count, ms, rate, usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (0, "0"),
        (7, "7"),
        (9_999, "9,999"),
        (10_000, "10.0k"),
        (10_050, "10.1k"),
        (31_200, "31.2k"),
        (60_911, "60.9k"),  # the prompt that read "6.1k"
        (99_949, "99.9k"),
        (99_950, "100k"),
        (312_000, "312k"),
        (999_499, "999k"),
        (999_500, "1.00M"),
        (999_999, "1.00M"),
        (1_000_000, "1.00M"),
        (1_740_000, "1.74M"),
        (2_052_000, "2.05M"),
        (999_999_999, "1.00B"),
        (1_000_000_000, "1.00B"),
        (-12_345, "-12.3k"),
        (12.5, "12.50"),
    ],
)
def test_count(value: float | None, shown: str) -> None:
    assert count(value) == shown


def test_token_parts_add_up_to_their_total() -> None:
    prompt, completion = 1_740_000, 312_000
    assert (count(prompt + completion), count(prompt), count(completion)) == ("2.05M", "1.74M", "312k")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (0, "$0"),
        (0.00004, "$0.000040"),  # the call that read "$0.0000"
        (0.0000432, "$0.000043"),
        (0.00123, "$0.0012"),
        (0.0388, "$0.039"),
        (0.0999, "$0.10"),
        (0.1, "$0.10"),
        (0.25, "$0.25"),
        (99.994, "$99.99"),
        (99.995, "$100"),
        (186.4, "$186"),
        (12_345.6, "$12,346"),
        (-0.5, "-$0.50"),
    ],
)
def test_usd(value: float | None, shown: str) -> None:
    assert usd(value) == shown


@pytest.mark.parametrize(
    ("value", "unpriced_calls", "shown"),
    [(None, 214, "unpriced"), (1.2, 3, "$1.20 + unpriced"), (1.2, 0, "$1.20"), (0.0, 0, "$0")],
)
def test_cost_or_unpriced(value: float | None, unpriced_calls: int, shown: str) -> None:
    assert cost_or_unpriced(value, unpriced_calls) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), (0, "0 ms"), (999.4, "999 ms"), (999.6, "1.00 s"), (1000, "1.00 s"), (42_500, "42.50 s")],
)
def test_ms(value: float | None, shown: str) -> None:
    assert ms(value) == shown


@pytest.mark.parametrize(
    ("per_second", "shown"),
    [
        (None, "—"),
        (0, "0 / min"),
        (0.006, "21.6 / h"),  # the overview's "0.006" requests per second
        (1 / 60, "1.00 / min"),
        (0.5, "30.0 / min"),
        (0.99, "59.4 / min"),
        (1.0, "1.00 / s"),
        (3.2, "3.20 / s"),
        (1234, "1,234 / s"),
        (20_000, "20.0k / s"),
        (1 / 86_400 / 2, "0.50 / day"),
    ],
)
def test_rate_reads_in_the_unit_that_gives_a_whole_figure(per_second: float | None, shown: str) -> None:
    assert rate(per_second) == shown
