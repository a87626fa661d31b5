"""Angle form of the dynamics on the circle S^1 (Geshkovski et al. 2023 (perspective) §6).

With x_i = (cos theta_i, sin theta_i) and Q = K = V = I, (USA) becomes Geshkovski et al. 2023 (perspective) eq. (6.1)

    dtheta_i/dt = -(1/n) sum_j exp(beta cos(theta_i - theta_j)) sin(theta_i - theta_j),

and (SA) replaces 1/n by 1/Z_i, Z_i = sum_j exp(beta cos(theta_i - theta_j)). Setting
beta = 0 gives the Kuramoto model eq. (6.2) with K = 1 and omega = 0.

Both are evaluated with the shared attention kernel on the embedded points: the kernel
returns y_i = sum_j w_ij x_j and dtheta_i/dt = ⟨y_i, x_i^perp⟩ with
x_i^perp = (-sin theta_i, cos theta_i), because ⟨x_j, x_i^perp⟩ = sin(theta_j - theta_i).
``CircleSelfAttention(..., evaluator="fourier")`` instead sums Bessel-weighted Fourier modes in
O(n M) (`jaxattn.fields._fourier`, with its error bound).
[`FrozenCentresCircleAttention`][jaxattn.FrozenCentresCircleAttention] adds m frozen, weighted keys to the causal circle field
(Karagodin et al. 2024 Theorem 5.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import Check, as_finite_array, beta_rule, check_beta, enforce, is_concrete, xp
from ..manifolds import CIRCLE, Circle
from ._attention import attend, attention_weights
from ._base import AbstractField, parameter
from ._fourier import (
    DEFAULT_FOURIER_TOL,
    DEFAULT_NEAR_BLOCK,
    check_modes,
    fourier_circle_velocity,
    fourier_modes,
    truncation_limit,
)


TWO_PI = 2 * math.pi


def embed_angles(theta: Float[ArrayLike, "... n"]) -> Float[Array, "... n 2"]:
    """Angles to points on the unit circle: theta -> x = (cos theta, sin theta).

    **Arguments:**

    - `theta`: angles (radians), float (..., n).

    **Returns:**

    Float (..., n, 2).
    """
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)


def angles_of(x: ArrayLike) -> Float[Array, "... n"]:  # shape checked below, with its own message
    """Points in R^2 to angles in [0, 2 pi): the one angle convention of the package (the range of the PDE's
    moments, histograms and plots, [`jaxattn.spectral`][jaxattn.spectral] and [`jaxattn.plot`][jaxattn.plot]),
    the inverse of [`embed_angles`][jaxattn.fields.embed_angles] on the unit circle modulo 2 pi. Every angle
    is < 2 pi, also for points just below the positive x axis (atan2 = -1e-20 would round to 2 pi when
    shifted: it becomes 0), and the slope is 1 on every branch (gradients are the tangent on both sides of 0).

    **Arguments:**

    - `x`: points, float (..., n, 2) (any nonzero norm).

    **Returns:**

    Angles (radians) in [0, 2 pi), float (..., n).

    **Raises:**

    - `ValueError`: ``x`` is not of shape (..., n, 2).
    """
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[-1] != 2:
        raise ValueError(f"points on S^1 must have shape (..., n, 2), got {x.shape}")
    theta = jnp.arctan2(x[..., 1], x[..., 0])  # (-pi, pi], with -0.0 below the positive x axis
    theta = jnp.where(jnp.signbit(theta), theta + TWO_PI, theta)  # -0.0 and -1e-20 become 2 pi here ...
    return jnp.where(theta >= TWO_PI, theta - TWO_PI, theta)  # ... and +0.0 here (slope 1 on every branch)


def _angular_velocity(theta, y):
    return -jnp.sin(theta) * y[:, 0] + jnp.cos(theta) * y[:, 1]


#: row blocks of the causal circle kernel below `CAUSAL_BLOCKS_MAX_N` tokens
CAUSAL_BLOCKS = 2
CAUSAL_BLOCKS_MAX_N = 1024


def causal_circle_velocity(theta: Float[Array, " n"], beta: Float[ArrayLike, ""], blocks: int = CAUSAL_BLOCKS) -> Float[Array, " n"]:
    """dtheta/dt of causal (SA) on S^1 (CSA-2d, Q = K = V = I) with a block lower-triangular kernel.

    Token k sees j <= k, so row block b of ``blocks`` equal row blocks only needs the key columns
    up to its last row: (blocks + 1) / (2 blocks) of the n^2 exponentials (3/4 for two blocks).
    The weights are e^{beta(cos(theta_k - theta_j) - 1)} <= 1 with the self term 1, so no row
    maximum is needed (Z_k >= 1 at any beta); y = W [x, 1] gives the numerators and Z_k in one
    product. Same sums as the shared kernel (agreement to round-off is tested). Two blocks beat the
    full masked kernel and more blocks lose to the per-block overhead at n = 200 (measured in
    benchmarks/README.md, section "Causal and circle sweeps: work-precision", "Speed-ups made
    (library)").

    **Arguments:**

    - `theta`: angles, float (n,).
    - `beta`: the inverse temperature, > 0 (not checked here; the field checks it).
    - `blocks`: the number of row blocks, an int >= 1; default `CAUSAL_BLOCKS` = 2.

    **Returns:**

    dtheta/dt, float (n,): dtheta_k/dt = (1/Z_k) sum_{j<k} h(theta_j - theta_k),
    h(x) = e^{beta(cos x - 1)} sin x.
    """
    n = theta.shape[0]
    x = embed_angles(theta)
    xv = jnp.concatenate([x, jnp.ones((n, 1), x.dtype)], axis=1)
    edges = [round(n * i / blocks) for i in range(blocks + 1)]
    parts = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        w = jnp.exp(beta * (x[a:b] @ x[:b].T) - beta)
        w = jnp.where(jnp.arange(b)[None, :] <= jnp.arange(a, b)[:, None], w, 0.0)
        parts.append(w @ xv[:b])
    y = jnp.concatenate(parts, axis=0)
    return (x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]) / y[:, 2]


class CircleSelfAttention(AbstractField):
    """Angle ODE on S^1: Geshkovski et al. 2023 (perspective) eq. (6.1) (``unnormalised=True``, USA) or its SA form.

    ``causal=True`` gives the circle form of Karagodin et al. 2024's causal dynamics (CSA-2d): token k
    attends to j <= k, and with h(x) = e^{beta(cos x - 1)} sin x,

        dtheta_k/dt = (1/Z_k) sum_{j<k} h(theta_j - theta_k),   Z_k = sum_{j<=k} e^{beta(cos(theta_k - theta_j) - 1)} >= 1

    (SA; the self term adds 1 to Z_k and nothing to the numerator). USA divides by the number
    of visible tokens (n, or k when causal) instead of Z_k and keeps the factor e^{beta}.

    Evaluators (same field, same trajectories):

    * ``evaluator="dense"`` (default): the shared O(n^2) attention kernel (row-blocked above
      ``block_size``);
    * ``evaluator="fourier"``: O(n M) Bessel-Fourier sums (`jaxattn.fields._fourier`),
      M = ``modes`` or, by default, the smallest M with truncation bound
      eps_M(beta) = 2 sum_{k>M} (1 + k/beta) e^{-beta} I_k(beta) <= ``tol``; then
      |error of dtheta_i/dt| <= (|S_i|/Z_i) eps_M <= n eps_M for SA and <= e^beta eps_M for USA,
      plus round-off (~1e-13 against the dense sum at n ~ 10^3). M ~ sqrt(2 beta ln(1/tol)):
      68 modes at beta = 64. Faster than dense once n >> M (measured in docs/paper_003.md).
      ``modes`` must be given when beta is traced (e.g. the field is built inside ``jax.grad``);
      explicit ``modes`` that do not meet ``tol`` at a concrete beta raise (with the bound and the fix).
      The Bessel weights are computed from the field's beta at every evaluation (inside a solve XLA
      computes them once), so ``jax.grad`` in beta and ``eqx.tree_at`` on beta see them; the number
      of modes is fixed when the field is built, and an evaluation refuses once it no longer resolves
      the current beta (a bound on eps_M(beta) above max(``tol``, 1e-10, its value at the built beta)).

    **Arguments:**

    - `beta`: the inverse temperature, a finite scalar > 0.
    - `unnormalised`: (USA), eq. (6.1) itself (True), or the (SA) form (False, default).
    - `causal`: token k attends to j <= k only (CSA-2d); default False.
    - `block_size`: the row block of the dense kernel, or the near-field block of the Fourier
        evaluator (a positive int there); default None: automatic.
    - `evaluator`: ``"dense"`` (default) or ``"fourier"``.
    - `modes`: the number of Fourier modes M of ``"fourier"``, a positive int; default None: the
        smallest M within ``tol`` (requires a concrete beta). Not with ``"dense"``.
    - `tol`: the truncation bound eps_M of ``"fourier"``, > 0; default 1e-16.

    **Raises:**

    - `ValueError`: beta not a finite scalar > 0; an unknown ``evaluator``; ``modes`` with ``"dense"``;
        a traced beta without ``modes``; ``modes`` or ``block_size`` not a positive int for ``"fourier"``;
        explicit ``modes`` that do not meet ``tol`` at a concrete beta.
    - `TypeError`: beta is not real-valued.
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    unnormalised: bool = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)
    evaluator: str = eqx.field(static=True)
    modes: int | None = eqx.field(static=True)
    truncation_limit: float | None = eqx.field(static=True)

    manifold: ClassVar[Circle] = CIRCLE
    exchangeable_tokens: ClassVar[bool] = True
    dim: ClassVar[None] = None
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, *, unnormalised: bool = False, causal: bool = False,
                 block_size: int | None = None, evaluator: str = "dense", modes: int | None = None,
                 tol: float = DEFAULT_FOURIER_TOL):
        self.beta = check_beta(beta)
        self.unnormalised = bool(unnormalised)
        self.causal = bool(causal)
        self.block_size = block_size
        if evaluator not in ("dense", "fourier"):
            raise ValueError(f"evaluator must be 'dense' or 'fourier', got {evaluator!r}")
        self.evaluator = evaluator
        if evaluator == "dense":
            if modes is not None:
                raise ValueError("modes is an option of evaluator='fourier'")
            self.modes, self.truncation_limit = None, None
            return
        if not (isinstance(tol, (int, float, np.floating, np.integer)) and np.isfinite(tol) and tol > 0):
            raise ValueError(f"tol must be finite and > 0, got {tol!r}")
        if modes is None:
            if not is_concrete(self.beta):
                raise ValueError(
                    "evaluator='fourier' with a traced beta (inside jit/grad/vmap) needs a static "
                    "number of modes: pass modes=jaxattn.fields.fourier_modes(beta_max, tol)"
                )
            modes = fourier_modes(float(self.beta), tol)
        if not isinstance(modes, (int, np.integer)) or isinstance(modes, bool) or modes < 1:
            raise ValueError(f"modes must be a positive int, got {modes!r}")
        if block_size is not None and (not isinstance(block_size, (int, np.integer)) or block_size < 1):
            raise ValueError(f"block_size must be a positive int for evaluator='fourier', got {block_size!r}")
        self.modes = int(modes)
        beta0 = float(self.beta) if is_concrete(self.beta) else None
        if beta0 is not None:
            check_modes(beta0, self.modes, tol)
        self.truncation_limit = truncation_limit(beta0, self.modes, tol)

    def attention_matrix(self, t, theta: Float[Array, " n"]) -> Float[Array, "1 n n"]:
        """The attention weights exp(beta cos(theta_i - theta_j)) / Z_i (or / n for USA; causal where
        the field is), eq. (6.1).

        **Arguments:**

        - `t`: the time (unused).
        - `theta`: angles, float (n,).

        **Returns:**

        Float (1, n, n) (one head).
        """
        x = embed_angles(theta)
        return attention_weights(self.beta * x @ x.T, causal=self.causal,
                                 normalisation="mean" if self.unnormalised else "softmax")[None]

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        """dtheta_i/dt of eq. (6.1) (USA) or its SA form, causal where the field is (class docstring).

        **Arguments:**

        - `t`: the time (unused: the field is autonomous).
        - `theta`: angles theta_i, float (n,).

        **Returns:**

        dtheta/dt, float (n,).
        """
        if self.evaluator == "fourier":
            return fourier_circle_velocity(
                theta, self.beta, self.modes, unnormalised=self.unnormalised, causal=self.causal,
                block=DEFAULT_NEAR_BLOCK if self.block_size is None else self.block_size,
                max_truncation=self.truncation_limit,
            )
        if self.causal and not self.unnormalised and self.block_size is None and theta.shape[0] <= CAUSAL_BLOCKS_MAX_N:
            return causal_circle_velocity(theta, self.beta)
        x = embed_angles(theta)
        y = attend(self.beta * x, x, x, normalisation="mean" if self.unnormalised else "softmax",
                   causal=self.causal, block_size=self.block_size)
        return _angular_velocity(theta, y)


