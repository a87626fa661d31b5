r"""What the circle, zonal and S^2 solvers share: the model interface, one monitored solve, one trajectory.

Every solver discretises the mean-field continuity equation of self-attention (Bruno, Pasqualotto,
Agazzi 2025, eq. (2)),

    d_t rho + div( rho v[rho] ) = 0,   USA: v = sign grad(W * mu),   SA: v = sign grad(W * mu) / (beta W * mu),

in a spectral basis, as an ODE dy/dt = F(y) on a *real* state y (diffrax's complex support is poor).
An [`AbstractSpectralModel`][jaxattn.spectral.AbstractSpectralModel] is that right-hand side plus the two diagnostics that decide
whether K modes still resolve the solution: the spectral tail (largest relative coefficient over the
top eighth of the spectrum) and the minimum of the density on the model's grid (Gibbs undershoots).
[`solve_monitored`][jaxattn.spectral.solve_monitored] integrates with both monitors inside the solve (a `diffrax.Event`)
and returns a [`AbstractSpectralTrajectory`][jaxattn.spectral.AbstractSpectralTrajectory] holding only trustworthy saved times; see
``docs/spectral.md`` ("Resolution honesty").
"""

from __future__ import annotations

import abc
import warnings
from typing import Literal

import numpy as np
import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._validate import check_beta, check_model, check_nonneg_int, check_save_times, check_sign, enforce, time_rules
from ..solve import NonFiniteGuard, raise_failure

__all__ = ["AbstractSpectralModel", "AbstractSpectralTrajectory", "solve_monitored", "check_times", "check_mass", "prepare_models"]


