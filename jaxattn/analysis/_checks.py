"""Input checks shared by the analysis functions (values are checked when concrete, as in
`jaxattn._validate`): a configuration is finite floating point, thresholds lie in their range."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .._validate import check_finite, enforce, interval_rule, is_concrete


def check_tokens(x: ArrayLike, *, min_ndim: int = 2, name: str = "x") -> Array:
    """Validate a configuration (or a stack of them) for an analysis function.

    **Arguments:**

    - `x`: tokens (..., n, d) or angles (..., n), array-like.
    - `min_ndim`: the fewest axes accepted; default 2 (tokens; 1 for angles).
    - `name`: its name in the messages; default ``"x"``.

    **Returns:**

    ``x`` as a floating JAX array (integers converted to the default float).

    **Raises:**

    - `ValueError`: fewer than ``min_ndim`` axes; (concrete values) NaN/inf entries, or tokens whose
        squared norm overflows float64 (|x_i| > ~1e154).
    - `TypeError`: ``x`` is not real (e.g. complex or boolean).
    """
    x = jnp.asarray(x)
    if x.ndim < min_ndim:
        what = "(..., n) angles" if min_ndim == 1 else "(..., n, d) tokens"
        raise ValueError(f"{name} must be an array of {what}; got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        if jnp.issubdtype(x.dtype, jnp.integer):
            x = x.astype(jnp.result_type(float))
        else:
            raise TypeError(f"{name} must be real floating point, got dtype {x.dtype}")
    check_finite(x, name)
    if is_concrete(x) and x.size and not _norms_finite(np.asarray(x, float)):
        raise ValueError(f"{name} has tokens whose squared norm overflows float64 (|x_i| > ~1e154); inner "
                         "products and attention logits would be inf. Rescale the tokens")
    return x


def check_threshold(name: str, value, upper: float, meaning: str) -> None:
    """Check that a concrete threshold lies in (0, upper] (`jaxattn._validate.interval_rule`; a traced
    value is not checked).

    **Arguments:**

    - `name`: its name in the message.
    - `value`: the threshold, a scalar or array.
    - `upper`: the closed upper bound.
    - `meaning`: what the threshold means, shown in the message.

    **Raises:**

    - `ValueError`: ``value`` is not finite or outside (0, upper].
    """
    if is_concrete(value):
        enforce([interval_rule(np.asarray(value, dtype=float), name, 0.0, upper, closed_high=True,
                               meaning=f" ({meaning})")], None)


def _norms_finite(x: np.ndarray) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.max(np.sum(np.square(x), axis=-1))))
