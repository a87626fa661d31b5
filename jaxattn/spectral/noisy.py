r"""Mean-field theory of the noisy attention dynamics: the threshold of the uniform state and the ordered
stationary states on the circle (Rigollet 2025, "The mean-field dynamics of Transformers", §6 "Noisy
Transformers"; Bertini, Giacomin, Pakdaman 2010 for the noisy Kuramoto model).

The particle system ([`jaxattn.fields.NoisyField`][jaxattn.NoisyField]) is

    dX_i = P_{X_i}(b_i(X)) dt + sqrt(2 / kappa) P_{X_i} o dW_i        (Stratonovich; W_i Brownian in R^d)

with the (USA) or (SA) attention drift b_i (Q = K = V = I): each token diffuses on S^{d-1} with generator
kappa^{-1} Delta. Its mean-field Fokker-Planck equation reads

    d mu/dt = kappa^{-1} Delta mu - div(mu v[mu]),    v[mu](x) = P_x int e^{beta ⟨x, y⟩} y dmu(y) / N[mu](x),

N = 1 (USA) or N = int e^{beta ⟨x, y⟩} dmu(y) (SA). (The survey prints it with both signs reversed and
without P_x: docs/normalisation.md, "Noise".)

**Threshold.** At the uniform state, mode k (degree-k harmonics) of the noiseless equation grows at
gamma_k ([`jaxattn.spectral.growth_rates`][jaxattn.spectral.growth_rates]) and the noise damps it at k (k + d - 2) / kappa, so the
uniform state loses stability at

    kappa_c = (d - 1) / gamma_1 = beta^{d/2} / (2^{d/2 - 1} Gamma(d/2) I_{d/2}(beta))                     (USA)
    kappa_c^SA = kappa_c Gamma(d/2) (2/beta)^{d/2 - 1} I_{d/2 - 1}(beta)       (SA; beta I_0 / I_1 on S^1)

(mode 1 goes first: gamma_k / (k (k + d - 2)) decreases in k). At beta = 0 both are the noisy Kuramoto
threshold kappa_c = d (2 on the circle: the pitchfork of the noisy Kuramoto model at coupling 2).

**Stationary states on the circle.** On S^1 every stationary density of the Fokker-Planck equation with
zero flux solves kappa^{-1} rho' = rho v; with U(theta) = beta^{-1} int e^{beta cos(theta - phi)} rho(phi) dphi,
v = U' (USA) and v = (log U)' / beta (SA), hence the self-consistency equations

    rho propto exp(kappa U)   (USA),        rho propto U^{kappa / beta}   (SA)

(at beta = 0: rho propto exp(kappa r cos theta) with r = I_1(kappa r) / I_0(kappa r), the noisy Kuramoto
branch). `stationary_order_parameter` solves them by damped fixed-point iteration on a grid and
returns the order parameter r = |int e^{i theta} rho(theta) dtheta|.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import check_dim, check_model, check_positive
from .linear import growth_rate

__all__ = ["noisy_threshold", "stationary_order_parameter"]


def _check_beta_nonneg(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"beta must be a real scalar, got {beta!r}") from exc
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"beta must be finite and >= 0 (beta = 0: the noisy Kuramoto model), got {beta!r}")
    return b


def noisy_threshold(beta: float, d: int = 2, model: str = "usa") -> float:
    """kappa_c: the uniform state of the noisy dynamics on S^{d-1} is linearly stable for kappa < kappa_c and
    unstable for kappa > kappa_c (module docstring).

    Values: 2 at beta = 0 on the circle; at beta = 1, 1.76941 (USA, d = 2), 2.24019 (SA, d = 2), e (USA, d = 3).

    **Arguments:**

    - `beta`: the inverse temperature, float >= 0.
    - `d`: the ambient dimension (S^{d-1}), int >= 2; default 2.
    - `model`: "usa" (default) or "sa".

    **Returns:**

    kappa_c, a float.
    """
    b = _check_beta_nonneg(beta)
    d = check_dim(d)
    model = check_model(model)
    if b == 0.0:
        return float(d)
    return float((d - 1) / growth_rate(b, 1, d, model))


def stationary_order_parameter(beta: float, kappa: float, model: str = "usa", *, grid: int = 1024,
                               tol: float = 1e-13, max_iter: int = 200_000) -> float:
    """The order parameter r of the ordered stationary state of the noisy mean-field dynamics on S^1, or 0
    where only the uniform state exists (module docstring).

    **Arguments:**

    - `beta`: the inverse temperature, float >= 0.
    - `kappa`: the inverse noise level, float > 0 (noise sqrt(2 / kappa) dW).
    - `model`: "usa" (default) or "sa" (the drift's normalisation).
    - `grid`: points of the periodic grid in theta (spectrally accurate); default 1024.
    - `tol`: stop when r changes by less than this over one iteration; default 1e-13.
    - `max_iter`: iterations above the threshold kappa_c; default 200_000 (at and below it, where the
        iteration towards the uniform state slows down algebraically, r < 1e-3, or r decaying below a
        tenth of its start in 20000 iterations, counts as 0).

    **Returns:**

    r in [0, 1), a float: e.g. 0.724159 at beta = 0, kappa = 3; 0.8640 at beta = 1, kappa = 3 (USA).

    **Raises:**

    - `RuntimeError`: no convergence within ``max_iter`` iterations.
    """
    from scipy.special import ive

    b = _check_beta_nonneg(beta)
    check_positive("kappa (the inverse noise level)", kappa)
    model = check_model(model)
    kappa = float(kappa)
    theta = 2 * np.pi * np.arange(grid) / grid
    # e^{beta cos(theta - phi)} = sum_k I_k(beta) e^{ik(theta - phi)}: the weights of e^{-beta} beta U by mode
    weights = ive(np.arange(grid // 2 + 1), b) if b > 0 else None
    rho = np.exp(np.cos(theta))  # a tilted start: the iteration then finds the ordered branch if it exists
    rho /= rho.mean() * 2 * np.pi
    r_old = r_first = -1.0
    damping = 0.5
    subcritical = kappa <= noisy_threshold(b, 2, model)
    for _ in range(min(max_iter, 20_000) if subcritical else max_iter):
        c = np.fft.rfft(rho) * (2 * np.pi / grid)  # c_k = int rho e^{-ik theta} dtheta, k >= 0
        r = float(abs(c[1]))
        r_first = r if r_first < 0 else r_first
        if abs(r - r_old) < tol or (subcritical and r < 1e-3):
            break
        r_old = r
        if b == 0:
            log_new = kappa * r * np.cos(theta - np.angle(c[1]))
        else:
            scaled = np.fft.irfft(grid * weights * c, n=grid)  # e^{-beta} beta U on the grid
            if model == "usa":
                log_new = kappa * math.exp(b) / b * scaled
            else:
                log_new = (kappa / b) * np.log(scaled)
        new = np.exp(log_new - log_new.max())
        new /= new.mean() * 2 * np.pi
        rho = damping * rho + (1 - damping) * new
    else:
        if not (subcritical and r < 0.1 * r_first):  # at/below the threshold: a slow decay to the uniform state
            raise RuntimeError(f"stationary_order_parameter did not converge in {max_iter} iterations (beta = {b}, "
                               f"kappa = {kappa}); just above the threshold convergence is slow: raise max_iter")
        return 0.0
    return r if r > (1e-3 if subcritical else 1e-6) else 0.0