class AbstractSpectralModel(eqx.Module):
    """Right-hand side ``model(t, y)`` of a spectral discretisation of the mean-field PDE on a real state y.

    Concrete models ([`CircleModel`][jaxattn.spectral.CircleModel], [`ZonalModel`][jaxattn.spectral.ZonalModel],
    [`SphereModel`][jaxattn.spectral.SphereModel]) carry ``beta``, ``model`` ("usa"/"sa"), ``sign`` (V = sign I),
    the dimension ``d`` of the ambient space (S^{d-1}) and the class constant ``uniform_density``
    (the uniform density in the model's units: 1/(2 pi) on S^1 w.r.t. d theta, 1 on S^{d-1} w.r.t. the
    normalised surface measure). They implement the right-hand side, the map from the real state to
    the model's coefficients, and three functions of the coefficients: tail, minimum density, energy.

    The kernel coefficients [`W`][jaxattn.spectral.AbstractSpectralModel.W] derive from beta: [`kernel`][jaxattn.spectral.AbstractSpectralModel.kernel] computes them from ``beta`` at
    every use, so ``jax.grad`` of a built model and ``eqx.tree_at`` on its beta see them. The solvers
    ([`solve_monitored`][jaxattn.spectral.solve_monitored], [`jaxattn.spectral.integrate_circle`][jaxattn.spectral.integrate_circle]) run on [`prepared`][jaxattn.spectral.AbstractSpectralModel.prepared] copies
    that compute them once per solve, inside the solve's trace (gradients still reach them).
    """

    beta: eqx.AbstractVar[Float[Array, ""]]
    model: eqx.AbstractVar[str]
    sign: eqx.AbstractVar[int]
    d: eqx.AbstractVar[int]
    kernel_cache: eqx.AbstractVar[Float[Array, " K1"] | None]  # None outside a solve (see prepared)
    uniform_density: eqx.AbstractClassVar[float]

    @abc.abstractmethod
    def kernel(self) -> Float[Array, " K1"]:
        """The kernel coefficients of this model's beta, computed now (never stored).

        **Returns:**

        The kernel's coefficients in the model's basis, float (K1,) (K1 = number of modes + 1).
        """

    @property
    def W(self) -> Float[Array, " K1"]:
        """The kernel coefficients: [`kernel`][jaxattn.spectral.AbstractSpectralModel.kernel], or the copy a solve's [`prepared`][jaxattn.spectral.AbstractSpectralModel.prepared] model holds."""
        return self.kernel() if self.kernel_cache is None else self.kernel_cache

    def prepared(self) -> AbstractSpectralModel:
        """This model with [`W`][jaxattn.spectral.AbstractSpectralModel.W] computed once from its beta, for one solve (itself if it is prepared already).

        The solvers call it inside their trace (so gradients in beta reach W); a prepared model whose beta is
        changed afterwards keeps the old W, so prepared models stay inside the solvers.

        **Returns:**

        A model of the same class whose ``kernel_cache`` holds [`kernel`][jaxattn.spectral.AbstractSpectralModel.kernel]`()`.
        """
        if self.kernel_cache is not None:
            return self
        return eqx.tree_at(lambda m: m.kernel_cache, self, self.kernel(), is_leaf=lambda x: x is None)

    @abc.abstractmethod
    def __call__(self, t, y: Float[Array, " n"], args=None) -> Float[Array, " n"]:
        """dy/dt of the real state y (the diffrax vector field of the spectral ODE).

        **Arguments:**

        - `t`: the time (unused: the PDE is autonomous).
        - `y`: the real state, float (n,).
        - `args`: unused (diffrax's argument slot); default None.

        **Returns:**

        dy/dt, float (n,).
        """

    @abc.abstractmethod
    def coefficients(self, y: Float[Array, "... n"]) -> Array:
        """The model's (possibly complex) coefficients of the real state y.

        **Arguments:**

        - `y`: real states, float (..., n).

        **Returns:**

        The coefficients in the model's basis (circle: complex moments mu_0..mu_K; zonal: Gegenbauer
        coefficients r_0..r_N; S^2: s2fft rho_lm), with the leading axes of ``y``.
        """

    @abc.abstractmethod
    def tail(self, c: Array) -> Float[Array, "..."]:
        """Largest coefficient over the top eighth of the spectrum, relative to the mass.

        **Arguments:**

        - `c`: coefficients as returned by [`coefficients`][jaxattn.spectral.AbstractSpectralModel.coefficients], (..., K1).

        **Returns:**

        The relative spectral tail, float (...).
        """

    @abc.abstractmethod
    def min_density(self, c: Array) -> Float[Array, "..."]:
        """Minimum of the density on the model's grid (in the model's density unit).

        **Arguments:**

        - `c`: coefficients as returned by [`coefficients`][jaxattn.spectral.AbstractSpectralModel.coefficients], (..., K1).

        **Returns:**

        The minimum density, float (...) (negative values are Gibbs undershoots).
        """

    @abc.abstractmethod
    def energy(self, c: Array) -> Float[Array, "..."]:
        r"""Interaction energy E[mu] = (1/2) \iint W(⟨x, y⟩) d mu d mu (paper 004 §2).

        **Arguments:**

        - `c`: coefficients as returned by [`coefficients`][jaxattn.spectral.AbstractSpectralModel.coefficients], (..., K1).

        **Returns:**

        The energy, float (...).
        """

    def unresolved(self, y: Float[Array, " n"], tail_tol: float, neg_tol: float) -> Array:
        """True when the spectral tail exceeds ``tail_tol`` or the density drops below -``neg_tol`` x uniform.

        **Arguments:**

        - `y`: the real state, float (n,).
        - `tail_tol`: the largest admissible [`tail`][jaxattn.spectral.AbstractSpectralModel.tail], float > 0.
        - `neg_tol`: the largest admissible undershoot of the density, as a fraction of the uniform density, float >= 0.

        **Returns:**

        A boolean scalar array.
        """
        c = self.coefficients(y)
        return (self.tail(c) > tail_tol) | (self.min_density(c) < -neg_tol * self.uniform_density)


class AbstractSpectralTrajectory(eqx.Module):
    r"""A spectral PDE solution at its resolved saved times.

    After a stop the unresolved saved times are dropped, so every returned value is trustworthy to
    the thresholds. [`DensityTrajectory`][jaxattn.spectral.DensityTrajectory], ``ZonalTrajectory`` and
    ``SphereTrajectory`` are the concrete classes: these fields with the density evaluation of their basis
    added (abstract: [`solve_monitored`][jaxattn.spectral.solve_monitored] is given the concrete class).

    **Attributes:**

    - `ts`: the resolved saved times, float (T,).
    - `coeffs`: the model's coefficients at ``ts``, (T, ...) (circle: complex moments mu_0..mu_K;
        zonal: Gegenbauer coefficients r_0..r_N; S^2: s2fft rho_lm).
    - `tail`: the relative spectral tail at ``ts``, float (T,).
    - `min_density`: the minimum density on the model's grid at ``ts`` (model's density unit), float (T,).
    - `energy`: the interaction energy at ``ts``, float (T,).
    - `resolved`: whether each saved time is resolved, bool (T,).
    - `t_lost`: the time resolution was lost, float (inf if never).
    - `beta`: the inverse temperature, float.
    - `model`: "usa" or "sa".
    - `sign`: +1 (attractive) or -1 (repulsive), V = sign I.
    - `d`: the dimension of the ambient space (the sphere is S^{d-1}).
    """

    ts: Float[Array, " T"]
    coeffs: Array
    tail: Float[Array, " T"]
    min_density: Float[Array, " T"]
    energy: Float[Array, " T"]
    resolved: Array
    t_lost: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)
    d: int = eqx.field(static=True)


