r"""Quantitative meta-stability statements of Karagodin, Polyanskiy, Rigollet, "Clustering in causal
attention masking", 2024 (paper 003), §5: Lemma 5.1, Theorem 5.2, Lemma A.2.

Setting: d = 2, Q = K = V = I_2, angles on S^1, h(x) = e^{beta(cos x - 1)} sin x and g = h'
([`jaxattn.analysis.renyi.interaction_h`][jaxattn.analysis.interaction_h] / ``interaction_g``). All functions here are
host-side (NumPy/float64) checks of scalar conditions or of one initial configuration.

* **Lemma 5.1 (strong Rényi centres stay put).** A strong centre s_j (1-based token index) whose
  nearest earlier token is at angle Delta_j satisfies hypothesis (1) with
  c_j = Delta_j beta^{1/2} / (1 + 2 eps); if ``c_j beta^{-1/2} > tau*_beta`` (hypothesis (2)) then for
  T_j = eps c_j beta^{-1/2} / (s_j h(c_j beta^{-1/2})) (hypothesis (3) with equality; any smaller
  T_j works) the centre moves by less than eps c_j beta^{-1/2} on [0, T_j]
  ([`lemma_5_1_bounds`][jaxattn.analysis.lemma_5_1_bounds]). **Erratum (``docs/paper_003.md``, 5):** the paper's (1) uses the chord
  |x_{s_j} - x_i| while the Rényi definitions and the proof use the angle; ``metric="chord"``
  gives the (smaller, hence also valid) chord-based c_j.
* **Theorem 5.2 (frozen centres).** For the cross-attention dynamics
  [`jaxattn.FrozenCentresCircleAttention`][jaxattn.FrozenCentresCircleAttention] with frozen angles more than c beta^{-1/2} apart,
  weights a_j >= 1 and N = n + sum_j a_j: if c > 2 + 2 eps and

      N h((c - 1 - 2 eps) beta^{-1/2}) < h(eps beta^{-1/2}),
      -N g((c - 2 eps) beta^{-1/2})    < g(eps beta^{-1/2}),

  almost every initial state converges to a strongly stable critical point with every particle
  within eps beta^{-1/2} of some theta_j ([`theorem_5_2_conditions`][jaxattn.analysis.theorem_5_2_conditions]). **Erratum
  (``docs/paper_003.md``, 2):** the theorem prints the second condition without the minus sign; since
  g((c - 2 eps) beta^{-1/2}) < 0 there, the printed form is vacuous (``paper_sign=True``
  evaluates it). Lemma A.2 and the end of the proof use the form above.
* **Lemma A.2 / Remark (explicit sufficient conditions).** eps <= 0.1, c >= 5.5 + 2 eps,
  beta >= (c - 1 - 2 eps)^2 / 2 and N <= (eps/(c - 1)) exp(3 (c - 1 - 2 eps)^2 / 8)
  ([`lemma_a2_conditions`][jaxattn.analysis.lemma_a2_conditions]). One reading is eps < 0.1, but the paper's own example uses
  eps = 0.1 and the proof's constant 1/200 is eps^2/2 at eps = 0.1, so eps <= 0.1 is meant.
  **Erratum (``docs/paper_003.md``, 3):** the Remark uses eps/(c - 1) while the proof uses eps/r with
  r = c - 1 - 2 eps. At eps = 0.1, c = 6.5: beta_min = 14.045 (the paper's "beta >= 14"),
  N bound 682.95 with eps/(c - 1) and 708.72 with eps/r (the paper's "N <= 700" is neither);
  ``n_bound="remark"`` (default, the smaller) or ``"proof"`` selects one
  ([`lemma_a2_bounds`][jaxattn.analysis.lemma_a2_bounds]). At beta = 14.045 the Theorem 5.2 ratios are
  h(eps b^{-1/2}) / h(r b^{-1/2}) = 3782.9 and g(eps b^{-1/2}) / (-g((c - 2 eps) b^{-1/2})) = 415373.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike

from .renyi import default_delta, strong_renyi_centres, tau_star


def _h(x, beta):
    return np.exp(beta * (np.cos(x) - 1.0)) * np.sin(x)


def _g(x, beta):
    return np.exp(beta * (np.cos(x) - 1.0)) * (np.cos(x) - beta * np.sin(x) ** 2)


def _positive(name, value):
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# Theorem 5.2


def _check_range(beta, eps, c):
    """beta^{-1/2}, after checking that the theorem's arguments lie in (0, pi) where h, g are not wrapped."""
    s = beta**-0.5
    if not (c - 2 * eps) * s < math.pi:
        raise ValueError(
            f"(c - 2 eps) beta^(-1/2) = {(c - 2 * eps) * s:.4g} >= pi: the conditions of Theorem 5.2 evaluate "
            "h and g at that angle, which has wrapped around the circle (frozen angles c beta^(-1/2) apart "
            "need c beta^(-1/2) < pi); increase beta or decrease c")
    return s


