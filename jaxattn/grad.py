r"""Gradients through [`jaxattn.simulate`][jaxattn.simulate], the adjoint's memory/time knob, and an optax loop.

[`jaxattn.simulate`][jaxattn.simulate] is already differentiable: build the field *inside* the differentiated
function and ``jax.grad`` reaches beta, Q, K, V, x0 and t1. This module only makes that pleasant:

* [`value_and_grad_of`][jaxattn.value_and_grad_of] ``(observable, field, x0, t1)`` -> (value, [`Gradients`][jaxattn.grad.Gradients]) with the
  gradient as a field-shaped pytree (``grads.field.beta``, ``grads.field.Q``, ...), the Riemannian
  gradient in x0 (projected on the tangent space of the sphere, since x0 lives on it) and d/dt1;
* [`checkpointed_adjoint`][jaxattn.checkpointed_adjoint]: the adjoint and its memory/time knob;
* [`fit`][jaxattn.fit]: a thin optax loop over any differentiable loss of a pytree of parameters.

Adjoint and the memory/time knob
--------------------------------
Reverse mode uses diffrax's ``RecursiveCheckpointAdjoint`` (discretise-then-optimise: the exact
derivative of the computed solution). ``checkpoints=c`` stores c copies of the solver's loop state
and recomputes the steps in between (online binomial checkpointing, Stumm & Walther 2010): memory is
O(c x state) *independent of the number of steps S*, and the backward pass recomputes each step about
once while S <= (c+1)(c+2)/2, more (logarithmically) beyond. ``None`` (the default) takes equinox's
choice for the step budget, the smallest c with (c+1)(c+2)/2 > max_steps: c = 361 for simulate's
max_steps = 65536 (diffrax's docstring says log(max_steps); the installed equinox uses this square
root). Memory-bound runs (large n) should pass e.g. ``checkpoints=16``. The compiled memory of the
gradient is set by c, not by the number of steps (the cost of value+grad against a forward solve and
its memory for several T and c are measured in ``docs/gradients.md``, section "Cost", by
``benchmarks/gradients.py``).

**BacksolveAdjoint is refused** (``ValueError``): it integrates the state backwards in time, and
clustering dynamics contract forwards, so the backward problem is exponentially unstable (158x wrong
at n = 32, beta = 9, T = 10; ``docs/gradients.md``; a slow test reproduces a wrong gradient with
diffrax directly). Through ``simulate`` it could not differentiate the field parameters anyway
(they are closed over, not passed as diffrax ``args``). Recursive checkpointing costs a few forward
solves (measured in ``docs/gradients.md``, section "Cost") and is accurate to the forward solve's own
tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PyTree

from .fields import AbstractField
from .solve import Trajectory, check_initial_tokens, simulate

__all__ = [
    "FitResult",
    "Gradients",
    "check_real_scalar",
    "checkpointed_adjoint",
    "fit",
    "value_and_grad_of",
]


def checkpointed_adjoint(checkpoints: int | None = None) -> diffrax.RecursiveCheckpointAdjoint:
    """``diffrax.RecursiveCheckpointAdjoint(checkpoints)``, validated (module docstring: the knob).

    Online binomial checkpointing (Stumm & Walther, "New algorithms for optimal online
    checkpointing", 2010): memory O(c x state), independent of the number of steps S; each step is
    recomputed about once while S <= (c+1)(c+2)/2.

    **Arguments:**

    - `checkpoints`: c, the number of stored solver states, a positive int; default None: equinox's
        choice, the smallest c with (c+1)(c+2)/2 > max_steps (361 for max_steps = 65536), for which no
        step is recomputed more than about once.

    **Returns:**

    The ``diffrax.RecursiveCheckpointAdjoint``.

    **Raises:**

    - `ValueError`: ``checkpoints`` is neither None nor a positive int.
    """
    if checkpoints is not None and (
        isinstance(checkpoints, bool) or not isinstance(checkpoints, (int, np.integer)) or checkpoints < 1
    ):
        raise ValueError(f"checkpoints must be a positive int or None, got {checkpoints!r}")
    return diffrax.RecursiveCheckpointAdjoint(checkpoints=None if checkpoints is None else int(checkpoints))


_BACKSOLVE_MESSAGE = (
    "BacksolveAdjoint refused: it solves the state backwards in time, and self-attention dynamics "
    "contract forwards (tokens cluster), so the backward solve is exponentially unstable and the "
    "gradient is wrong beyond the initial transient (measured: 158x off at n = 32, beta = 9, T = 10). "
    "(It also cannot differentiate the field parameters that simulate closes over.) Use the default "
    "recursive checkpointing: checkpoints=... trades memory for time."
)


def _resolve_adjoint(adjoint, checkpoints):
    if adjoint is None:
        return checkpointed_adjoint(checkpoints)
    if checkpoints is not None:
        raise ValueError("pass either adjoint=... or checkpoints=..., not both")
    if not isinstance(adjoint, diffrax.AbstractAdjoint):
        raise TypeError(f"adjoint must be a diffrax adjoint, got {type(adjoint).__name__}")
    if isinstance(adjoint, diffrax.BacksolveAdjoint):
        raise ValueError(_BACKSOLVE_MESSAGE)
    return adjoint


def check_real_scalar(value: Any, what: str) -> None:
    """Check that ``value`` is a real floating-point scalar (what a gradient needs).

    **Arguments:**

    - `value`: what the observable or loss returned.
    - `what`: its name in the message (e.g. ``"the observable"``).

    **Raises:**

    - `TypeError`: ``value`` has no shape (), or a non-floating dtype (an int, a complex number).
    """
    if not (hasattr(value, "shape") and value.shape == ()) or not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(
            f"{what} must return a real scalar (shape ()), got "
            f"{getattr(value, 'dtype', type(value).__name__)} of shape {getattr(value, 'shape', None)}"
        )


class Gradients(eqx.Module):
    """Gradient of an observable of a [`jaxattn.Trajectory`][jaxattn.Trajectory] (what
    [`value_and_grad_of`][jaxattn.value_and_grad_of] returns).

    **Attributes:**

    - `field`: a pytree shaped like the field whose array leaves are d obs / d leaf
        (``grads.field.beta``, ``.Q``, ``.K``, ``.V``; None where the field had None).
    - `x0`: d obs / d x0, the shape of x0, projected onto the tangent space of the field's manifold
        ([`jaxattn.manifolds.AbstractManifold.project`][jaxattn.manifolds.AbstractManifold.project]): on the
        sphere the Riemannian gradient P_{x_i} (d obs / d x_i(0)), on Gram matrices its symmetric part
        with zero diagonal; so obs(retract(x0 + h v)) = obs(x0) + h ⟨x0 gradient, v⟩ + O(h^2) for
        tangent v.
    - `t1`: d obs / d t1, a scalar (the saved times move with t1 when ``ts`` is an int or None).
    """

    field: PyTree[Array | None]
    x0: Float[Array, "*batch n d"] | Float[Array, "*batch n"]
    t1: Float[Array, ""]


@eqx.filter_jit
def _particle_value_and_grad(observable, field_dyn, field_static, x0, t1, adjoint, kwargs):
    def objective(args):
        f_dyn, x, t = args
        traj = simulate(eqx.combine(f_dyn, field_static), x, t, adjoint=adjoint, **kwargs)
        value = observable(traj)
        check_real_scalar(value, "the observable")
        return value

    return jax.value_and_grad(objective)((field_dyn, x0, t1))


def value_and_grad_of(
    observable: Callable[[Trajectory], Float[Array, ""]],
    field: AbstractField,
    x0: ArrayLike,
    t1: float | ArrayLike,
    *,
    checkpoints: int | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    **simulate_kwargs,
) -> tuple[Float[Array, ""], Gradients]:
    r"""The value of ``observable(simulate(field, x0, t1, ...))`` and its gradients w.r.t. the field's
    arrays, x0 and t1.

    One reverse pass gives every gradient (the cost is the same for one or all of them). The whole
    thing is jit-compiled once per observable/field structure; new parameter values reuse it. The
    gradient is the exact derivative of the computed solution (discretise-then-optimise, module
    docstring).

    ```python
    value, g = value_and_grad_of(lambda tr: mean_inner_product(tr.final),
                                 jaxattn.SelfAttention(4.0), x0, 5.0, rtol=1e-8, atol=1e-8)
    g.field.beta, g.x0, g.t1
    ```

    **Arguments:**

    - `observable`: ``Trajectory -> real scalar`` (a float array of shape ()), differentiable, e.g.
        ``lambda tr: jaxattn.analysis.mean_inner_product(tr.final)``.
    - `field`: the [`AbstractField`][jaxattn.AbstractField], as for [`jaxattn.simulate`][jaxattn.simulate];
        its inexact array leaves are differentiated (cast to x0's dtype).
    - `x0`: a single configuration or an ensemble, real floating point, on the field's manifold, as for
        [`jaxattn.simulate`][jaxattn.simulate].
    - `t1`: the final time, a finite scalar > t0 (``simulate_kwargs["t0"]``, default 0).
    - `checkpoints`: the memory/time knob of the recursive-checkpoint adjoint
        ([`checkpointed_adjoint`][jaxattn.checkpointed_adjoint]); a positive int or None (default:
        equinox's choice). Not together with ``adjoint``.
    - `adjoint`: any other diffrax adjoint (``DirectAdjoint`` for forward+reverse mode: ``jax.jacfwd``
        through [`jaxattn.simulate`][jaxattn.simulate] works with it or ``diffrax.ForwardMode()``,
        ``docs/gradients.md``); default None: recursive checkpointing. ``BacksolveAdjoint`` is refused
        (module docstring).
    - `simulate_kwargs`: passed to [`jaxattn.simulate`][jaxattn.simulate] (``ts``, ``rtol``, ``atol``,
        ``t0``, ...); not ``adjoint``.

    **Returns:**

    ``(value, gradients)``: the observable's value (a float scalar array) and
    [`Gradients`][jaxattn.grad.Gradients] (``.field``, ``.x0`` tangent to the manifold, ``.t1``).

    **Raises:**

    - `TypeError`: ``observable`` is not callable or returns no real scalar; ``field`` is not an
        ``AbstractField``; ``adjoint`` is passed in ``simulate_kwargs`` or is not a diffrax adjoint;
        ``x0`` is not real floating point.
    - `ValueError`: ``x0`` is non-finite or off the manifold; ``t1`` is not a finite scalar > t0;
        ``checkpoints`` is invalid or given with ``adjoint``; ``adjoint`` is a ``BacksolveAdjoint``;
        and every error of [`jaxattn.simulate`][jaxattn.simulate].
    """
    if not callable(observable):
        raise TypeError(f"observable must be a callable Trajectory -> scalar, got {type(observable).__name__}")
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    if "adjoint" in simulate_kwargs:
        raise TypeError("pass the adjoint as value_and_grad_of(..., adjoint=...)")
    adjoint = _resolve_adjoint(adjoint, checkpoints)
    x0 = jnp.asarray(x0)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise TypeError(f"x0 must be real floating point, got dtype {x0.dtype}")
    check_initial_tokens(field, x0)
    t0 = float(simulate_kwargs.get("t0", 0.0))
    t1n = np.asarray(t1, dtype=float)
    if t1n.ndim != 0 or not np.isfinite(t1n) or not float(t1n) > t0:
        raise ValueError(f"t1 must be a finite scalar > t0 = {t0}, got {t1!r}")
    # cast parameters to the precision of x0 (as simulate does) so t1 and beta are traced arrays
    field = jax.tree_util.tree_map(
        lambda a: a.astype(x0.dtype) if eqx.is_inexact_array(a) else a, field
    )
    field_dyn, field_static = eqx.partition(field, eqx.is_inexact_array)
    value, (g_field, g_x0, g_t1) = _particle_value_and_grad(
        observable, field_dyn, field_static, x0, jnp.asarray(t1, dtype=x0.dtype), adjoint, simulate_kwargs
    )
    g_x0 = field.manifold.project(x0, g_x0)  # the Riemannian gradient on a constrained manifold
    return value, Gradients(field=g_field, x0=g_x0, t1=g_t1)


class FitResult(eqx.Module):
    """Result of [`fit`][jaxattn.fit].

    **Attributes:**

    - `params`: the final parameters (the pytree structure of the initial ones).
    - `losses`: float (steps + 1,): the loss *before* each update, then the final loss.
    - `history`: the parameters before each update, then the final parameters: the pytree with each
        leaf stacked along a new leading axis of length steps + 1.
    """

    params: PyTree[Array]
    losses: Float[Array, " steps1"]
    history: PyTree[Array]


def fit(
    loss: Callable[[Any], Float[Array, ""]],
    params: PyTree[ArrayLike],
    *,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 100,
) -> FitResult:
    """Minimise ``loss(params)`` with optax for ``steps`` updates.

    params_{k+1} = params_k + optimizer.update(grad loss(params_k), state_k); the update step is
    jit-compiled once.

    **Arguments:**

    - `loss`: ``params -> real scalar``, differentiable (e.g. an observable of a
        [`jaxattn.simulate`][jaxattn.simulate] solve built from the parameters).
    - `params`: the initial parameters, any pytree of float arrays (converted with ``jnp.asarray``).
    - `optimizer`: an ``optax.GradientTransformation``; default None: ``optax.adam(0.05)``.
    - `steps`: the number of updates, a positive int; default 100.

    **Returns:**

    A [`FitResult`][jaxattn.grad.FitResult] (final ``params``, ``losses``, ``history``).

    **Raises:**

    - `TypeError`: ``loss`` is not callable.
    - `ValueError`: ``steps`` is not a positive int.
    - `FloatingPointError`: the loss or its gradient is not finite at some step (the message names
        the step; no silent NaN).
    """
    if not callable(loss):
        raise TypeError("loss must be a callable params -> scalar")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    params = jax.tree_util.tree_map(jnp.asarray, params)
    opt_state = optimizer.init(params)

    @eqx.filter_jit
    def step(p, s):
        value, g = jax.value_and_grad(loss)(p)
        updates, s = optimizer.update(g, s, p)
        finite = jnp.isfinite(value) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(g)])
        )
        return optax.apply_updates(p, updates), s, value, finite

    losses, history = [], []
    for i in range(steps):
        history.append(params)
        params, opt_state, value, finite = step(params, opt_state)
        if not bool(finite):
            raise FloatingPointError(
                f"fit: loss or gradient is not finite at step {i} (loss = {float(value)}); lower the "
                "learning rate, tighten the solver tolerances, or reparameterise"
            )
        losses.append(value)
    history.append(params)
    losses.append(loss(params))
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *history)
    return FitResult(params=params, losses=jnp.stack(losses), history=stacked)