def model_parameters(beta, name: str, size: int, minimum: int, model: str, sign: int):
    """Checked (beta as a float array, size, model, sign) of a spectral model; ``size`` (K, N or L) >= ``minimum``."""
    check_beta(beta, scalar=False)
    size = check_nonneg_int(name, size)
    if size < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {size}")
    return jnp.asarray(beta, dtype=jnp.result_type(float)), size, check_model(model), check_sign(sign)


def check_times(t1, ts, n_save: int) -> np.ndarray:
    """Save times: ``ts`` as given (strictly increasing, finite, >= 2 entries) or ``n_save`` uniform times in [0, t1]."""
    if ts is None:
        if t1 is None:
            raise ValueError("pass t1 (a finite time > 0) or the save times ts")
        enforce(time_rules(0.0, t1), None)
        ts = np.linspace(0.0, float(t1), n_save)
    return np.asarray(check_save_times(ts, strict=True, min_count=2))


def check_mass(c0: Array, mass: complex | Shaped[ArrayLike, ""], expected: float, what: str, shown: str = "1") -> None:
    """Raise ValueError for non-finite coefficients, or a mass coefficient ``what`` = ``mass`` != ``expected``
    (relative 1e-10; ``shown`` is how the message writes ``expected``)."""
    if not np.all(np.isfinite(np.asarray(c0))):
        raise ValueError("initial coefficients contain NaN or inf")
    if abs(complex(mass) / expected - 1) > 1e-10:
        raise ValueError(f"{what} = {complex(mass)} but a probability density needs {what} = {shown}: normalise it")


def prepare_models(tree):
    """``tree`` (a model, diffrax terms holding models' methods, ...) with every spectral model [`prepared`][jaxattn.spectral.AbstractSpectralModel.prepared]."""
    def prepare(node):
        return node.prepared() if isinstance(node, AbstractSpectralModel) else node

    return jax.tree_util.tree_map(prepare, tree, is_leaf=lambda node: isinstance(node, AbstractSpectralModel))


@eqx.filter_jit
def _run(model, terms, solver, y0, ts, rtol, atol, max_steps, tail_tol, neg_tol, stop):
    model, terms = prepare_models((model, terms))  # the kernel coefficients once per solve, from the traced beta

    def unresolved(t, y, args, **kwargs):
        return model.unresolved(y, tail_tol, neg_tol)

    solver = diffrax.Tsit5() if solver is None else solver
    # a non-finite state (a NaN filter, overflowing kernel coefficients) ends the solve at once
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(model) if terms is None else terms,
        NonFiniteGuard(solver, jnp.abs(ts[-1] - ts[0])),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        event=diffrax.Event(unresolved) if stop else None,
        throw=False,
    )
    return sol.ys[0], sol.event_mask, sol.ts[1], sol.result, sol.stats["num_steps"]