def theorem_5_2_ratios(beta: float, eps: float, c: float) -> tuple[float, float]:
    """The largest N allowed by each condition of Theorem 5.2 (Karagodin, Polyanskiy, Rigollet 2024),
    with the corrected sign of the second (module docstring):

        N_h = h(eps b^{-1/2}) / h((c - 1 - 2 eps) b^{-1/2}),  N_g = g(eps b^{-1/2}) / (-g((c - 2 eps) b^{-1/2}))

    (b = beta). The conditions hold iff N < N_h and N < N_g (and c > 2 + 2 eps).

    **Arguments:**

    - `beta`: the inverse temperature, finite and > 0.
    - `eps`: the radius factor eps (particles end within eps beta^{-1/2} of a frozen angle), finite, > 0.
    - `c`: the separation factor (frozen angles more than c beta^{-1/2} apart), finite, > 0.

    **Returns:**

    ``(N_h, N_g)``, floats: inf when the denominator is <= 0 and the numerator > 0 (the condition holds
    for every N), 0 when the numerator is <= 0.

    **Raises:**

    - `ValueError`: an argument not finite or <= 0, or (c - 2 eps) beta^{-1/2} >= pi (the angles at
        which h and g are evaluated have wrapped around the circle).
    """
    beta, eps, c = _positive("beta", beta), _positive("eps", eps), _positive("c", c)
    s = _check_range(beta, eps, c)

    def ratio(num, den):
        if num <= 0:
            return 0.0
        return num / den if den > 0 else math.inf

    n_h = ratio(_h(eps * s, beta), _h((c - 1 - 2 * eps) * s, beta))
    n_g = ratio(_g(eps * s, beta), -_g((c - 2 * eps) * s, beta))
    return float(n_h), float(n_g)


def theorem_5_2_conditions(N: float, beta: float, eps: float, c: float, *, paper_sign: bool = False) -> bool:
    """Whether (N, beta, eps, c) satisfy the hypotheses of Theorem 5.2 of Karagodin, Polyanskiy, Rigollet
    2024: c > 2 + 2 eps, N h((c - 1 - 2 eps) b^{-1/2}) < h(eps b^{-1/2}) and, with the corrected sign,
    -N g((c - 2 eps) b^{-1/2}) < g(eps b^{-1/2}) (b = beta).

    **Arguments:**

    - `N`: n + sum_j a_j (particles plus the frozen tokens' weights), finite and > 0.
    - `beta`: the inverse temperature, finite and > 0.
    - `eps`: the radius factor eps (particles end within eps beta^{-1/2} of a frozen angle), finite, > 0.
    - `c`: the separation factor (frozen angles more than c beta^{-1/2} apart), finite, > 0.
    - `paper_sign`: evaluate the second condition as printed, N g(.) < g(.), which is vacuous
        (``docs/paper_003.md``, erratum 2); it exists to document that. Default False.

    **Returns:**

    True when every hypothesis holds (bool).

    **Raises:**

    - `ValueError`: an argument not finite or <= 0, or (c - 2 eps) beta^{-1/2} >= pi (the angles at
        which h and g are evaluated have wrapped around the circle).
    """
    N = _positive("N", N)
    beta, eps, c = _positive("beta", beta), _positive("eps", eps), _positive("c", c)
    s = _check_range(beta, eps, c)
    if not c > 2 + 2 * eps:
        return False
    first = N * _h((c - 1 - 2 * eps) * s, beta) < _h(eps * s, beta)
    far = _g((c - 2 * eps) * s, beta)
    second = (N * far if paper_sign else -N * far) < _g(eps * s, beta)
    return bool(first and second)


# ----------------------------------------------------------------------------------------------
# Lemma A.2


class LemmaA2Bounds(NamedTuple):
    """The bounds of Lemma A.2 (Karagodin, Polyanskiy, Rigollet 2024), from [`lemma_a2_bounds`][jaxattn.analysis.lemma_a2_bounds].

    **Attributes:**

    - `beta_min`: (c - 1 - 2 eps)^2 / 2, the smallest beta.
    - `n_max_remark`: (eps / (c - 1)) exp(3 r^2 / 8), the Remark's / Lemma A.2's statement.
    - `n_max_proof`: (eps / r) exp(3 r^2 / 8), r = c - 1 - 2 eps, what the proof uses.
    """

    beta_min: float  #: (c - 1 - 2 eps)^2 / 2
    n_max_remark: float  #: (eps / (c - 1)) exp(3 r^2 / 8), the Remark's / Lemma A.2's statement
    n_max_proof: float  #: (eps / r) exp(3 r^2 / 8), r = c - 1 - 2 eps, what the proof uses


