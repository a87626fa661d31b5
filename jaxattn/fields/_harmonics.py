"""Fast O(n L^2) self-attention sums on S^2 via the spherical-harmonic addition theorem.

For tokens x_i on S^2 and Q = K = V = I, (SA) and (USA) need the kernel sums

    S_i[w] = sum_j exp(beta (<x_i, x_j> - 1)) w_j,     w_j in {1, x_j^1, x_j^2, x_j^3}

(the factor e^{-beta} keeps every number <= n). The dense kernel costs O(n^2).

Expansion. The Funk-Hecke / Gegenbauer expansion of the kernel on S^2 (Funk-Hecke formula; see
[`jaxattn._special.kernel_coefficients`][jaxattn.spectral.kernel_coefficients]) is

    exp(beta (t - 1)) = sum_{l >= 0} lambda_l P_l(t),   lambda_l = (2l + 1) e^{-beta} i_l(beta) > 0,

with i_l the modified spherical Bessel function, i_l(beta) = sqrt(pi / (2 beta)) I_{l+1/2}(beta).
The addition theorem, in fully normalised associated Legendre functions
Pbar_lm = sqrt((l-m)!/(l+m)!) P_l^m, reads

    P_l(<x, y>) = sum_{m=0}^{l} (2 - delta_m0) Pbar_lm(x^3) Pbar_lm(y^3) cos(m (phi_x - phi_y)).

Writing Pbar_lm(z) = sin^m(theta) Q_lm(z) and E_m(x) = (x^1 + i x^2)^m = sin^m(theta) e^{i m phi}
makes every basis function a polynomial in the Cartesian coordinates (no angles, no poles):

    S_i[w] = sum_l lambda_l sum_m (2 - delta_m0) Q_lm(x_i^3) Re( E_m(x_i) conj(c_lm[w]) ),
    c_lm[w] = sum_j w_j Q_lm(x_j^3) E_m(x_j).

Q_lm obeys the stable three-term recurrence (l >= m + 1)

    Q_lm = ((2l - 1) z Q_{l-1,m} - sqrt((l-1)^2 - m^2) Q_{l-2,m}) / sqrt(l^2 - m^2),
    Q_mm = sqrt((2m)!) / (2^m m!),

so each degree l costs O(L) per point: one pass over the points accumulates the
(L+1)^2 coefficients c_lm[w] and a second evaluates S_i. Both are ``lax.scan`` over l
inside ``lax.map`` over blocks of points (O(block * L) memory), i.e. O(n L^2) work.

Truncation and error bound. Since |P_l| <= 1 and sum_l lambda_l = 1 (t = 1), the kernel
truncated after degree L is off by at most

    tau_L = sum_{l > L} lambda_l   (uniformly in t in [-1, 1]),

which decays like (beta/2)^L / L! once L > beta. Hence, per token,

* USA (weights e^{beta <x_i,x_j>} / n, time shift s): |v_fast - v_dense| <= e^{beta - s} tau_L,
  i.e. tau_L relative to the field's natural scale e^{beta - s};
* SA: the self term gives Z_i >= e^beta, and |x_j| = 1, so
  |v_fast - v_dense| <= 2 n tau_L / (1 - n tau_L).

[`truncation_degree`][jaxattn.fields.truncation_degree] picks the smallest L meeting ``tol`` by these bounds (L ~ 33 for
beta = 9, n = 10^5, tol = 1e-13). On top comes float64 round-off in the sums, relative
~ eps * L (coefficients are sums of n terms bounded by 1); measured agreement with the
dense kernel is ~1e-14 at n = 500 (tests/test_fast_sphere.py).

Differentiability. lambda_l is computed in JAX from `jaxattn._special` at every evaluation,
so ``jax.grad`` flows through beta and the tokens. The degree L is static: chosen from the field's
beta when that is concrete, else from the beta the field was built with. Every evaluation bounds the
truncation at the current beta (lambda_l up to L + 16, then Amos' ratio bound
I_{nu+1}(x)/I_nu(x) < x/(nu + sqrt(nu^2 + x^2)) makes the rest geometric) and refuses once the bound
exceeds max(tol, ``TRUNCATION_FLOOR`` = 1e-10): a beta moved under ``jit`` beyond what L resolves
raises instead of silently truncating.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._special import kernel_coefficients, refuse
from .._validate import host_beta

#: points per block in the two passes (each block's working set stays in L2 cache)
DEFAULT_BLOCK = 128
#: default accuracy target for the truncation (absolute, on the velocity's natural scale)
DEFAULT_TOLERANCE = 1e-13
#: truncation bounds up to max(tol, TRUNCATION_FLOOR) are accepted when evaluating (beta may move under jit)
TRUNCATION_FLOOR = 1e-10
#: degrees computed beyond L for the bound at the current beta
_BOUND_TERMS = 16


def _lambdas_numpy(beta: float, lmax: int) -> np.ndarray:
    """[`legendre_coefficients`][jaxattn.fields.legendre_coefficients] as float64 NumPy on the host (also while a jit trace is open).

    Computed to a multiple of 64 degrees, so that nearby betas share one compiled kernel.
    """
    with jax.ensure_compile_time_eval():
        lam = legendre_coefficients(float(beta), -(-(lmax + 1) // 64) * 64 - 1)
    return np.asarray(lam, dtype=float)[: lmax + 1]


def tail_bound(beta: float, degree: int) -> float:
    """tau_L = sum_{l > L} lambda_l: uniform bound on |exp(beta(t-1)) - truncated series|."""
    lmax = degree + 64 + int(2 * beta)
    lam = _lambdas_numpy(beta, lmax)
    return float(np.sum(lam[degree + 1:][::-1]))  # smallest first


def truncation_degree(beta: float, n: int, tol: float = DEFAULT_TOLERANCE,
                      normalisation: str = "softmax") -> int:
    """Smallest L whose error bound (module docstring) is <= ``tol``.

    ``normalisation="softmax"`` (SA) needs 2 n tau_L / (1 - n tau_L) <= tol;
    ``"mean"`` (USA) needs tau_L <= tol.
    """
    beta = host_beta(beta)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    lmax = int(2 * beta + 40 * math.sqrt(beta + 1) + 80)
    lam = _lambdas_numpy(beta, lmax)
    tails = np.cumsum(lam[::-1])[::-1]  # tails[L] = sum_{l >= L}
    tails = np.append(tails[1:], 0.0)   # tails[L] = sum_{l > L}
    ok = _velocity_bound(tails, n, normalisation) <= tol
    return int(np.argmax(ok)) if ok.any() else lmax


def _velocity_bound(tau, n: int, normalisation: str):
    """The per-token velocity error bound of the module docstring from tau_L (NumPy or JAX values):
    2 n tau / (1 - n tau) for SA (inf once n tau >= 1), tau for USA (relative to e^{beta - s})."""
    xp = np if isinstance(tau, np.ndarray) else jnp  # NumPy on the host (also while a jit trace is open)
    if normalisation == "softmax":
        return xp.where(n * tau < 1, 2 * n * tau / xp.maximum(1 - n * tau, 1e-300), xp.inf)
    if normalisation == "mean":
        return tau
    raise ValueError(f"normalisation must be 'softmax' or 'mean', got {normalisation!r}")


def _tail_after(lambdas, beta):
    """sum_{l > K} lambda_l <= lambda_K q / (1 - q), K = len(lambdas) - 1: lambda_{l+1} / lambda_l =
    ((2l+3)/(2l+1)) I_{l+3/2}(beta) / I_{l+1/2}(beta) <= q for l >= K (Amos 1974, as in the module docstring)."""
    K = lambdas.shape[0] - 1
    nu = K + 0.5
    q = (2 * K + 3) / (2 * K + 1) * beta / (nu + jnp.sqrt(nu * nu + beta * beta))
    return jnp.where(q < 1, lambdas[K] * q / (1 - q), jnp.inf)


def legendre_coefficients(beta: Float[ArrayLike, ""], degree: int) -> Float[Array, " L1"]:
    """lambda_l = (2l + 1) e^{-beta} i_l(beta), l = 0..degree, differentiable in beta (beta > 0).

    The coefficients of exp(beta (t - 1)) = sum_l lambda_l P_l(t) (module docstring). They are
    the Funk-Hecke coefficients W_l(beta, 3) = i_l(beta) / beta of [`jaxattn._special.kernel_coefficients`][jaxattn.spectral.kernel_coefficients]
    times beta e^{-beta} and the multiplicity 2l + 1 of the degree-l harmonics on S^2. Relative
    accuracy ~3e-14 (the log-space Bessel series; sum_l lambda_l = 1 to ~2e-14 at beta = 60).
    """
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    ls = jnp.arange(degree + 1, dtype=beta.dtype)
    return (2 * ls + 1) * beta * kernel_coefficients(beta, degree, d=3, scaled=True)


def _packed_tables(degree: int):
    """Recurrence constants for the packed (l, m) triangle.

    Only m <= l is non-zero, so an (L+1) x (L+1) grid wastes half its work. Column m
    (l = m..L, length L+1-m) is paired with column L-m (length m+1): slot s runs column
    s for L+1-s steps, then restarts on column L-s, so S = ceil((L+1)/2) slots and L+2
    steps cover every (l, m) exactly once. Step k of slot s applies
    Q = a z Q_prev - b Q_prev2 + d (a = b = 0, d = Q_mm restarts a column at l = m).
    Returns float tables a, b, d, first (1 while on the slot's first column) of shape
    (L+2, S), and the integer degree table l (-1 where unused) and order table m.
    """
    L1 = degree + 1
    S = (L1 + 1) // 2
    steps = degree + 2
    qmm = np.ones(L1)
    for m in range(1, L1):
        qmm[m] = qmm[m - 1] * math.sqrt((2 * m - 1) / (2 * m))
    a, b, d, first = (np.zeros((steps, S)) for _ in range(4))
    ltab = -np.ones((steps, S), dtype=np.int64)
    mtab = np.zeros((steps, S), dtype=np.int64)
    for s in range(S):
        m1, m2 = s, degree - s
        for k in range(steps):
            if k < L1 - s:
                m, l = m1, m1 + k
                first[k, s] = 1.0
            else:
                m, l = m2, m2 + (k - (L1 - s))
                if m2 <= m1 or l > degree:
                    continue
            ltab[k, s], mtab[k, s] = l, m
            if l == m:
                d[k, s] = qmm[m]
            else:
                den = math.sqrt(l * l - m * m)
                a[k, s] = (2 * l - 1) / den
                b[k, s] = math.sqrt(max((l - 1) ** 2 - m * m, 0)) / den
    return a, b, d, first, ltab, mtab


def _powers(x: Float[Array, "B 3"], degree: int):
    """Re and Im of E_m = (x^1 + i x^2)^m, m = 0..degree, each (B, degree + 1)."""
    re, im = [jnp.ones_like(x[:, 0])], [jnp.zeros_like(x[:, 0])]
    for _ in range(degree):
        r, i = re[-1], im[-1]
        re.append(r * x[:, 0] - i * x[:, 1])
        im.append(r * x[:, 1] + i * x[:, 0])
    return jnp.stack(re, axis=1), jnp.stack(im, axis=1)


def _scan_packed(x, degree, body, init, extra=None):
    """Run ``body(carry, phi_k, extra_k)`` over the L + 2 packed steps.

    phi_k = [Q_k Re E, Q_k Im E], shape (B, 2S): the basis functions
    Q_lm(z) Re/Im E_m(x) of the (l, m) pairs that step k holds (zero where unused).
    """
    a, b, d, first, _, _ = _packed_tables(degree)
    a, b, d, first = (jnp.asarray(t, dtype=x.dtype) for t in (a, b, d, first))
    S = a.shape[1]
    re, im = _powers(x, degree)
    cols1 = np.arange(S)
    cols2 = np.clip(degree - cols1, 0, degree)
    re1, im1, re2, im2 = re[:, cols1], im[:, cols1], re[:, cols2], im[:, cols2]
    z = x[:, 2:3]
    zeros = jnp.zeros((x.shape[0], S), x.dtype)

    def step(carry, inputs):
        q1, q2, acc = carry
        a_k, b_k, d_k, f_k, e_k = inputs
        q = a_k * z * q1 - b_k * q2 + d_k
        re_k = jnp.where(f_k > 0, re1, re2)
        im_k = jnp.where(f_k > 0, im1, im2)
        phi = jnp.concatenate([q * re_k, q * im_k], axis=1)
        acc, out = body(acc, phi, e_k)
        return (q, q1, acc), out

    xs = (a, b, d, first, jnp.zeros((a.shape[0],), x.dtype) if extra is None else extra)
    (_, _, acc), outs = jax.lax.scan(step, (zeros, zeros, init), xs)
    return acc, outs


def _blocks(x, w, block):
    n = x.shape[0]
    nb = -(-n // block)
    pad = nb * block - n
    xp = jnp.concatenate([x, jnp.tile(jnp.asarray([[0.0, 0.0, 1.0]], x.dtype), (pad, 1))], axis=0)
    wp = jnp.pad(w, ((0, pad), (0, 0)))
    return xp.reshape(nb, block, 3), wp.reshape(nb, block, w.shape[1])


def harmonic_sums(
    x: Float[Array, "n 3"],
    w: Float[Array, "n p"],
    lambdas: Float[Array, " L1"],
    *,
    block: int = DEFAULT_BLOCK,
) -> Float[Array, "n p"]:
    """S_i = sum_j k(<x_i, x_j>) w_j with k(t) = sum_{l <= L} lambdas_l P_l(t), in O(n L^2 p).

    ``x`` must lie on S^2; ``lambdas`` has length L + 1 (static degree L).
    """
    n = x.shape[0]
    degree = lambdas.shape[0] - 1
    block = max(1, min(block, n))
    xb, wb = _blocks(x, w, block)
    p = w.shape[1]

    def coefficients(args):
        xs, ws = args
        _, c = _scan_packed(xs, degree, lambda acc, phi, e: (acc, ws.T @ phi), jnp.zeros((), x.dtype))
        return c  # (L+2, p, 2S)

    coef = jnp.sum(jax.lax.map(coefficients, (xb, wb)), axis=0)
    _, _, _, _, ltab, mtab = _packed_tables(degree)
    # lambda_l (2 - delta_m0) for each packed (l, m); 0 in unused slots
    scale = jnp.where(ltab >= 0, lambdas[np.maximum(ltab, 0)], 0.0) * np.where(mtab == 0, 1.0, 2.0)
    scale = jnp.concatenate([scale, scale], axis=1).astype(x.dtype)  # (L+2, 2S)
    coef_t = jnp.swapaxes(coef * scale[:, None, :], 1, 2)  # (L+2, 2S, p)

    def evaluate(xs):
        acc, _ = _scan_packed(xs, degree, lambda acc, phi, c: (acc + phi @ c, None),
                              jnp.zeros((xs.shape[0], p), x.dtype), extra=coef_t)
        return acc

    out = jax.lax.map(evaluate, xb)
    return out.reshape(-1, p)[:n]


def sphere_attention_harmonics(
    x: Float[Array, "n 3"],
    beta: Float[Array, ""],
    degree: int,
    *,
    normalisation: str = "softmax",
    log_shift: float | Array = 0.0,
    block: int = DEFAULT_BLOCK,
    tol: float = DEFAULT_TOLERANCE,
) -> Float[Array, "n 3"]:
    """sum_j w_ij x_j for Q = K = V = I on S^2 (before the tangent projection).

    Refuses (ValueError eagerly, an error under ``jit``) when the truncation bound of degree L at this
    beta exceeds max(``tol``, ``TRUNCATION_FLOOR``) (module docstring).

    softmax (SA): N_i / Z_i with Z_i = sum_j e^{beta<x_i,x_j>}, N_i = sum_j e^{beta<x_i,x_j>} x_j;
    mean (USA): e^{-log_shift} N_i / n. Matches [`jaxattn.fields._attention.attend`][jaxattn.fields.attend]
    with queries beta x, keys x, values x up to the bound in the module docstring.

    Tokens are normalised to x / |x| first. On the sphere this changes nothing; inside a
    Runge-Kutta stage (slightly off the sphere) the result is the field at the projected
    tokens, while the dense kernel uses exp(beta <x_i, x_j>) as is: the two extensions
    differ by O(beta ||x| - 1|), which is below the step's own error (solves agree to
    the solver tolerance, not to round-off).
    """
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"the harmonics evaluator works on S^2 only: tokens must be (n, 3), got {x.shape}")
    n = x.shape[0]
    extended = legendre_coefficients(beta, degree + _BOUND_TERMS).astype(x.dtype)
    tau = jnp.sum(extended[degree + 1:]) + _tail_after(extended, jnp.asarray(beta, x.dtype))
    limit = max(float(tol), TRUNCATION_FLOOR)
    lambdas = refuse(extended[: degree + 1], _velocity_bound(tau, n, normalisation) > limit * (1 + 1e-6), (
        f"the harmonics evaluator's degree L = {degree} leaves a truncation bound > {limit:g} at the current beta "
        "(L is chosen from the beta a field is built with when beta is traced): build the field at this beta, or "
        f"pass harmonics_degree=jaxattn.fields.truncation_degree(beta_max, n={n}) for the largest beta it will see"))
    x = x / jnp.linalg.norm(x, axis=1, keepdims=True)  # the addition theorem needs |x| = 1
    w = jnp.concatenate([jnp.ones((n, 1), x.dtype), x], axis=1)
    s = harmonic_sums(x, w, lambdas, block=block)
    if normalisation == "softmax":
        return s[:, 1:] / s[:, :1]
    if normalisation == "mean":
        return s[:, 1:] * (jnp.exp(beta - log_shift) / n)
    raise ValueError(f"normalisation must be 'softmax' or 'mean', got {normalisation!r}")