class Kuramoto(AbstractField):
    """Kuramoto model, Geshkovski et al. 2023 (perspective) eq. (6.2).

        dtheta_i/dt = omega_i + (K/n) sum_j sin(theta_j - theta_i).

    With omega = 0 and K = 1 this is eq. (6.1) at beta = 0, and dtheta/dt = n grad F with
    F = (K/(2n^2)) sum_ij cos(theta_i - theta_j), eq. (6.3).

    **Arguments:**

    - `coupling`: K, a finite scalar; default 1.
    - `omega`: the natural frequencies, a finite scalar or an (n,) array (one per oscillator, which
        fixes n); default 0.

    **Raises:**

    - `ValueError`: ``coupling`` not a finite scalar, or ``omega`` neither a finite scalar nor a
        finite 1-d array.
    - `TypeError`: a non-real value.
    """

    coupling: Float[Array, ""]
    omega: Float[Array, "*n"] = parameter(per_token="frequencies")

    manifold: ClassVar[Circle] = CIRCLE
    dim: ClassVar[None] = None

    def __init__(self, coupling: float | ArrayLike = 1.0, omega: float | ArrayLike = 0.0):
        self.coupling = as_finite_array(coupling, "coupling", 0, "a scalar")
        self.omega = as_finite_array(omega, "omega", (0, 1), "a scalar or an (n,) array")

    @property
    def num_tokens(self) -> int | None:
        """n when ``omega`` gives one frequency per oscillator, else None."""
        return self.omega.shape[0] if self.omega.ndim == 1 else None

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        """dtheta_i/dt = omega_i + (K/n) sum_j sin(theta_j - theta_i), eq. (6.2).

        **Arguments:**

        - `t`: the time (unused: the field is autonomous).
        - `theta`: angles theta_i, float (n,).

        **Returns:**

        dtheta/dt, float (n,).
        """
        x = embed_angles(theta)
        # every weight is 1/n (zero logits), so y_i is the mean of the x_j: O(n) instead of the kernel's O(n^2)
        y = jnp.broadcast_to(jnp.mean(x, axis=0), x.shape)
        return self.omega + self.coupling * _angular_velocity(theta, y)