def lemma_a2_bounds(eps: float, c: float) -> LemmaA2Bounds:
    """beta_min and the two N bounds of Lemma A.2 (Karagodin, Polyanskiy, Rigollet 2024; 682.95 / 708.72
    at eps = 0.1, c = 6.5; module docstring, erratum 3).

    **Arguments:**

    - `eps`: finite, > 0.
    - `c`: finite, > 1 + 2 eps.

    **Returns:**

    A `LemmaA2Bounds` ``(beta_min, n_max_remark, n_max_proof)``.

    **Raises:**

    - `ValueError`: ``eps`` or ``c`` not finite or <= 0, or c <= 1 + 2 eps.
    """
    eps, c = _positive("eps", eps), _positive("c", c)
    r = c - 1 - 2 * eps
    if not r > 0:
        raise ValueError(f"need c > 1 + 2 eps, got c = {c}, eps = {eps}")
    growth = math.exp(3 * r**2 / 8)
    return LemmaA2Bounds(r**2 / 2, eps / (c - 1) * growth, eps / r * growth)


def lemma_a2_conditions(eps: float, c: float, beta: float, N: float, *, n_bound: str = "remark") -> bool:
    """Explicit sufficient conditions of Lemma A.2 (paper 003 Remark after Theorem 5.2):
    0 < eps <= 0.1, c >= 5.5 + 2 eps, beta >= (c - 1 - 2 eps)^2 / 2 and N <= bound, with
    bound = (eps/(c - 1)) e^{3 r^2 / 8} (``n_bound="remark"``, as stated; 682.95 at eps = 0.1,
    c = 6.5) or (eps/r) e^{3 r^2 / 8} (``"proof"``, r = c - 1 - 2 eps; 708.72).
    When they hold, so do the conditions of [`theorem_5_2_conditions`][jaxattn.analysis.theorem_5_2_conditions].

    **Arguments:**

    - `eps`: finite, > 0.
    - `c`: finite, > 0.
    - `beta`: the inverse temperature, finite, > 0.
    - `N`: n + sum_j a_j, finite, > 0.
    - `n_bound`: ``"remark"`` (default: the bound as stated, the smaller) or ``"proof"``.

    **Returns:**

    True when every condition holds (bool).

    **Raises:**

    - `ValueError`: an unknown ``n_bound``, or an argument not finite or <= 0.
    """
    if n_bound not in ("remark", "proof"):
        raise ValueError(f"n_bound must be 'remark' or 'proof', got {n_bound!r}")
    eps, c = _positive("eps", eps), _positive("c", c)
    beta, N = _positive("beta", beta), _positive("N", N)
    if not (eps <= 0.1 and c >= 5.5 + 2 * eps):
        return False
    bounds = lemma_a2_bounds(eps, c)
    n_max = bounds.n_max_remark if n_bound == "remark" else bounds.n_max_proof
    return bool(beta >= bounds.beta_min and N <= n_max)


def lemma_a2_f(r: float) -> float:
    """The auxiliary function of the proof of Lemma A.2 (Karagodin, Polyanskiy, Rigollet 2024):
    f(r) = 3r^2/8 - (r+1)^2/2 + (r+1)^4/(12 r^2) + 1/200 + 2 ln(r+1) - ln(9.8 r);
    f(4.5) = -4.13752 (the paper prints -4.14).

    **Arguments:**

    - `r`: finite, > 0.

    **Returns:**

    f(r) (float).

    **Raises:**

    - `ValueError`: ``r`` not finite or <= 0.
    """
    r = _positive("r", r)
    return (3 * r**2 / 8 - (r + 1) ** 2 / 2 + (r + 1) ** 4 / (12 * r**2) + 1 / 200
            + 2 * math.log(r + 1) - math.log(9.8 * r))


# ----------------------------------------------------------------------------------------------
# Lemma 5.1


