"""Self-attention dynamics on the sphere S^{d-1} (Geshkovski et al. 2023 (perspective) and Karagodin et al. 2024).

(SA), Geshkovski et al. 2023 (perspective) eqs. (2.3)-(2.5), and its causal form (CSA) of Karagodin et al. 2024 §1.2:

    dx_i/dt = P_{x_i}( sum_h sum_j A^h_ij V_h x_j ),
    A^h_ij  = exp(beta ⟨Q_h x_i, K_h x_j⟩) / Z^h_i,   Z^h_i = sum_j exp(beta ⟨Q_h x_i, K_h x_j⟩)

with j ranging over j <= i when ``causal`` (token i attends to itself and earlier tokens),
P_x y = y - ⟨x, y⟩ x / |x|^2, and H >= 1 heads (eq. (2.7)); with H = 1 and
Q = K = V = I this is (SA) eq. (2.6). (USA), Geshkovski et al. 2023 (perspective) §3.3, replaces Z_i by n (by i
under a causal mask). An optional [`FeedForward`][jaxattn.FeedForward] sublayer gives the fuller block of
eq. (2.8): dx_i/dt = P_{x_i}( w sigma(attention_i + b) ).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_finite_array, as_float_array, beta_rule, check_beta, is_concrete
from ..manifolds import SPHERE, Sphere
from ._attention import Normalisation, Sinkhorn, attend, attention_weights, check_normalisation
from ..manifolds import tangent_projection
from ._base import AbstractField, parameter
from ._harmonics import DEFAULT_TOLERANCE, sphere_attention_harmonics, truncation_degree


def _stack_heads(Q, K, V):
    """Validate Q, K, V and return them as (H, m, d), (H, m, d), (H, d, d) stacks.

    ``None`` means the identity. Q and K may be rectangular (m x d, Geshkovski et al. 2023 (perspective) footnote 4);
    a leading axis of length H gives H heads.
    """
    given = {name: as_finite_array(M, name, (2, 3), "a matrix (m, d) or a stack of heads (H, m, d)")
             for name, M in (("Q", Q), ("K", K), ("V", V)) if M is not None}
    dims = {name: M.shape[-1] for name, M in given.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"Q, K, V must all act on the same token dimension d; got last axes {dims}")
    if "V" in given and given["V"].shape[-2] != given["V"].shape[-1]:
        raise ValueError(f"V must be square (d, d) (or (H, d, d)); got shape {given['V'].shape}")
    if "Q" in given and "K" in given and given["Q"].shape[-2] != given["K"].shape[-2]:
        raise ValueError(
            f"Q and K must have the same number of rows m; got Q {given['Q'].shape}, K {given['K'].shape}"
        )
    heads = {M.shape[0] for M in given.values() if M.ndim == 3}
    if len(heads) > 1:
        raise ValueError(f"all multi-head stacks must have the same number of heads; got {sorted(heads)}")
    if not given:
        return None, None, None, None, 1
    d = next(iter(dims.values()))
    num_heads = heads.pop() if heads else 1
    dtype = jnp.result_type(*given.values())

    def stacked(name, rows):
        M = given.get(name)
        if M is None:
            M = jnp.eye(rows, d, dtype=dtype)
        if M.ndim == 2:
            M = jnp.broadcast_to(M, (num_heads, *M.shape))
        return M

    m = given["Q"].shape[-2] if "Q" in given else (given["K"].shape[-2] if "K" in given else d)
    return stacked("Q", m), stacked("K", m), stacked("V", d), d, num_heads


class FeedForward(eqx.Module):
    """Feed-forward sublayer y -> w sigma(y + b) of Geshkovski et al. 2023 (perspective) eq. (2.8).

    The bracket nesting of the printed (2.8) puts b inside sigma; that reading is used
    (docs/errata.md, paper 002 item 7).

    **Arguments:**

    - `w`: the weight matrix, float (d, d).
    - `b`: the bias, float (d,).
    - `activation`: sigma, applied elementwise (static); default ``jax.nn.relu`` (saved files keep
        functions of ``jax.nn``/``jax.numpy`` only).

    **Raises:**

    - `ValueError`: ``w`` is not (d, d) or ``b`` not (d,).
    - `TypeError`: ``w`` or ``b`` is not real-valued.
    """

    w: Float[Array, "d d"]
    b: Float[Array, " d"]
    activation: Callable[[Array], Array] = eqx.field(static=True, default=jax.nn.relu)

    def __init__(self, w: ArrayLike, b: ArrayLike, activation: Callable[[Array], Array] = jax.nn.relu):
        w = as_float_array(w, "w")
        b = as_float_array(b, "b")
        if w.ndim != 2 or w.shape[0] != w.shape[1] or b.shape != (w.shape[0],):
            raise ValueError(f"FeedForward needs w of shape (d, d) and b of shape (d,); got {w.shape}, {b.shape}")
        self.w, self.b, self.activation = w, b, activation

    def __call__(self, y: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """Apply the sublayer row by row: y_i -> w sigma(y_i + b).

        **Arguments:**

        - `y`: float (n, d), the attention output of each token.

        **Returns:**

        Float (n, d).
        """
        return self.activation(y + self.b) @ self.w.T


def _init_sphere_attention(self, beta, Q, K, V, causal, feedforward, block_size, evaluator, harmonics_tol,
                           harmonics_degree) -> None:
    """Validate and set the shared fields of [`AbstractSphereAttention`][jaxattn.fields.AbstractSphereAttention] (called by ``__init__``)."""
    self.beta = check_beta(beta)
    self.Q, self.K, self.V, d, _ = _stack_heads(Q, K, V)
    if feedforward is not None and d is not None and feedforward.w.shape[0] != d:
        raise ValueError(f"feedforward acts on dimension {feedforward.w.shape[0]} but Q/K/V on {d}")
    self.feedforward = feedforward
    self.causal = bool(causal)
    self.block_size = block_size
    self.evaluator, self.harmonics_tol, self.harmonics_degree = evaluator, float(harmonics_tol), harmonics_degree
    self.harmonics_beta = None
    if evaluator == "harmonics":
        if Q is not None or K is not None or V is not None:
            raise ValueError("evaluator='harmonics' needs Q = K = V = I (leave Q, K, V as None); "
                             "use evaluator='dense' for general matrices")
        if self.causal:
            raise ValueError("evaluator='harmonics' does not support causal masks; use evaluator='dense'")
        if feedforward is not None and feedforward.w.shape[0] != 3:
            raise ValueError("evaluator='harmonics' works on S^2 only (d = 3), but feedforward acts on "
                             f"d = {feedforward.w.shape[0]}")
        if not self.harmonics_tol > 0:
            raise ValueError(f"harmonics_tol must be > 0, got {harmonics_tol}")
        if harmonics_degree is None:
            if not is_concrete(self.beta):
                raise ValueError(
                    "evaluator='harmonics' chooses its truncation degree from a concrete beta; beta is "
                    "traced here, so pass harmonics_degree=L (see jaxattn.fields.truncation_degree) "
                    "or build the field outside jit/grad"
                )
            self.harmonics_beta = float(self.beta)
        elif not (isinstance(harmonics_degree, int) and harmonics_degree >= 0):
            raise ValueError(f"harmonics_degree must be an int >= 0, got {harmonics_degree!r}")
    elif evaluator != "dense":
        raise ValueError(f"evaluator must be 'dense' or 'harmonics', got {evaluator!r}")


class AbstractSphereAttention(AbstractField):
    """(SA) and (USA) on S^{d-1} (module docstring): everything but the normalisation.

    The fields below are shared by both concrete classes and set by their ``__init__``
    (through one validation function); a concrete class supplies `normalisation`
    (``"softmax"``, ``"mean"`` or a [`Sinkhorn`][jaxattn.Sinkhorn], see [`jaxattn.fields.attend`][jaxattn.fields.attend]) and [`log_shift`][jaxattn.fields.AbstractSphereAttention.log_shift].
    The constructor arguments are those of [`SelfAttention`][jaxattn.SelfAttention].
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    Q: Float[Array, "H m d"] | None = parameter(logit="matrix")
    K: Float[Array, "H m d"] | None = parameter(logit="matrix")
    V: Float[Array, "H d d"] | None
    feedforward: FeedForward | None
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)
    evaluator: str = eqx.field(static=True)
    harmonics_tol: float = eqx.field(static=True)
    harmonics_beta: float | None = eqx.field(static=True)
    harmonics_degree: int | None = eqx.field(static=True)

    manifold: ClassVar[Sphere] = SPHERE
    exchangeable_tokens: ClassVar[bool] = True
    num_tokens: ClassVar[None] = None
    normalisation: eqx.AbstractVar[Normalisation]

    @abc.abstractmethod
    def log_shift(self) -> Float[ArrayLike, ""]:
        """The shift s of the mean normalisation N_i = n e^{s} (a time rescaling by e^{s}).

        **Returns:**

        s, a scalar: 0 for the softmax and for plain USA, beta for USA with ``time_rescaled``.
        """

    @property
    def dim(self) -> int | None:
        """Token dimension d that V (or the feed-forward sublayer) fixes, or None with Q = K = V = I."""
        if self.V is not None:
            return self.V.shape[-1]
        if self.feedforward is not None:
            return self.feedforward.w.shape[0]
        return None

    @property
    def num_heads(self) -> int:
        """The number of heads H (1 with Q = K = V = I)."""
        return 1 if self.V is None else self.V.shape[0]

    def attention_output(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """The attention term sum_h sum_j w^h_ij V_h x_j of eqs. (2.3)-(2.5) (Geshkovski et al. 2023
        (perspective)), before the feed-forward sublayer and the tangent projection.

        **Arguments:**

        - `x`: tokens, float (n, d), on S^{d-1} (d = 3 for ``evaluator="harmonics"``).

        **Returns:**

        Float (n, d).

        **Raises:**

        - `ValueError`: ``evaluator="harmonics"`` with tokens of d != 3.
        """
        if self.evaluator == "harmonics":
            if x.shape[-1] != 3:
                raise ValueError(f"evaluator='harmonics' works on S^2 only (d = 3); tokens have d = {x.shape[-1]}")
            degree = self.harmonics_degree
            if degree is None:  # from the current beta where it is concrete (e.g. after eqx.tree_at), else the built one
                beta = float(self.beta) if is_concrete(self.beta) else self.harmonics_beta
                degree = truncation_degree(beta, x.shape[0], self.harmonics_tol, self.normalisation)
            return sphere_attention_harmonics(x, self.beta, degree, normalisation=self.normalisation,
                                              log_shift=self.log_shift(), tol=self.harmonics_tol)
        kwargs = dict(
            normalisation=self.normalisation,
            causal=self.causal,
            log_shift=self.log_shift(),
            block_size=self.block_size,
        )
        if self.V is None:
            return attend(self.beta * x, x, x, **kwargs)

        def head(Q, K, V):
            return attend(self.beta * (x @ Q.T), x @ K.T, x @ V.T, **kwargs)

        return jnp.sum(jax.vmap(head)(self.Q, self.K, self.V), axis=0)

    def attention_matrix(self, t, x: Float[Array, "n d"]) -> Float[Array, "H n n"]:
        """The attention weights w^h_ij of eq. (2.5) (Geshkovski et al. 2023 (perspective)):
        e^{beta ⟨Q_h x_i, K_h x_j⟩} / Z^h_i (softmax) or / n (mean), causal where the field is.

        **Arguments:**

        - `t`: the time (unused; the signature of a field's methods).
        - `x`: tokens, float (n, d).

        **Returns:**

        Float (H, n, n), one matrix per head (rows sum to 1 for the softmax).
        """
        Q = jnp.eye(x.shape[-1], dtype=x.dtype)[None] if self.Q is None else self.Q
        K = Q if self.K is None else self.K

        def head(Q, K):
            return attention_weights(self.beta * (x @ Q.T) @ (x @ K.T).T,
                                     normalisation=self.normalisation, causal=self.causal,
                                     log_shift=self.log_shift())

        return jax.vmap(head)(Q, K)

    def velocity(self, t, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        y = self.attention_output(x)
        if self.feedforward is not None:
            y = self.feedforward(y)
        return tangent_projection(x, y)


class SelfAttention(AbstractSphereAttention):
    """(SA) on S^{d-1}: softmax self-attention with inverse temperature beta.

    ``SelfAttention(beta)`` is Geshkovski et al. 2023 (perspective) eq. (2.6) (Q = K = V = I). Optional ``Q``, ``K``
    (shape (m, d), rectangular allowed) and ``V`` (d, d) give eq. (2.3); stacks of shape
    (H, m, d) / (H, d, d) give H heads, eq. (2.7); ``causal=True`` gives (CSA) of Karagodin et al. 2024;
    ``feedforward`` gives eq. (2.8). ``block_size`` controls the row-blocked kernel
    (see [`jaxattn.fields.attend`][jaxattn.fields.attend]). ``evaluator="harmonics"`` (d = 3, Q = K = V = I,
    non-causal) evaluates the field in O(n L^2) with the spherical-harmonic addition theorem
    to within ``harmonics_tol`` (see `jaxattn.fields._harmonics`); it is faster than
    the dense O(n^2) kernel from a few thousand tokens on (measured in benchmarks/README.md, section
    "Scaling: one right-hand side, dense O(n^2) vs the O(n) fast paths").

    ``normalisation=jaxattn.fields.Sinkhorn(k)`` replaces the row softmax by doubly stochastic
    attention (Sander, Ablin, Blondel, Peyre, "Sinkformers", AISTATS 2022):
    A = diag(e^u) exp(beta ⟨Q x_i, K x_j⟩) diag(e^v) with rows and columns summing to 1 after k
    log-domain Sinkhorn row normalisations ([`Sinkhorn`][jaxattn.Sinkhorn]; dense evaluator only).

    **Arguments:**

    - `beta`: the inverse temperature, a finite scalar > 0.
    - `Q`: the query matrix, float (m, d) (rectangular allowed, footnote 4) or a stack (H, m, d);
        default None: the identity.
    - `K`: the key matrix, the shape of ``Q``; default None: the identity.
    - `V`: the value matrix, float (d, d) or (H, d, d); default None: the identity.
    - `causal`: token i attends to tokens j <= i only ((CSA), Karagodin et al. 2024 §1.2); default False.
    - `feedforward`: a [`FeedForward`][jaxattn.FeedForward] sublayer acting on d, eq. (2.8); default None.
    - `block_size`: the row block of the dense kernel (static); default None: chosen by
        [`jaxattn.fields.default_block_size`][jaxattn.fields.default_block_size].
    - `evaluator`: ``"dense"`` (default) or ``"harmonics"`` (d = 3, Q = K = V = I, non-causal).
    - `harmonics_tol`: the truncation tolerance of the harmonics evaluator, > 0; default 1e-13.
    - `harmonics_degree`: the truncation degree L, an int >= 0; default None: chosen from beta, n and
        the tolerance ([`jaxattn.fields.truncation_degree`][jaxattn.fields.truncation_degree]; needs a
        concrete beta).
    - `normalisation`: ``"softmax"`` (default) or a [`Sinkhorn`][jaxattn.Sinkhorn] (dense evaluator only).

    **Raises:**

    - `ValueError`: beta not finite or <= 0 (or not a scalar); Q, K, V of inconsistent shapes or with
        NaN/inf; a feed-forward sublayer of another d; an unknown ``evaluator``; ``"harmonics"`` with
        Q/K/V, a causal mask, a bad tolerance or degree, or a traced beta without ``harmonics_degree``.
    - `TypeError`: beta or a matrix is not real-valued.
    """

    normalisation: Literal["softmax"] | Sinkhorn = eqx.field(static=True)

    def __init__(self, beta: float | ArrayLike, Q: ArrayLike | Sequence | None = None, K: ArrayLike | Sequence | None = None,
                 V: ArrayLike | Sequence | None = None, *, causal: bool = False, feedforward: FeedForward | None = None,
                 block_size: int | None = None, evaluator: str = "dense",
                 harmonics_tol: float = DEFAULT_TOLERANCE, harmonics_degree: int | None = None,
                 normalisation: Literal["softmax"] | Sinkhorn | str = "softmax"):
        self.normalisation = check_normalisation(normalisation, ("softmax",))
        if isinstance(self.normalisation, Sinkhorn) and evaluator != "dense":
            raise ValueError(f"Sinkhorn attention is evaluated by the dense kernel only; got evaluator={evaluator!r}")
        _init_sphere_attention(self, beta, Q, K, V, causal, feedforward, block_size, evaluator, harmonics_tol,
                               harmonics_degree)

    def log_shift(self) -> float:
        return 0.0


class UnnormalisedSelfAttention(AbstractSphereAttention):
    """(USA) on S^{d-1}: Geshkovski et al. 2023 (perspective) §3.3, the partition function Z_i replaced by n.

        dx_i/dt = P_{x_i}( (1/n) sum_j exp(beta ⟨Q x_i, K x_j⟩) V x_j ).

    USA is n times the Riemannian gradient of E_beta (eq. (3.11)) and its velocities
    scale like e^beta (stiff). With ``time_rescaled=True`` the field is multiplied by
    e^{-beta} (weights exp(beta(⟨Qx_i, Kx_j⟩ - 1))/n): the same trajectories on the time
    scale t' = e^beta t. Under a causal mask Z_i is replaced by i, the number of tokens
    token i sees.

    **Arguments:**

    - `beta`: the inverse temperature, a finite scalar > 0.
    - `Q`: the query matrix, float (m, d) or (H, m, d); default None: the identity.
    - `K`: the key matrix, the shape of ``Q``; default None: the identity.
    - `V`: the value matrix, float (d, d) or (H, d, d); default None: the identity.
    - `causal`: token i attends to tokens j <= i only (normalised by i); default False.
    - `feedforward`: a [`FeedForward`][jaxattn.FeedForward] sublayer, eq. (2.8); default None.
    - `block_size`: the row block of the dense kernel (static); default None: automatic.
    - `time_rescaled`: multiply the field by e^{-beta} (time scale t' = e^beta t); default False.
    - `evaluator`: ``"dense"`` (default) or ``"harmonics"`` (d = 3, Q = K = V = I, non-causal).
    - `harmonics_tol`: the truncation tolerance of the harmonics evaluator, > 0; default 1e-13.
    - `harmonics_degree`: the truncation degree L, an int >= 0; default None: automatic.

    **Raises:**

    - `ValueError`: as [`SelfAttention`][jaxattn.SelfAttention].
    - `TypeError`: as [`SelfAttention`][jaxattn.SelfAttention].
    """

    time_rescaled: bool = eqx.field(static=True)

    normalisation = "mean"

    def __init__(self, beta: float | ArrayLike, Q: ArrayLike | Sequence | None = None, K: ArrayLike | Sequence | None = None,
                 V: ArrayLike | Sequence | None = None, *, causal: bool = False, feedforward: FeedForward | None = None,
                 block_size: int | None = None, time_rescaled: bool = False, evaluator: str = "dense",
                 harmonics_tol: float = DEFAULT_TOLERANCE, harmonics_degree: int | None = None):
        _init_sphere_attention(self, beta, Q, K, V, causal, feedforward, block_size, evaluator, harmonics_tol,
                               harmonics_degree)
        self.time_rescaled = bool(time_rescaled)

    def log_shift(self) -> Float[ArrayLike, ""]:
        return self.beta if self.time_rescaled else 0.0
