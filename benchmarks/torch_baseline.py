"""A torchdiffeq baseline: the same (SA) sphere ODE in PyTorch, solved with ``dopri5``.

Workload: (SA) on S^{d-1}, Q = K = V = I, inverse temperature beta,

    dx_i/dt = P_{x_i}( sum_j softmax_j(beta <x_i, x_j>) x_j ),   P_x y = y - <x, y> x / |x|^2,

the equation of ``jaxattn.SelfAttention(beta)`` (same projection, dividing by |x|^2), in
float64, integrated with ``torchdiffeq.odeint(method="dopri5", rtol, atol)`` (5(4)
Dormand-Prince, adaptive, RMS error norm; no retraction to the sphere, like SciPy's
DOP853 side). Torch runs on one intra-op thread (``torch.set_num_threads(1)``), like the
other single-core sides of the benchmark.

torch and torchdiffeq are an optional extra (``pip install -e '.[torch]'``, pinned to
torch 2.13.0 CPU and torchdiffeq 0.2.5); :func:`available` says whether they import, and
the benchmarks record :data:`NOT_INSTALLED` instead of failing when they do not.
"""

from __future__ import annotations

import numpy as np

NOT_INSTALLED = "torch extra not installed: pip install -e '.[torch]'"
IMPL = "torchdiffeq dopri5 1e-6"


def available() -> bool:
    """True when torch and torchdiffeq both import."""
    try:
        import torch  # noqa: F401
        import torchdiffeq  # noqa: F401
    except ImportError:
        return False
    return True


def sa_rhs(x, beta: float):
    """The SA velocity of tokens ``x`` (torch tensor (n, d)): P_{x_i}(sum_j softmax_j(beta <x_i,x_j>) x_j)."""
    import torch

    w = torch.softmax(beta * (x @ x.T), dim=1)
    y = w @ x
    coef = (x * y).sum(dim=1, keepdim=True) / (x * x).sum(dim=1, keepdim=True)
    return y - coef * x


def make_solver(x0: np.ndarray, beta: float, t1: float, num_saves: int = 2, rtol: float = 1e-6,
                atol: float = 1e-6, t0: float = 0.0):
    """A zero-argument callable solving SA from ``x0`` with dopri5; returns the saved states (num_saves, n, d).

    The save times are ``linspace(t0, t1, num_saves)``, as ``jaxattn.simulate(..., ts=num_saves)``.
    The callable's ``nfe`` attribute is the number of RHS evaluations of its latest call.
    """
    import torch
    from torchdiffeq import odeint

    torch.set_num_threads(1)
    y0 = torch.tensor(np.array(x0, dtype=np.float64))  # a copy: jax arrays are read-only
    ts = torch.linspace(t0, t1, num_saves, dtype=torch.float64)

    def solve() -> np.ndarray:
        count = [0]

        def f(t, x):
            count[0] += 1
            return sa_rhs(x, beta)

        with torch.no_grad():
            xs = odeint(f, y0, ts, rtol=rtol, atol=atol, method="dopri5")
        solve.nfe = count[0]
        return xs.numpy()

    solve.nfe = 0
    return solve
