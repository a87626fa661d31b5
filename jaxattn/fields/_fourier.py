r"""O(n M) evaluation of the circle attention field by Bessel-weighted Fourier modes.

The circle fields of `jaxattn.fields.circle` (Geshkovski et al. 2023 (perspective) eq. (6.1);
Karagodin et al. 2024 (CSA-2d))
need, for every token i and its visible set S_i (all j, or j <= i under a causal mask),

    Z_i = sum_{j in S_i} w(theta_i - theta_j),      N_i = sum_{j in S_i} w(theta_i - theta_j) sin(theta_j - theta_i),

with the scaled weight w(u) = e^{beta (cos u - 1)}; then dtheta_i/dt = N_i / Z_i (SA) or
e^{beta} N_i / |S_i| (USA). The generating function of the modified Bessel functions,

    e^{beta cos u} = sum_{k in Z} I_k(beta) e^{i k u},                      (Abramowitz-Stegun 9.6.34)

and its u-derivative  -beta sin u e^{beta cos u} = sum_k i k I_k(beta) e^{iku}  give, with
the scaled weights I~_k = e^{-beta} I_k(beta) (``ive``: nothing overflows for any beta) and the
mode sums R_ik = sum_{j in S_i} e^{ik(theta_i - theta_j)} = e^{ik theta_i} sum_{j in S_i} e^{-ik theta_j},

    Z_i = I~_0 |S_i| + 2 sum_{k=1}^{M} I~_k Re R_ik,
    N_i = -(2/beta) sum_{k=1}^{M} k I~_k Im R_ik,                               (F)

exact as M -> infinity. Non-causal: sum_j e^{-ik theta_j} is one sum per mode, O(n M) in all.
Causal: the sums over j <= i are prefix sums. XLA's CPU ``cumsum`` turned out to be slow
(measured 50 ms for 2^20 float64 on one core; ``associative_scan`` 22 ms), so instead of a
prefix sum over tokens per mode the tokens are cut into blocks of ``block`` consecutive tokens:

* far field (tokens in earlier blocks): per-block mode sums (a reshape and a sum) and an exclusive
  prefix sum over the n / block blocks only, then (F);
* near field (earlier tokens of the same block, and the token itself): the exact masked
  block x block kernel.

Both pieces are exact up to the truncation of (F), so the result equals the dense masked sum.
With k - 1 = a m + b (a ~ sqrt(M)), e^{ik theta} = e^{i a m theta} e^{i(b+1) theta}, so one cos/sin
per token and products give the 2 sqrt(M) factors, and every mode sum is a (batched) matmul.
Cost: O(n M) complex multiply-adds + n * block exponentials; memory O(n sqrt(M)) for the sums (swept
``chunk`` tokens at a time) and O(M) for the weights at any beta (`jaxattn._special` does a fixed
amount of work per order: M = 8306 weights at beta = 10^6 in a 430 MB process, where the former
power series tried to allocate 40 GB of modes x series terms).

Truncation and error bound
--------------------------
Let eps_M(beta) = 2 sum_{k>M} (1 + k/beta) I~_k(beta). Dropping the modes k > M changes Z_i
by at most 2 |S_i| sum_{k>M} I~_k and N_i by at most (2/beta) |S_i| sum_{k>M} k I~_k, so
to first order in eps_M

    SA :  |dtheta_i/dt (M) - dtheta_i/dt| <= (|S_i| / Z_i) eps_M(beta) <= n eps_M(beta)   (Z_i >= 1: the self term)
    USA:  |dtheta_i/dt (M) - dtheta_i/dt| <= e^{beta} eps_M(beta)       (the natural scale of USA velocities)

(|dtheta/dt| <= 1 for SA, a weighted mean of sines). [`fourier_modes`][jaxattn.fields.fourier_modes] returns the smallest
M with eps_M(beta) <= tol; the tail beyond the computed modes is bounded with Amos' bound
I_{k+1}(x) / I_k(x) < x / (k + sqrt(k^2 + x^2)) (a geometric series). Since
I~_k(beta) ~ e^{-k^2/(2 beta)} / sqrt(2 pi beta) for k << beta, M ~ sqrt(2 beta ln(1/tol)):
M = 68 at beta = 64 and 18 at beta = 1 for tol = 1e-16 (the default, below float64 round-off
per token). Round-off adds ~ (|S_i| / Z_i) * 1e-16 * sqrt(beta) per token (the mode sums of n
unit vectors), so float64 gives ~1e-13 agreement with the dense sum for n ~ 10^3 and ~1e-10 at
n = 10^6; float32 is poor beyond n ~ 10^3 (docs/paper_003.md, "Long horizons and precision").
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._special import ive, refuse
from .._validate import host_beta

#: default truncation tolerance eps_M(beta) (see the module docstring)
DEFAULT_FOURIER_TOL = 1e-16
#: tokens per near-field block of the causal evaluator
DEFAULT_NEAR_BLOCK = 16
#: tokens per step of the scan over the configuration (bounds every temporary)
DEFAULT_CHUNK = 4096
#: truncation bounds up to max(tol, TRUNCATION_FLOOR) are accepted when evaluating (`truncation_limit`): a field
#: keeps working while beta moves (under jit, in a fit) as long as its modes still resolve it to this level
TRUNCATION_FLOOR = 1e-10
#: weights computed beyond the M used, for the bound eps_M at the current beta (the tail after them is geometric)
_BOUND_TERMS = 4


def _scaled_bessel_host(beta: float, kmax: int) -> np.ndarray:
    """I~_k(beta) = e^{-beta} I_k(beta), k = 0..kmax, as float64 NumPy (host)."""
    with jax.ensure_compile_time_eval():  # host values even while a jit trace is open
        return np.asarray(ive(np.arange(kmax + 1, dtype=float), float(beta)), dtype=float)


def _tail_beyond(w_K, K: int, beta):
    """2 sum_{k>K} (1 + k/beta) I~_k(beta) <= this, from I~_K alone: Amos (1974), I_{k+1}(x)/I_k(x) < r_k =
    x/(k + sqrt(k^2 + x^2)), decreasing in k, makes the tail a geometric series (NumPy or JAX values)."""
    r = beta / (K + (K * K + beta * beta) ** 0.5)
    return 2 * w_K * ((1 + K / beta) * r / (1 - r) + r / (beta * (1 - r) ** 2))


def _truncation_bound(w, M: int, beta):
    """eps_M(beta) from the weights I~_0..I~_K (K = len(w) - 1 > M): the terms M < k <= K plus the tail beyond K."""
    K = w.shape[0] - 1
    k = np.arange(M + 1, K + 1, dtype=float)
    return 2 * ((1 + k / beta) * w[M + 1:]).sum() + _tail_beyond(w[K], K, beta)


def truncation_error(beta: float, M: int) -> float:
    """eps_M(beta) = 2 sum_{k>M} (1 + k/beta) I~_k(beta): the error bound of the module docstring."""
    beta = host_beta(beta)
    M = int(M)
    if M < 0:
        raise ValueError(f"M must be >= 0, got {M}")
    K = max(M + 1, int(math.sqrt(2 * beta * 45.0)) + 40)
    return float(_truncation_bound(_scaled_bessel_host(beta, K), M, beta))


def fourier_modes(beta: float, tol: float = DEFAULT_FOURIER_TOL) -> int:
    """Smallest M >= 1 with eps_M(beta) <= tol (see the module docstring), from a concrete beta."""
    beta = host_beta(beta)
    tol = float(tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be finite and > 0, got {tol}")
    K = int(math.sqrt(2 * beta * (math.log(1 / min(tol, 0.5)) + 10))) + 40
    w = _scaled_bessel_host(beta, K)
    k = np.arange(K + 1, dtype=float)
    terms = (1 + k / beta) * w
    # eps[M] = 2 sum_{M < k <= K} terms + the tail beyond K, for M = 0..K
    suffix = np.concatenate([np.cumsum(terms[::-1])[::-1][1:], [0.0]])
    eps = 2 * suffix + _tail_beyond(w[K], K, beta)
    ok = np.nonzero(eps <= tol)[0]
    if ok.size == 0:  # pragma: no cover - K is chosen so that this does not happen
        raise ValueError(f"could not reach tol = {tol} with {K} modes at beta = {beta}")
    return max(1, int(ok[0]))


def check_modes(beta: float, M: int, tol: float) -> None:
    """ValueError unless M modes meet ``tol`` at a concrete beta (eps_M(beta) <= tol), naming the fix."""
    eps = truncation_error(beta, M)
    if not eps <= tol:
        raise ValueError(
            f"modes={M} leave a truncation bound eps_M(beta={float(beta):g}) = {eps:.3g} > tol = {tol:g}: velocities "
            f"may be off by up to n * {eps:.3g} (SA; e^beta * {eps:.3g} for USA). Use modes >= "
            f"fourier_modes(beta, tol) = {fourier_modes(beta, tol)}, or pass tol >= {eps:.3g} to accept this error.")


def scaled_bessel_weights(beta: Float[ArrayLike, ""], M: int) -> Float[Array, " {M+1}"]:
    """I~_k(beta) = e^{-beta} I_k(beta), k = 0..M, differentiable in beta (traced beta allowed)."""
    beta = jnp.asarray(beta)
    return ive(jnp.arange(M + 1, dtype=beta.dtype), beta).astype(beta.dtype)


def _bound_now(beta, M: int):
    """(I~_0..I~_M, a bound on eps_M) at ``beta`` from I~_0..I~_{M + _BOUND_TERMS}: cheap enough for every evaluation."""
    w = scaled_bessel_weights(beta, M + _BOUND_TERMS)
    return w[: M + 1], _truncation_bound(w, M, beta)


def truncation_limit(beta: float | None, M: int, tol: float) -> float:
    """The largest bound an evaluation with M modes accepts (see [`fourier_circle_velocity`][jaxattn.fields.fourier_circle_velocity]): max(``tol``,
    ``TRUNCATION_FLOOR``), and at least the evaluation's own bound at the ``beta`` a field was built with (when
    concrete; it may exceed eps_M(beta) where M << sqrt(beta), and explicit ``modes`` may be accepted by ``tol``)."""
    limit = max(float(tol), TRUNCATION_FLOOR)
    if beta is not None:
        with jax.ensure_compile_time_eval():
            limit = max(limit, float(_bound_now(jnp.asarray(float(beta)), M)[1]))
    return limit


def _weights_within(beta, M: int, limit: float):
    """I~_0..I~_M at ``beta``, refused (ValueError eagerly, an error under jit) once the bound on eps_M(beta) exceeds
    ``limit``: modes chosen for one beta stop resolving a larger one (a field changed by ``eqx.tree_at``, a traced
    beta beyond the range its modes were chosen for)."""
    w, bound = _bound_now(beta, M)
    return refuse(w, bound > limit * (1 + 1e-6), (
        f"the Fourier evaluator's {M} modes leave a truncation bound eps_M(beta) > {limit:.3g} at the current beta "
        "(modes are chosen when a field is built, from its beta then): build the field at this beta, or pass "
        "modes=jaxattn.fields.fourier_modes(beta_max, tol) for the largest beta it will see"))


def _split_modes(M: int) -> tuple[int, int]:
    """k - 1 = a m + b, b < a, m < p: the factorisation used to build e^{ik theta} by products."""
    a = max(1, math.ceil(math.sqrt(M)))
    return a, -(-M // a)


def _exclusive_prefix(T: Array, group: int = 32) -> Array:
    """sum_{g' < g} T[g'] along axis 0, by triangular matmuls inside groups, recursively.

    XLA's CPU cumsum costs ~50 ns per entry (measured); one (group x group) triangular matmul
    per level runs at matmul speed and the recursion shrinks the length by ``group`` each time.
    """
    nb = T.shape[0]
    rest = T.shape[1:]
    flat = T.reshape(nb, -1)
    if nb <= group:
        L = jnp.tril(jnp.ones((nb, nb), T.dtype), -1)
        return (L @ flat).reshape(T.shape)
    ng = -(-nb // group)
    P = flat.shape[1]
    Tp = jnp.pad(flat, ((0, ng * group - nb), (0, 0))).reshape(ng, group, P)
    L = jnp.tril(jnp.ones((group, group), T.dtype), -1)
    within = (L @ Tp.transpose(1, 0, 2).reshape(group, ng * P)).reshape(group, ng, P).transpose(1, 0, 2)
    offsets = _exclusive_prefix(jnp.sum(Tp, axis=1), group)  # (ng, P)
    return (within + offsets[:, None, :]).reshape(ng * group, P)[:nb].reshape((nb,) + rest)


def _features(theta, a: int, p: int):
    """A = e^{i a m theta} (c, p) and B = e^{i (b+1) theta} (c, a) by products of e^{i theta}.

    The products run in ``lax.scan`` loops: written as an unrolled Python chain, XLA fused
    (and so recomputed) the chain into every output and took 5x longer (measured).
    """
    z = jax.lax.complex(jnp.cos(theta), jnp.sin(theta))  # the only transcendentals per token

    def times(step):
        def body(power, _):  # round-off grows like (a + p) eps
            return power * step, power
        return body

    one = jnp.ones_like(z)
    _, B = jax.lax.scan(times(z), z, None, length=a)  # (a, c): z^1 .. z^a
    _, A = jax.lax.scan(times(B[-1]), one, None, length=p)  # (p, c): z^0, z^a, ..., z^{a(p-1)}
    return A.T, B.T


def _evaluate(A, B, F, W, KW, a: int):
    """Re/Im of sum_k (weights) e^{ik theta_i} F_k for tokens (..., c) against mode sums F (..., p, a)."""
    G = jnp.concatenate([W * F, KW * F], axis=-1)  # (..., p, 2a)
    if F.ndim == 2:
        H = A @ G  # (c, 2a)
    else:  # per-block mode sums (elementwise products: XLA's CPU batched small matmuls were 2-3x slower)
        H = jnp.sum(A[..., :, None] * G[:, None, :, :], axis=2)  # (nb, block, 2a)
    Rz = jnp.sum(H[..., :a] * B, axis=-1).reshape(-1)
    Rn = jnp.sum(H[..., a:] * B, axis=-1).reshape(-1)
    return Rz.real, Rn.imag


def _near_field(theta, beta, block: int):
    """Exact masked block x block kernel (j <= i inside each block, self included): Z and N parts.

    N_i = sum_j w_ij sin(theta_j - theta_i) = cos(theta_i) (w s)_i - sin(theta_i) (w c)_i, so
    the block x block work is one Gram product, one exp and one product with (c, s); the
    barriers keep XLA from fusing (and recomputing) the exponentials into both consumers
    (2x faster, measured).
    """
    c = jnp.cos(theta).reshape(-1, block)
    s = jnp.sin(theta).reshape(-1, block)
    X = jnp.stack([c, s], axis=-1)  # (nb, block, 2)
    gram = jax.lax.optimization_barrier(jnp.einsum("bid,bjd->bij", X, X))  # cos(theta_i - theta_j)
    visible = jnp.tril(jnp.ones((block, block), bool))
    w = jax.lax.optimization_barrier(jnp.where(visible, jnp.exp(beta * (gram - 1)), 0.0))
    Y = jnp.einsum("bij,bjd->bid", w, X)
    return jnp.sum(w, axis=-1).reshape(-1), (c * Y[..., 1] - s * Y[..., 0]).reshape(-1)


def _mode_sums(theta, weights, beta, *, causal: bool, block: int, chunk: int = DEFAULT_CHUNK):
    """Z~_i (scaled partition function) and N_i of the module docstring, one configuration.

    With k - 1 = a m + b, e^{ik theta} = A_m B_b, A_m = e^{i a m theta}, B_b = e^{i (b+1) theta}:
    only n (a + p) ~ 2 n sqrt(M) complex numbers per token, and every mode sum is a matmul.
    Tokens are processed ``chunk`` at a time in a ``lax.scan`` whose carry is the running mode
    sums, so no temporary grows with n (fresh n-sized buffers cost page faults that dominated
    the run time at n = 10^6: 0.3 s for 272 MB on this machine).
    """
    n = theta.shape[0]
    M = weights.shape[0] - 1
    dtype = theta.dtype
    cdtype = jnp.result_type(dtype, jnp.complex64)
    a, p = _split_modes(M)
    k = jnp.arange(1, a * p + 1, dtype=dtype)
    w = jnp.pad(weights[1:], (0, a * p - M)).astype(cdtype)  # zero weight on padded modes
    W = w.reshape(p, a)
    KW = (k * w).reshape(p, a)
    block = max(1, min(int(block), n))
    chunk = block * max(1, min(-(-int(chunk) // block), -(-n // block)))  # a multiple of block
    nc = -(-n // chunk)
    # padded tokens come after every real token: no real token sees them under the causal mask,
    # and they get zero weight in the non-causal sums
    theta_c = jnp.pad(theta, (0, nc * chunk - n)).reshape(nc, chunk)
    valid_c = (jnp.arange(nc * chunk) < n).reshape(nc, chunk)
    zero = jnp.zeros((p, a), cdtype)
    if not causal:
        def accumulate(S, args):
            th, valid = args
            A, B = _features(th, a, p)
            return S + jnp.conj(A * valid[:, None]).T @ jnp.conj(B), None

        S, _ = jax.lax.scan(accumulate, zero, (theta_c, valid_c))  # (p, a): sum_j e^{-ik theta_j}

        def evaluate(th):
            return _evaluate(*_features(th, a, p), S, W, KW, a)

        Rz, Rn = jax.lax.map(evaluate, theta_c)
        Rz, Rn = Rz.reshape(-1)[:n], Rn.reshape(-1)[:n]
        return weights[0] * n + 2 * Rz, -(2 / beta) * Rn

    nb = chunk // block

    def step(before, th):  # before: mode sums of all tokens in earlier chunks
        A, B = _features(th, a, p)
        Ab = A.reshape(nb, block, p)
        Bb = B.reshape(nb, block, a)
        T = jnp.sum(jnp.conj(Ab)[..., :, None] * jnp.conj(Bb)[..., None, :], axis=1)  # per-block mode sums
        F = _exclusive_prefix(T) + before  # mode sums over earlier blocks
        Rz, Rn = _evaluate(Ab, Bb, F, W, KW, a)
        z_near, n_near = _near_field(th, beta, block)
        return before + jnp.sum(T, axis=0), (Rz, Rn, z_near, n_near)

    _, (Rz, Rn, z_near, n_near) = jax.lax.scan(step, zero, theta_c)
    earlier = ((jnp.arange(nc * chunk) // block) * block).astype(dtype)  # tokens in earlier blocks
    Z = weights[0] * earlier + 2 * Rz.reshape(-1) + z_near.reshape(-1)
    N = -(2 / beta) * Rn.reshape(-1) + n_near.reshape(-1)
    return Z[:n], N[:n]


def fourier_circle_velocity(
    theta: Float[Array, " n"],
    beta: Float[ArrayLike, ""],
    modes: int,
    *,
    unnormalised: bool = False,
    causal: bool = False,
    block: int = DEFAULT_NEAR_BLOCK,
    chunk: int = DEFAULT_CHUNK,
    max_truncation: float = TRUNCATION_FLOOR,
) -> Float[Array, " n"]:
    """dtheta/dt of (SA)/(USA) on S^1 (Q = K = V = I), causal or not, in O(n M), M = ``modes``.

    The weights I~_k(beta), k = 0..M ([`scaled_bessel_weights`][jaxattn.fields.scaled_bessel_weights]), are computed here from ``beta``, so
    they always belong to it and ``jax.grad`` in beta sees them (inside a solve, XLA computes them once:
    they do not depend on the state). Matches the dense sum of [`jaxattn.CircleSelfAttention`][jaxattn.CircleSelfAttention] to the
    bound of the module docstring; refuses (ValueError eagerly, an error under ``jit``) to evaluate once
    that bound eps_M(beta) exceeds ``max_truncation`` (by default ``TRUNCATION_FLOOR`` = 1e-10; a
    [`jaxattn.CircleSelfAttention`][jaxattn.CircleSelfAttention] passes `truncation_limit`). Tokens are swept ``chunk``
    at a time (rounded to a multiple of ``block``); the result does not depend on ``chunk`` beyond round-off.
    """
    theta = jnp.asarray(theta)
    beta = jnp.asarray(beta, theta.dtype)
    weights = _weights_within(beta, int(modes), float(max_truncation))
    Z, N = _mode_sums(theta, weights, beta, causal=causal, block=block, chunk=chunk)
    if unnormalised:
        n = theta.shape[0]
        count = jnp.arange(1, n + 1, dtype=theta.dtype) if causal else jnp.asarray(n, theta.dtype)
        return jnp.exp(beta) * N / count
    return N / Z
