"""Box-bounded linear least squares for the fits: min ||A x − b|| subject to lb ≤ x ≤ ub.

A is tall (thousands of rows) and narrow (≲ 200 columns). Its columns are scaled to unit norm and it is
reduced by a QR factorisation (no normal equations: they square the condition number); the small triangular
problem then goes to an exact active-set solver (BVLS), so the result is the problem's minimiser, not the
state of a heuristic after a fixed number of passes. With a strictly convex problem (priors rows in A) the
minimiser is unique, and the answer does not move with the BLAS thread count beyond rounding.
"""
from __future__ import annotations

import numpy as np


def bounded_lstsq(A: np.ndarray, b: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Minimiser x (P,) of ||A x − b|| with lb ≤ x ≤ ub (±inf for no bound; lb == ub fixes a variable)."""
    from scipy.optimize import lsq_linear

    A = np.asarray(A, np.float64)
    b = np.asarray(b, np.float64)
    lb = np.broadcast_to(np.asarray(lb, np.float64), (A.shape[1],))
    ub = np.broadcast_to(np.asarray(ub, np.float64), (A.shape[1],))
    if np.any(lb > ub):
        raise ValueError("bounded_lstsq: a lower bound lies above its upper bound")
    x = np.where(lb == ub, lb, 0.0)
    free = lb < ub
    if not free.any():
        return x
    rhs = b - A[:, ~free] @ x[~free]
    Af = A[:, free]
    norm = np.linalg.norm(Af, axis=0)
    norm = np.where(norm > 0, norm, 1.0)
    Q, R = np.linalg.qr(Af / norm)  # reduced: R (P, P); ||A x − b||² = ||R y − Qᵀ b||² + const
    z = Q.T @ rhs
    lo, hi = lb[free] * norm, ub[free] * norm
    if np.isfinite(lo).any() or np.isfinite(hi).any():
        res = lsq_linear(R, z, (lo, hi), method="bvls", tol=1e-12, max_iter=10 * len(lo) + 10)
        if res.status < 1:  # BVLS ends in finitely many steps: this is a bug, not a property of the input
            raise RuntimeError(f"bounded least squares did not converge: {res.message}")
        y = res.x
    else:
        y = np.linalg.lstsq(R, z, rcond=None)[0]
    x[free] = np.clip(y / norm, lb[free], ub[free])
    return x