class Lemma51Bounds(NamedTuple):
    """The per-centre constants of Lemma 5.1 (Karagodin, Polyanskiy, Rigollet 2024), from
    [`lemma_5_1_bounds`][jaxattn.analysis.lemma_5_1_bounds]; each a NumPy array of shape (J,), one entry per
    strong centre.

    **Attributes:**

    - `index`: the 1-based token index s_j of each strong centre.
    - `gap`: the distance Delta_j to the nearest earlier token at t = 0 (inf for token 1).
    - `c`: c_j = Delta_j beta^{1/2} / (1 + 2 eps).
    - `T`: T_j = eps c_j beta^{-1/2} / (s_j h(c_j beta^{-1/2})).
    - `bound`: eps c_j beta^{-1/2}, the displacement bound on [0, T_j].
    - `valid`: bool, whether hypothesis (2) ``c_j beta^{-1/2} > tau*_beta`` holds (False for token 1).
    """

    index: np.ndarray  #: (J,) 1-based token index s_j of each strong centre
    gap: np.ndarray  #: (J,) distance Delta_j to the nearest earlier token at t = 0 (inf for token 1)
    c: np.ndarray  #: (J,) c_j = Delta_j beta^{1/2} / (1 + 2 eps)
    T: np.ndarray  #: (J,) T_j = eps c_j beta^{-1/2} / (s_j h(c_j beta^{-1/2}))
    bound: np.ndarray  #: (J,) eps c_j beta^{-1/2}: displacement bound on [0, T_j]
    valid: np.ndarray  #: (J,) bool: hypothesis (2) c_j beta^{-1/2} > tau*_beta holds (False for token 1)


def lemma_5_1_bounds(theta0: ArrayLike, beta: float, eps: float, centres: ArrayLike | None = None, *,
                     delta: float | None = None, metric: str = "geodesic") -> Lemma51Bounds:
    """Per-centre constants of paper 003 Lemma 5.1 for one initial configuration of angles.

    ``centres``: (n,) boolean mask of the strong Rényi centres; default
    ``strong_renyi_centres(theta0, delta)`` with delta = 4 beta^{-1/2}. For each centre s_j the
    nearest earlier token is at Delta_j (angle, or chord 2 sin(Delta_j/2) with ``metric="chord"``);
    then c_j, T_j and the bound eps c_j beta^{-1/2} follow the proof of Lemma 5.1. The lemma asserts
    max_{t in [0, T_j]} |x_{s_j}(t) - x_{s_j}(0)| < bound for every ``valid`` centre. Token 1 never
    moves under V = I; it is reported with Delta = c = T = bound = inf and valid = False.

    **Arguments:**

    - `theta0`: the initial angles, finite, float (n,), n >= 1.
    - `beta`: the inverse temperature, finite and > 0.
    - `eps`: the displacement factor, finite and > 0.
    - `centres`: bool (n,) mask of the strong Rényi centres; default None:
        ``strong_renyi_centres(theta0, delta)``.
    - `delta`: the Rényi radius used when ``centres`` is None; default None: 4 beta^{-1/2}
        (``renyi.default_delta``).
    - `metric`: ``"geodesic"`` (default: the angle, as the proof) or ``"chord"`` (2 sin(Delta_j / 2),
        the paper's hypothesis (1) as printed; module docstring, erratum 5).

    **Returns:**

    A `Lemma51Bounds` (one entry per centre).

    **Raises:**

    - `ValueError`: an unknown ``metric``; ``beta``/``eps`` not finite or <= 0; ``theta0`` not a finite
        (n,) array; ``centres`` not an (n,) mask.
    """
    if metric not in ("geodesic", "chord"):
        raise ValueError(f"metric must be 'geodesic' or 'chord', got {metric!r}")
    beta, eps = _positive("beta", beta), _positive("eps", eps)
    theta = np.asarray(theta0, dtype=float)
    if theta.ndim != 1 or theta.shape[0] < 1:
        raise ValueError(f"theta0 must be an (n,) array of angles, got shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta0 contains NaN or inf")
    if centres is None:
        centres = strong_renyi_centres(theta, float(default_delta(beta)) if delta is None else delta)
    mask = np.asarray(centres, dtype=bool)
    if mask.shape != theta.shape:
        raise ValueError(f"centres must be an (n,) mask like theta0, got shape {mask.shape}")
    idx = np.flatnonzero(mask)
    gap = np.full(idx.shape, np.inf)
    for j, k in enumerate(idx):
        if k > 0:
            d = np.abs(np.angle(np.exp(1j * (theta[:k] - theta[k]))))  # wrapped angle in [0, pi]
            gap[j] = d.min() if metric == "geodesic" else (2 * np.sin(d / 2)).min()
    s = beta**-0.5
    c = gap / (s * (1 + 2 * eps))
    bound = eps * c * s
    with np.errstate(invalid="ignore", divide="ignore"):
        T = np.where(np.isfinite(c), bound / ((idx + 1) * _h(c * s, beta)), np.inf)
    valid = np.isfinite(c) & (c * s > float(tau_star(beta)))
    return Lemma51Bounds(idx + 1, gap, c, T, bound, valid)
