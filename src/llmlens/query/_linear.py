"""The little linear algebra the spend forecast needs, on lists of floats: the matrices are at most 8 x 8,
so plain Python is quick enough and the server does not need numpy for it.

The one non-trivial piece is the Moore-Penrose pseudo-inverse of a symmetric matrix (the forecast's X'X),
from its eigen-decomposition by the cyclic Jacobi method. For a symmetric matrix the singular values are
the absolute eigenvalues, so the cutoff is the one `numpy.linalg.pinv` applies by default: eigenvalues
whose magnitude is at most `rcond` times the largest are treated as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vector = list[float]
Matrix = list[list[float]]

PINV_RCOND = 1e-15  # numpy.linalg.pinv's default relative cutoff
_MAX_SWEEPS = 100  # Jacobi converges quadratically; a handful of sweeps is the norm for 8 x 8


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def mat_vec(m: Sequence[Sequence[float]], v: Sequence[float]) -> Vector:
    return [dot(row, v) for row in m]


def gram(rows: Sequence[Sequence[float]], width: int) -> Matrix:
    """X'X for the matrix whose rows are `rows`, each `width` long."""
    return [[math.fsum(r[i] * r[j] for r in rows) for j in range(width)] for i in range(width)]


def quad_form(m: Sequence[Sequence[float]], v: Sequence[float]) -> float:
    """v' M v."""
    return dot(v, mat_vec(m, v))


def symmetric_eigen(a: Sequence[Sequence[float]]) -> tuple[Vector, Matrix]:
    """Eigenvalues and eigenvectors (the columns of the second result) of the symmetric matrix `a`.

    Cyclic Jacobi: sweep over the off-diagonal pairs, zeroing each with a plane rotation, until none is
    left that still changes the diagonal. It is accurate to a few units of rounding relative to the
    matrix's norm, and a row and column that are exactly zero stay exactly zero (their rotations are
    skipped), so an unused weekday gives an exactly zero eigenvalue."""
    n = len(a)
    m = [[float(x) for x in row] for row in a]
    if any(len(row) != n for row in m):
        raise ValueError("symmetric_eigen needs a square matrix")
    v = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for sweep in range(_MAX_SWEEPS):
        off = math.fsum(m[p][q] * m[p][q] for p in range(n) for q in range(p + 1, n))
        if off == 0.0:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = m[p][q]
                if apq == 0.0:
                    continue
                app, aqq = m[p][p], m[q][q]
                # After a few sweeps an element too small to move either diagonal entry is rounding
                # noise: drop it rather than rotate (this is what guarantees the loop ends).
                if sweep > 3 and app + 100.0 * abs(apq) == app and aqq + 100.0 * abs(apq) == aqq:
                    m[p][q] = m[q][p] = 0.0
                    continue
                # The rotation angle that zeroes m[p][q]: t = tan(angle), the smaller root of
                # t^2 + 2 theta t - 1 = 0, which keeps the rotation under 45 degrees.
                theta = (aqq - app) / (2.0 * apq)
                t = math.copysign(1.0, theta) / (abs(theta) + math.hypot(theta, 1.0))
                c = 1.0 / math.hypot(t, 1.0)
                s = t * c
                for k in range(n):
                    mkp, mkq = m[k][p], m[k][q]
                    m[k][p] = c * mkp - s * mkq
                    m[k][q] = s * mkp + c * mkq
                for k in range(n):
                    mpk, mqk = m[p][k], m[q][k]
                    m[p][k] = c * mpk - s * mqk
                    m[q][k] = s * mpk + c * mqk
                m[p][p] = app - t * apq
                m[q][q] = aqq + t * apq
                m[p][q] = m[q][p] = 0.0
                for k in range(n):
                    vkp, vkq = v[k][p], v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
    return [m[i][i] for i in range(n)], v


def pinv_symmetric(a: Sequence[Sequence[float]], rcond: float = PINV_RCOND) -> Matrix:
    """The Moore-Penrose pseudo-inverse of the symmetric matrix `a`: V diag(1/lambda) V' over the
    eigenvalues lambda with |lambda| > rcond * max|lambda|, the others counting as zero. For an invertible
    matrix it is the inverse; for X'X it gives the minimum-norm least-squares solution."""
    n = len(a)
    values, vectors = symmetric_eigen(a)
    cutoff = rcond * max((abs(x) for x in values), default=0.0)
    kept = [(i, 1.0 / x) for i, x in enumerate(values) if abs(x) > cutoff]
    result = [[0.0] * n for _ in range(n)]
    for r in range(n):
        for c in range(r, n):  # the upper triangle, mirrored: the result is exactly symmetric
            result[r][c] = result[c][r] = math.fsum(vectors[r][i] * inv * vectors[c][i] for i, inv in kept)
    return result