def centre_weights_rule(weights: Float[ArrayLike, "*m"]) -> Check:
    """The rule of the frozen tokens' weights: a_j >= 1 (Karagodin et al. 2024, Theorem 5.2 assumes
    a_j >= 1).

    **Arguments:**

    - `weights`: a_j, a scalar or an (m,) array (concrete or traced).

    **Returns:**

    The `jaxattn._validate.Check`.
    """
    m = xp(weights)
    low = m.min(m.asarray(weights))
    return Check(low < 1, "weights a_j must be >= 1 (Karagodin et al. 2024, Theorem 5.2){got}",
                 lambda: f"min {float(low)}")


class FrozenCentresCircleAttention(AbstractField):
    """Causal circle dynamics with frozen (cross-attention) tokens: Karagodin et al. 2024 Theorem 5.2, eq. (C.3).

    Particles phi_1..phi_n attend causally to each other (j <= k, self included) and every
    particle also attends to m frozen angles theta_1..theta_m with weights a_j >= 1:

        dphi_k/dt = (1/Z_k) ( sum_{j<=k} e^{beta(cos(phi_k - phi_j) - 1)} sin(phi_j - phi_k)
                              + sum_{j=1}^m a_j e^{beta(cos(phi_k - theta_j) - 1)} sin(theta_j - phi_k) ),
        Z_k = sum_{j<=k} e^{beta(cos(phi_k - phi_j) - 1)} + sum_{j=1}^m a_j e^{beta(cos(phi_k - theta_j) - 1)},

    i.e. dphi_k/dt = -(1/Z_k) (sum_{j<k} h(phi_k - phi_j) + sum_j a_j h(phi_k - theta_j)) with
    h(x) = e^{beta(cos x - 1)} sin x (eq. C.3). The frozen tokens never move. ``causal=False``
    lets every particle see every other particle (not covered by the theorem).

    **Sequential gradient flow (Lemma 5.3).** With the energies ([`sequential_energies`][jaxattn.fields.FrozenCentresCircleAttention.sequential_energies])

        E_k = -( sum_{j<k} e^{beta(cos(phi_k - phi_j) - 1)} + sum_j a_j e^{beta(cos(phi_k - theta_j) - 1)} ),

    dphi_k/dt = -(1/(beta Z_k)) dE_k/dphi_k. **Erratum (docs/paper_003.md, errata item 4):** the paper writes
    -(1/Z_k) dE_k/dphi_k, omitting the factor 1/beta. Since a_j >= 1, 1 <= Z_k <= N with
    N = n + sum_j a_j (the "0 < c < Z_k < C" of Lemma 5.3). Theorem 5.2: if the frozen angles
    are more than c beta^{-1/2} apart and (N, beta, eps, c) satisfy
    [`jaxattn.analysis.metastable.theorem_5_2_conditions`][jaxattn.analysis.theorem_5_2_conditions], almost every initial state
    converges to a strongly stable critical point with every particle within eps beta^{-1/2}
    of some theta_j.

    Evaluated with the shared attention kernel: the frozen tokens are extra keys/values placed
    before the particles, log a_j enters the logits through an extra key coordinate
    (a_j e^{s} = e^{s + log a_j}), and for the causal mask the query block is padded with m dummy
    rows so that particle k (row m + k) sees all frozen keys and the particles j <= k. Cost
    O(n (n + m)) per evaluation (row-blocked above ``block_size`` as in ``attend``).

    **Arguments:**

    - `beta`: the inverse temperature, a finite scalar > 0.
    - `centres`: the frozen angles theta_j, finite, float (m,), m >= 1.
    - `weights`: a_j >= 1 (Theorem 5.2 assumes a_j >= 1), a scalar or an (m,) array; default 1.
    - `causal`: mask j <= k among the particles; default True (the setting of the paper).
    - `block_size`: row-block size passed to ``attend``, an int >= 0; default None: its default.

    **Raises:**

    - `ValueError`: beta not a finite scalar > 0; ``centres`` not a finite 1-d array of m >= 1 angles;
        ``weights`` not finite, of the wrong shape or < 1; a bad ``block_size``.
    - `TypeError`: a non-real value.
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    centres: Float[Array, " m"]
    weights: Float[Array, " m"] = parameter(check=centre_weights_rule)
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)

    manifold: ClassVar[Circle] = CIRCLE
    dim: ClassVar[None] = None
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, centres: ArrayLike | Sequence, weights: float | ArrayLike | Sequence = 1.0, *,
                 causal: bool = True, block_size: int | None = None):
        self.beta = check_beta(beta)
        centres = as_finite_array(centres, "centres", 1, "a 1-d array of m >= 1 frozen angles")
        m = centres.shape[0]
        if m < 1:
            raise ValueError(f"centres must be a 1-d array of m >= 1 frozen angles, got shape {centres.shape}")
        weights = as_finite_array(weights, "weights")
        if weights.ndim == 0:
            weights = jnp.broadcast_to(weights, (m,))
        elif weights.shape != (m,):
            raise ValueError(f"weights must be a scalar or an (m,) = ({m},) array matching centres, "
                             f"got shape {weights.shape}")
        weights = enforce([centre_weights_rule(weights)], weights)
        if block_size is not None and (not isinstance(block_size, (int, np.integer)) or block_size < 0):
            raise ValueError(f"block_size must be None or an int >= 0, got {block_size!r}")
        self.centres = centres
        self.weights = weights
        self.causal = bool(causal)
        self.block_size = block_size

    @property
    def num_centres(self) -> int:
        """The number m of frozen tokens."""
        return self.centres.shape[0]

    def _logits_inputs(self, theta):
        """Queries (rows, 3), keys (m + n, 3), values (m + n, 2) of the augmented attention."""
        m, n = self.num_centres, theta.shape[0]
        dtype = jnp.result_type(theta.dtype, self.beta.dtype)
        x = embed_angles(theta).astype(dtype)
        c = embed_angles(self.centres).astype(dtype)
        log_a = jnp.log(self.weights).astype(dtype)[:, None]
        keys = jnp.concatenate([jnp.concatenate([c, log_a], axis=1),
                                jnp.concatenate([x, jnp.zeros((n, 1), dtype)], axis=1)], axis=0)
        queries = jnp.concatenate([self.beta * x, jnp.ones((n, 1), dtype)], axis=1)
        if self.causal:  # dummy rows 0..m-1: row m + k then sees the frozen keys and particles j <= k
            queries = jnp.concatenate([jnp.zeros((m, 3), dtype), queries], axis=0)
        return queries, keys, jnp.concatenate([c, x], axis=0)

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        """dphi_k/dt of eq. (C.3) (class docstring): the particles move, the frozen tokens do not.

        **Arguments:**

        - `t`: the time (unused: the field is autonomous).
        - `theta`: the particles' angles phi_k, float (n,).

        **Returns:**

        dphi/dt of the n particles, float (n,).
        """
        queries, keys, values = self._logits_inputs(theta)
        y = attend(queries, keys, values, causal=self.causal, block_size=self.block_size)
        if self.causal:
            y = y[self.num_centres:]
        return _angular_velocity(theta, y)

    def attention_matrix(self, t, theta: Float[Array, " n"]) -> Float[Array, "1 n {self.centres.shape[0]}+n"]:
        """The attention weights of eq. (C.3): a_j e^{beta(cos(phi_k - theta_j) - 1)} / Z_k for the
        frozen tokens, e^{beta(cos(phi_k - phi_j) - 1)} / Z_k for the particles (j <= k when causal).

        **Arguments:**

        - `t`: the time (unused).
        - `theta`: the particles' angles phi, float (n,).

        **Returns:**

        Float (1, n, m + n): columns 0..m-1 are the frozen tokens, then the particles; rows sum to 1.
        """
        queries, keys, _ = self._logits_inputs(theta)
        w = attention_weights(queries @ keys.T, causal=self.causal)
        return (w[self.num_centres:] if self.causal else w)[None]

    def sequential_energies(self, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        """E_k(phi_1..phi_k) of Lemma 5.3 / eq. (C.3); dphi_k/dt = -(1/(beta Z_k)) dE_k/dphi_k.

        With ``causal=False`` the particle sum runs over all j != k (then each phi_k still follows
        -(1/(beta Z_k)) dE_k/dphi_k, but the E_k are no longer sequential).

        **Arguments:**

        - `theta`: the particles' angles phi, float (n,).

        **Returns:**

        E_k = -(sum_{j<k} e^{beta(cos(phi_k - phi_j) - 1)} + sum_j a_j e^{beta(cos(phi_k - theta_j) - 1)})
        for k = 1..n, float (n,).
        """
        n = theta.shape[0]
        pair = jnp.exp(self.beta * (jnp.cos(theta[:, None] - theta[None, :]) - 1))
        seen = jnp.tril(jnp.ones((n, n), bool), -1) if self.causal else ~jnp.eye(n, dtype=bool)
        frozen = self.weights * jnp.exp(self.beta * (jnp.cos(theta[:, None] - self.centres[None, :]) - 1))
        return -(jnp.sum(jnp.where(seen, pair, 0.0), axis=1) + jnp.sum(frozen, axis=1))