def solve_monitored(
    model: AbstractSpectralModel,
    y0: Float[Array, " n"],
    ts: np.ndarray,
    *,
    trajectory: type[AbstractSpectralTrajectory],
    label: str = "spectral PDE",
    terms: diffrax.AbstractTerm | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 200_000,
    tail_tol: float = 1e-8,
    neg_tol: float = 1e-8,
    on_unresolved: Literal["stop", "warn", "raise"] | str = "stop",  # checked below, with its own ValueError
) -> AbstractSpectralTrajectory:
    """Integrate ``model`` from the real state ``y0`` over the save times ``ts`` with the resolution monitors.

    Resolution is lost when the spectral tail exceeds ``tail_tol`` or the density drops below
    -``neg_tol`` x uniform (both checked inside the solve by a `diffrax.Event`); ``on_unresolved`` decides
    what follows.

    **Arguments:**

    - `model`: the [`AbstractSpectralModel`][jaxattn.spectral.AbstractSpectralModel] to integrate.
    - `y0`: the initial real state, float (n,).
    - `ts`: the save times, strictly increasing, >= 2 entries.
    - `trajectory`: the concrete [`AbstractSpectralTrajectory`][jaxattn.spectral.AbstractSpectralTrajectory] class to return.
    - `label`: the name used in warnings and errors; default "spectral PDE".
    - `terms`: a diffrax term; default ``ODETerm(model)``.
    - `solver`: a diffrax solver; default ``Tsit5()``.
    - `rtol`: relative tolerance of the PID controller; default 1e-10.
    - `atol`: absolute tolerance of the PID controller; default 1e-12.
    - `max_steps`: the step budget; default 200_000.
    - `tail_tol`: the largest admissible relative spectral tail; default 1e-8.
    - `neg_tol`: the largest admissible undershoot of the density, as a fraction of uniform; default 1e-8.
    - `on_unresolved`: "stop" (default: terminate at the event, warn with the time, keep only the
        resolved saved times), "warn" (integrate to the end, warn, flag ``resolved``) or "raise".

    **Returns:**

    A ``trajectory`` instance at the kept saved times.

    **Raises:**

    - `ValueError`: ``on_unresolved`` is not one of the three modes.
    - `RuntimeError`: the solve fails (step budget, non-finite state), or resolution is lost with
        ``on_unresolved="raise"``.
    """
    if on_unresolved not in ("stop", "warn", "raise"):
        raise ValueError(f"on_unresolved must be 'stop', 'warn' or 'raise', got {on_unresolved!r}")
    model = model.prepared()  # W once (it refuses a beta whose coefficients overflow), for the solve and diagnostics
    ys, event_mask, t_end, result, num_steps = _run(
        model, terms, solver, y0, jnp.asarray(ts), rtol, atol, max_steps, tail_tol, neg_tol, on_unresolved != "warn"
    )
    raise_failure(result, label=label, t0=float(ts[0]), t1=float(ts[-1]), t_reached=t_end[0], num_steps=num_steps,
                  max_steps=max_steps, dtype=ys.dtype, step_limit_advice="Increase max_steps or loosen rtol/atol.",
                  nonfinite_causes=f"Likely causes: kernel coefficients that overflow at beta = "
                                   f"{float(np.max(np.asarray(model.beta))):.6g} (lower beta), NaN/inf model "
                                   "parameters (e.g. spectral_filter), or non-finite initial coefficients.")
    ys = np.asarray(ys)
    finite = np.all(np.isfinite(ys), axis=-1)
    c = eqx.filter_vmap(model.coefficients)(jnp.asarray(np.where(finite[:, None], ys, 0.0)))
    tail = np.asarray(eqx.filter_vmap(model.tail)(c))
    mind = np.asarray(eqx.filter_vmap(model.min_density)(c))
    resolved = finite & (tail <= tail_tol) & (mind >= -neg_tol * model.uniform_density)
    t_lost = float("inf")
    keep = np.ones_like(resolved)
    if not np.all(resolved):
        i = int(np.argmin(resolved))
        t_lost = float(t_end[0]) if bool(event_mask) else float(ts[i])
        msg = (
            f"{label} lost resolution at t ~ {t_lost:.6g} (between saved times {ts[max(i - 1, 0)]:.6g} and "
            f"{ts[i]:.6g}): spectral tail > {tail_tol:g} or density < -{neg_tol:g} x uniform. "
            "Increase the number of modes or switch to particles."
        )
        if on_unresolved == "raise":
            raise RuntimeError(msg)
        if on_unresolved == "stop":
            keep = np.cumprod(resolved).astype(bool)
            msg += f" Returned only the {int(keep.sum())} resolved saved times."
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    coeffs = model.coefficients(jnp.asarray(ys[keep]))
    return trajectory(
        ts=jnp.asarray(ts[keep]),
        coeffs=coeffs,
        tail=jnp.asarray(tail[keep]),
        min_density=jnp.asarray(mind[keep]),
        energy=model.energy(coeffs),
        resolved=jnp.asarray(resolved[keep]),
        t_lost=t_lost,
        beta=float(model.beta),
        model=model.model,
        sign=model.sign,
        d=model.d,
    )
