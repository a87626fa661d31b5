r"""Rényi centres, the interaction function h and meta-stable statistics of causal attention (paper 003:
Karagodin, Polyanskiy, Rigollet, "Clustering in causal attention masking", 2024).

Definitions (paper 003 §5.1). For a sequence x_1, x_2, ... on S^{d-1} (or angles on
S^1) with **geodesic** distance and a separation delta (figures: delta = 4 beta^{-1/2}):

* **Rényi centres**: greedy in token order, token k is a centre when it is more than delta from
  every *earlier centre*; token 1 always is.
* **Strong Rényi centres**: token k is more than delta from *every earlier token*; token 1 always is.
  Strong centres are Rényi centres.

Both are computed from positions at t = 0 and then followed as tokens (Fig. 2 caption). "dist > delta"
is tested as ⟨x, y⟩ < cos(delta), exact for delta in (0, pi); the author's notebook uses the chord
2 sin(delta/2), which is equivalent.

Expected counts for i.i.d. uniform tokens (Lemma C.1 and Dvoretzky-Robbins):

* strong: E = (1 - (1 - p)^n) / p -> 1/p with p = sigma(B_delta), the normalised cap area:
  p = delta/pi on S^1 and p = sin^2(delta/2) on S^2. **Erratum (paper Lemma C.1, d = 3):** the paper
  writes (3 sin^2(delta/2))^{-1}; the normalised cap area is sin^2(delta/2), so the count is
  1/sin^2(delta/2) (Monte Carlo in the tests: 6.6 at delta = 0.8, not 2.2).
* Rényi on S^1: the jammed count is c_R 2 pi / delta, c_R = 0.7475979... (the paper's "c ~ 0.75";
  exactly c_R 2pi/delta asymptotically: 1 + M((2 pi - delta)/delta) with M(x) = c_R x + c_R - 1).

"Consumed" and "cluster" are not defined in the paper (``docs/paper_003.md``, erratum 8). Exposed
here, with the defaults of the author's notebook: ``definition="ball"`` (definition B: within
``radius`` = beta^{-1/2} of a centre's current position) and ``definition="cluster"`` (definition A:
in the same gap-``gap`` cluster as a centre, gap = 0.07 rad).

Interaction function (CSA-2d, Lemma A.1): h(x) = e^{beta(cos x - 1)} sin x, g = h', maximiser
`tau*_beta` with `cos tau* = (-1 + sqrt(4 beta^2 + 1)) / (2 beta)`, evaluated in the cancellation-free
form `tau* = 2 arcsin( (2 beta + 1 + sqrt(4 beta^2 + 1))^{-1/2} )`.

Everything here is jit/vmap friendly (leading batch/time axes broadcast) except the host-side
expected-count formulas.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ..fields import embed_angles
from ..manifolds import CIRCLE, AbstractManifold, Circle, Sphere, as_manifold
from .clusters import cluster_labels

#: Rényi's parking constant (Rényi 1958), the paper's "c ~ 0.75"
RENYI_CONSTANT = 0.7475979202534114
#: default angular gap (rad) of the cluster counts of paper 003's notebook
DEFAULT_CAUSAL_GAP = 0.07


def default_delta(beta: float | ArrayLike) -> Array:
    """delta = 4 beta^{-1/2}, the separation of paper 003's figures (Karagodin, Polyanskiy, Rigollet 2024,
    Figs 2-3).

    **Arguments:**

    - `beta`: the inverse temperature, a float or an array of any shape (> 0 for a finite result; not checked).

    **Returns:**

    `4 / sqrt(beta)`, a float64 array of the shape of `beta`.
    """
    return 4.0 / jnp.sqrt(jnp.asarray(beta, dtype=jnp.result_type(float)))


# ----------------------------------------------------------------------------------------------
# interaction function (Lemma A.1)


def interaction_h(x: ArrayLike, beta: float | ArrayLike) -> Array:
    """The interaction function h(x) = e^{beta(cos x - 1)} sin x of causal attention on the circle (paper 003,
    Karagodin, Polyanskiy, Rigollet 2024, eq. (IntPot)).

    **Arguments:**

    - `x`: angles (rad), an array of any shape.
    - `beta`: the inverse temperature, a float or an array broadcasting against `x`.

    **Returns:**

    h(x), a float64 array of the broadcast shape.
    """
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    return jnp.exp(beta * (jnp.cos(x) - 1)) * jnp.sin(x)


def interaction_g(x: ArrayLike, beta: float | ArrayLike) -> Array:
    """The derivative g = h' = e^{beta(cos x - 1)} (cos x - beta sin^2 x) of the interaction function
    (paper 003, Karagodin, Polyanskiy, Rigollet 2024, Lemma A.1).

    **Arguments:**

    - `x`: angles (rad), an array of any shape.
    - `beta`: the inverse temperature, a float or an array broadcasting against `x`.

    **Returns:**

    g(x), a float64 array of the broadcast shape.
    """
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    return jnp.exp(beta * (jnp.cos(x) - 1)) * (jnp.cos(x) - beta * jnp.sin(x) ** 2)


def tau_star(beta: float | ArrayLike) -> Array:
    """The maximiser `tau*_beta` of h on [0, pi]: `cos tau* = (-1 + sqrt(4 beta^2 + 1)) / (2 beta)` (paper 003,
    Karagodin, Polyanskiy, Rigollet 2024, Lemma A.1 (3)).

    Evaluated in the cancellation-free form `tau* = 2 arcsin( (2 beta + 1 + sqrt(4 beta^2 + 1))^{-1/2} )`,
    accurate for large beta where `cos tau*` is close to 1.

    **Arguments:**

    - `beta`: the inverse temperature, a float or an array of any shape (> 0).

    **Returns:**

    `tau*_beta` (rad, in (0, pi/2)), a float64 array of the shape of `beta`.
    """
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    return 2 * jnp.arcsin(1 / jnp.sqrt(2 * beta + 1 + jnp.sqrt(4 * beta**2 + 1)))


def tau_star_table(betas=(1, 4, 9, 10, 14, 16, 64, 256)) -> dict[str, np.ndarray]:
    """A table of `tau*_beta` ([`tau_star`][jaxattn.analysis.renyi.tau_star]) with the bounds
    `(beta + 1/2)^{-1/2} < tau* < beta^{-1/2}` (beta >= 1) and `h(tau*)` (paper 003, Karagodin, Polyanskiy,
    Rigollet 2024, Lemma A.1).

    **Arguments:**

    - `betas`: the inverse temperatures, a sequence of numbers; default `(1, 4, 9, 10, 14, 16, 64, 256)`.

    **Returns:**

    A dict of float NumPy arrays of the length of `betas`: `"beta"`, `"tau_star"`, `"beta^-1/2"`,
    `"(beta+1/2)^-1/2"` and `"h(tau_star)"`.
    """
    b = np.asarray(betas, dtype=float)
    tau = np.asarray(tau_star(b))
    return {
        "beta": b,
        "tau_star": tau,
        "beta^-1/2": b**-0.5,
        "(beta+1/2)^-1/2": (b + 0.5) ** -0.5,
        "h(tau_star)": np.asarray(interaction_h(tau, b)),
    }


# ----------------------------------------------------------------------------------------------
# centres


#: the unit vectors of a configuration, on the manifolds where centres are defined
_POINTS = {Circle: embed_angles, Sphere: lambda x: x}


def _as_points(x: Array, manifold: AbstractManifold | str) -> Array:
    to_points = _POINTS.get(type(as_manifold(manifold)))
    if to_points is None:
        raise ValueError(f"manifold must be the circle (angles) or the sphere (unit vectors), got {manifold!r}")
    return to_points(x)


def _check_delta(delta) -> None:
    if not isinstance(delta, jax.core.Tracer):
        d = float(delta)
        if not (0 < d < math.pi):
            raise ValueError(f"delta must be in (0, pi) (geodesic), got {d}")


def strong_renyi_centres(x: ArrayLike, delta: float, *, manifold: AbstractManifold | str = "circle") -> Bool[Array, "... n"]:
    """Mask of strong Rényi centres: token k is one when dist(x_k, x_i) > delta for every i < k (token 1
    always is) (paper 003, Karagodin, Polyanskiy, Rigollet 2024, §5.1).

    The geodesic test dist > delta is ⟨x_k, x_i⟩ < cos(delta), exact for delta in (0, pi).

    **Arguments:**

    - `x`: the tokens, in order: (..., n) angles (`manifold="circle"`) or (..., n, d) unit vectors
        (`"sphere"`); leading axes are a batch.
    - `delta`: the geodesic separation, in (0, pi) (e.g. [`default_delta`][jaxattn.analysis.renyi.default_delta]).
    - `manifold`: `"circle"` (default) or `"sphere"`, or the manifold object.

    **Returns:**

    A boolean (..., n) mask, True at the strong Rényi centres.

    **Raises:**

    - `ValueError`: if `delta` is not in (0, pi) (checked when it is not traced) or `manifold` is neither
        the circle nor the sphere.
    """
    _check_delta(delta)
    p = _as_points(jnp.asarray(x), manifold)
    n = p.shape[-2]
    gram = jnp.einsum("...id,...jd->...ij", p, p)
    earlier = jnp.tril(jnp.ones((n, n), bool), -1)
    close = (gram >= jnp.cos(delta)) & earlier
    return ~jnp.any(close, axis=-1)


def packing_bound(delta: float, d: int) -> int:
    """An upper bound on the number of points on S^{d-1} with pairwise geodesic distance > delta:
    floor(1 / sigma(B_{delta/2})), since the caps of radius delta/2 around them are disjoint.

    **Arguments:**

    - `delta`: the geodesic separation, a float in (0, pi].
    - `d`: the ambient dimension, an int >= 2 (the sphere S^{d-1}; 2 for the circle).

    **Returns:**

    The bound, an int >= 1.

    **Raises:**

    - `ValueError`: from [`cap_fraction`][jaxattn.analysis.renyi.cap_fraction] if `delta` is not in
        [0, pi] or `d` is not an int >= 2.
    - `ZeroDivisionError`: if `delta` is 0 (no finite bound).
    """
    return int(math.floor(1.0 / cap_fraction(delta / 2, d) + 1e-9))


def renyi_centres(x: ArrayLike, delta: float, *, manifold: AbstractManifold | str = "circle",
                  max_centres: int | None = None) -> Bool[Array, "... n"]:
    """Mask of Rényi centres: greedy in token order, token k is a centre if it is more than delta (geodesic)
    from every earlier centre; token 1 always is (paper 003, Karagodin, Polyanskiy, Rigollet 2024, §5.1).

    A `lax.scan` over tokens carries a buffer of at most `max_centres` centres (default: the rigorous
    packing bound `jaxattn.analysis.renyi.packing_bound`), so the cost is
    `O(n * max_centres)`.

    **Arguments:**

    - `x`: the tokens, in order: (..., n) angles (`manifold="circle"`) or (..., n, d) unit vectors
        (`"sphere"`); leading axes are a batch.
    - `delta`: the geodesic separation, in (0, pi); a Python number unless `max_centres` is given.
    - `manifold`: `"circle"` (default) or `"sphere"`, or the manifold object.
    - `max_centres`: the size of the centre buffer, an int (clipped to [1, n]); default None, the packing
        bound for `delta`. A smaller buffer than the true number of centres gives a wrong mask.

    **Returns:**

    A boolean (..., n) mask, True at the Rényi centres.

    **Raises:**

    - `ValueError`: if `delta` is not in (0, pi) (checked when it is not traced) or `manifold` is neither
        the circle nor the sphere.
    """
    _check_delta(delta)
    p = _as_points(jnp.asarray(x), manifold)
    n, d = p.shape[-2], p.shape[-1]
    if max_centres is None:
        max_centres = packing_bound(float(delta), d)
    cap = max(1, min(int(max_centres), n))
    cos_delta = jnp.cos(delta)

    def one(points):
        def step(carry, xk):
            buf, count = carry
            used = jnp.arange(cap) < count
            close = used & (buf @ xk >= cos_delta)
            is_centre = ~jnp.any(close)
            slot = jnp.minimum(count, cap - 1)
            buf = jnp.where(is_centre, buf.at[slot].set(xk), buf)
            return (buf, count + is_centre.astype(count.dtype)), is_centre

        init = (jnp.zeros((cap, d), points.dtype), jnp.int32(0))
        _, mask = jax.lax.scan(step, init, points)
        return mask

    fn = one
    for _ in range(p.ndim - 2):
        fn = jax.vmap(fn)
    return fn(p)


def cap_fraction(delta: float, d: int) -> float:
    """Normalised area sigma^{d-1}(B_delta) of a geodesic cap of radius delta on S^{d-1}.

    sigma = (1/2) I_{sin^2 delta}((d-1)/2, 1/2) for delta <= pi/2 (regularised incomplete beta) and
    1 - sigma(B_{pi - delta}) beyond; delta/pi on S^1, sin^2(delta/2) on S^2 (paper 003, Karagodin,
    Polyanskiy, Rigollet 2024, Lemma C.1).

    **Arguments:**

    - `delta`: the geodesic radius, a float in [0, pi].
    - `d`: the ambient dimension, an int >= 2 (the sphere S^{d-1}).

    **Returns:**

    The fraction of the sphere's area in the cap, a float in [0, 1].

    **Raises:**

    - `ValueError`: if `delta` is not in [0, pi] or `d` is not an int >= 2.
    """
    from scipy.special import betainc

    delta = float(delta)
    if not (0 <= delta <= math.pi):
        raise ValueError(f"delta must be in [0, pi], got {delta}")
    if not (isinstance(d, int) and d >= 2):
        raise ValueError(f"d must be an int >= 2, got {d!r}")
    if delta <= math.pi / 2:
        return 0.5 * float(betainc((d - 1) / 2, 0.5, math.sin(delta) ** 2))
    return 1.0 - cap_fraction(math.pi - delta, d)


def expected_strong_centres(delta: float, d: int = 2, n: int | None = None) -> float:
    """Expected number of strong Rényi centres of n i.i.d. uniform tokens: (1 - (1 - p)^n) / p with
    p = sigma(B_delta) ([`cap_fraction`][jaxattn.analysis.renyi.cap_fraction]); 1/p as n -> infinity.

    Paper 003 (Karagodin, Polyanskiy, Rigollet 2024), Lemma C.1, corrected on S^2: 1/sin^2(delta/2), not the
    paper's (3 sin^2(delta/2))^{-1} (`docs/errata.md`).

    **Arguments:**

    - `delta`: the geodesic separation, a float in (0, pi].
    - `d`: the ambient dimension, an int >= 2 (tokens on S^{d-1}); default 2, the circle.
    - `n`: the number of tokens, an int >= 0; default None, the limit n -> infinity.

    **Returns:**

    The expected count, a float.

    **Raises:**

    - `ValueError`: from [`cap_fraction`][jaxattn.analysis.renyi.cap_fraction] if `delta` is not in
        [0, pi] or `d` is not an int >= 2.
    """
    p = cap_fraction(delta, d)
    if n is None:
        return 1.0 / p
    return (1.0 - (1.0 - p) ** int(n)) / p


def expected_renyi_centres_circle(delta: float) -> float:
    """Jammed (n -> infinity) mean number of Rényi centres on S^1: c_R 2 pi / delta, c_R = 0.7475979...
    (Rényi's parking constant, `RENYI_CONSTANT`; asymptotics of Dvoretzky and Robbins 1964; the "c ~ 0.75"
    of paper 003, Karagodin, Polyanskiy, Rigollet 2024, §5).

    **Arguments:**

    - `delta`: the geodesic separation, a float in (0, pi) (the formula is asymptotic as delta -> 0).

    **Returns:**

    The expected count, a float.
    """
    return RENYI_CONSTANT * 2 * math.pi / float(delta)


# ----------------------------------------------------------------------------------------------
# statistics over time


def consumed_fraction(xs: ArrayLike, centres: Bool[ArrayLike, "... n"], *, radius: float | None = None,
                      beta: float | None = None, definition: str = "ball", gap: float = DEFAULT_CAUSAL_GAP,
                      manifold: AbstractManifold | str = "circle") -> Float[Array, "..."]:
    """Fraction of tokens "consumed" by the given centres (a mask fixed at t = 0).

    The paper does not define "consumed" (paper 003, Karagodin, Polyanskiy, Rigollet 2024, Fig. 3;
    `docs/paper_003.md`, erratum 8); two definitions, with the defaults of the author's
    notebook:

    * `"ball"` (B): token within geodesic `radius` (default beta^{-1/2}) of some centre's
      *current* position (centres count themselves);
    * `"cluster"` (A, circle only): token in the same gap-`gap` cluster as some centre.

    **Arguments:**

    - `xs`: (..., T, n) angles or (..., T, n, d) points over time, or the same without the T axis.
    - `centres`: a boolean (..., n) mask (e.g. [`renyi_centres`][jaxattn.analysis.renyi.renyi_centres] of
        the states at t = 0), its leading axes matching those of `xs`.
    - `radius`: the geodesic radius of `"ball"`, a float; default None, beta^{-1/2}.
    - `beta`: the inverse temperature that sets the default `radius`, a float > 0; needed with `"ball"`
        when `radius` is None.
    - `definition`: `"ball"` (default) or `"cluster"`.
    - `gap`: the angular gap (rad) separating clusters for `"cluster"`; default `DEFAULT_CAUSAL_GAP` = 0.07.
    - `manifold`: `"circle"` (default) or `"sphere"` (`"ball"` only), or the manifold object.

    **Returns:**

    The consumed fraction in [0, 1], an array of shape (..., T) (or (...) without the T axis), the dtype
    of `xs`.

    **Raises:**

    - `ValueError`: if the shapes of `xs` and `centres` do not match, `"ball"` has neither `radius` nor
        `beta`, `"cluster"` is asked off the circle, `definition` is neither `"ball"` nor `"cluster"`, or
        `manifold` is neither the circle nor the sphere.
    """
    xs = jnp.asarray(xs)
    event = as_manifold(manifold).event_ndim
    centres = jnp.asarray(centres, bool)
    extra = xs.ndim - event - (centres.ndim - 1)  # 1 when a time axis is present
    if extra not in (0, 1):
        raise ValueError(f"xs of shape {xs.shape} does not match centres of shape {centres.shape}")
    c = centres[..., None, :] if extra == 1 else centres
    if definition == "ball":
        if radius is None:
            if beta is None:
                raise ValueError("pass radius= or beta= (radius = beta^{-1/2})")
            radius = 1.0 / math.sqrt(float(beta))
        p = _as_points(xs, manifold)
        gram = jnp.einsum("...id,...jd->...ij", p, p)
        near = (gram >= jnp.cos(radius)) & c[..., None, :]
        consumed = jnp.any(near, axis=-1)
    elif definition == "cluster":
        if not isinstance(as_manifold(manifold), Circle):
            raise ValueError("definition='cluster' uses angular gaps: circle only")
        labels = cluster_labels(xs, manifold=CIRCLE, gap=gap)
        same = labels[..., :, None] == labels[..., None, :]
        consumed = jnp.any(same & c[..., None, :], axis=-1)
    else:
        raise ValueError(f"definition must be 'ball' or 'cluster', got {definition!r}")
    return jnp.mean(consumed.astype(xs.dtype), axis=-1)


def cluster_count_series(xs: ArrayLike, *, gap: float = DEFAULT_CAUSAL_GAP) -> Array:
    """Number of gap-`gap` clusters of circle configurations, e.g. over time (the cluster counts of paper 003,
    Karagodin, Polyanskiy, Rigollet 2024, Fig. 3), by [`count_clusters`][jaxattn.analysis.count_clusters]
    on the circle.

    **Arguments:**

    - `xs`: (..., n) angles, any leading axes (e.g. (T, n) over time).
    - `gap`: the angular gap (rad) separating clusters; default `DEFAULT_CAUSAL_GAP` = 0.07.

    **Returns:**

    The number of clusters, an integer array of shape (...).
    """
    from .clusters import count_clusters

    return count_clusters(jnp.asarray(xs), manifold=CIRCLE, gap=gap)
