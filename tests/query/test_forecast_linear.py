"""The forecast's pure-Python least squares: the pseudo-inverse and the fit against results worked out by
hand, including the singular cases (too few days, weekdays never seen) where a plain inverse fails."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from llmlens.query import _linear, forecast
from llmlens.query._linear import pinv_symmetric, symmetric_eigen
from llmlens.query.forecast import _fit, fit_daily

MONDAY = dt.date(2026, 3, 2)


def approx_matrix(expected: list[list[float]]) -> list[object]:
    return [pytest.approx(row, abs=1e-12) for row in expected]


def test_invertible_matrix_gets_its_inverse() -> None:
    assert pinv_symmetric([[2.0, 1.0], [1.0, 2.0]]) == approx_matrix([[2 / 3, -1 / 3], [-1 / 3, 2 / 3]])


def test_rank_one_matrix() -> None:
    # v v' with v = (1, 1): the pseudo-inverse is v v' / |v|^4.
    assert pinv_symmetric([[1.0, 1.0], [1.0, 1.0]]) == approx_matrix([[0.25, 0.25], [0.25, 0.25]])


def test_singular_matrix_without_a_zero_column() -> None:
    # The Laplacian of the path 1-2-3: eigenvalues 0, 1, 3 over (1,1,1), (1,0,-1), (1,-2,1).
    laplacian = [[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]]
    expected = [[5 / 9, -1 / 9, -4 / 9], [-1 / 9, 2 / 9, -1 / 9], [-4 / 9, -1 / 9, 5 / 9]]
    assert pinv_symmetric(laplacian) == approx_matrix(expected)
    assert sorted(symmetric_eigen(laplacian)[0]) == pytest.approx([0.0, 1.0, 3.0], abs=1e-12)


def test_zero_row_and_column_stay_exactly_zero() -> None:
    result = pinv_symmetric([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    assert result == approx_matrix([[2 / 3, -1 / 3, 0.0], [-1 / 3, 2 / 3, 0.0], [0.0, 0.0, 0.0]])
    assert result[2] == [0.0, 0.0, 0.0] and [row[2] for row in result] == [0.0, 0.0, 0.0]
    assert pinv_symmetric([[0.0, 0.0], [0.0, 0.0]]) == [[0.0, 0.0], [0.0, 0.0]]


def test_mean_fit() -> None:
    fit = fit_daily(MONDAY, [1.0, 2.0, 3.0])
    assert fit.method == "mean"
    assert fit.coef == pytest.approx((2.0,))
    assert fit.cov_unscaled[0] == pytest.approx((1 / 3,))
    assert fit.sigma2 == pytest.approx(1.0)  # (1 + 0 + 1) / (3 - 1)


def test_trend_fit_by_hand() -> None:
    # t = 0..6: X'X = [[7, 21], [21, 91]], det 196; X'y = (29, 116); y'y = 155.
    fit = fit_daily(MONDAY, [1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0])
    assert fit.method == "trend"
    assert fit.coef == pytest.approx((29 / 28, 29 / 28), rel=1e-12)
    assert [list(r) for r in fit.cov_unscaled] == approx_matrix([[13 / 28, -3 / 28], [-3 / 28, 1 / 28]])
    assert fit.sigma2 == pytest.approx(27 / 28, rel=1e-12)  # (155 - 29/28 * 145) / 5
    assert fit.predict(MONDAY + dt.timedelta(days=7)) == pytest.approx(29 / 28 * 8, rel=1e-12)


def test_rank_deficient_fit_is_the_minimum_norm_solution() -> None:
    # Two days, Tuesday and Wednesday, with the weekday design: the rows are (1, 0, 1, 0, ...) and
    # (1, 1, 0, 1, 0, ...). Minimum-norm coefficients X'(XX')^-1 y with XX' = [[2, 1], [1, 3]] and
    # y = (5, 10): (XX')^-1 y = (1, 3), so the coefficients are row0 + 3 row1.
    fit = _fit(MONDAY + dt.timedelta(days=1), [5.0, 10.0], "trend+weekday")
    assert fit.coef == pytest.approx((4.0, 3.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0), abs=1e-12)
    assert fit.sigma2 == pytest.approx(0.0, abs=1e-20)
    # Thursday .. Sunday were never seen: their rows and columns of the covariance are exactly zero.
    for k in range(4, 8):
        assert fit.cov_unscaled[k] == (0.0,) * 8
        assert all(row[k] == 0.0 for row in fit.cov_unscaled)


def test_no_numpy_in_the_forecast() -> None:
    for module in (forecast, _linear):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(name.split(".")[0] == "numpy" for name in imported), module.__name__
