r"""Manifolds: where one configuration of a particle field lives, as objects.

Every field declares its manifold (``field.manifold``, a class-level instance: ``SelfAttention.manifold
is SPHERE``), and everything that depends on the space rather than on the dynamics asks the manifold:
the solver ([`jaxattn.simulate`][jaxattn.simulate]) for the shape of one configuration and the ensemble axes, the
initial-condition checks, the retraction after each step; [`jaxattn.grad`][jaxattn.grad] for the tangent
projection of a gradient with respect to x0; saving ([`jaxattn.Trajectory.to_xarray`][jaxattn.solve.Trajectory.to_xarray]) for the
variable name and its dimensions. No code outside this module compares manifold names.

The interface ([`AbstractManifold`][jaxattn.manifolds.AbstractManifold]); a new space is one new final class:

* ``name`` (class variable): a short printable name, written into saved files (``"sphere"``);
* ``event_ndim`` (class variable): the number of trailing axes of one configuration; an array with
  more axes is an ensemble, its leading axes are the members (one leading axis in ``simulate``);
* ``variable``, ``event_dims`` (class variables): the netCDF variable of a saved trajectory and the
  names of the configuration's axes (``"x"``, ``("token", "dim")``);
* [`check_shape`][jaxattn.manifolds.AbstractManifold.check_shape]: ``ValueError`` unless a shape is one configuration;
* [`token_dim`][jaxattn.manifolds.AbstractManifold.token_dim]: the token dimension d a configuration of that shape has (what a
  field's Q/K/V must act on), or None where the configuration has none (angles, Gram matrices);
* [`constraint_checks`][jaxattn.manifolds.AbstractManifold.constraint_checks]: the rules a configuration must satisfy to lie on the
  manifold (to [`SPHERE_TOLERANCE`][jaxattn.fields.SPHERE_TOLERANCE]), as `jaxattn._validate.Check` pairs that hold on the
  host and under ``jax.jit`` alike; [`configuration_checks`][jaxattn.manifolds.AbstractManifold.configuration_checks] adds finiteness;
* [`project`][jaxattn.manifolds.AbstractManifold.project]: the orthogonal projection of an ambient vector onto the tangent
  space at x (the Riemannian gradient of a function of x is the projection of its Euclidean gradient);
* [`retract`][jaxattn.manifolds.AbstractManifold.retract]: a retraction, the map back onto the manifold applied after every
  solver step (identity where ``constrained`` is False, and then no retraction wrapper is added);
* [`difference`][jaxattn.manifolds.AbstractManifold.difference] (concrete; ``period`` for periodic coordinates): x - y in the configuration's coordinates (wrapped on the circle),
  in which the cluster collapse ([`jaxattn.solvers`][jaxattn.solvers]) measures distances and takes means.

**Product states** (e.g. a direction on the sphere with a positive radius per token) are packed into
one array along the last axis, so that ensembles, padding, saving and checks keep working unchanged:
a manifold of states (n, d + 1) with columns [u_i, r_i] has ``event_ndim = 2``, ``token_dim(shape) =
shape[1] - 1``, constraint checks |u_i| = 1 and r_i > 0, a projection that projects the u-part with
[`tangent_projection`][jaxattn.manifolds.tangent_projection] and keeps the r-part, and a retraction that normalises u_i and keeps r_i:
[`DirectionRadius`][jaxattn.manifolds.DirectionRadius], the space of the normalisation schemes (`jaxattn.fields.normalised`).

Concrete manifolds: [`Sphere`][jaxattn.manifolds.Sphere] (tokens on S^{d-1}, (n, d)), [`Circle`][jaxattn.manifolds.Circle] (angles on S^1, (n,)),
[`Euclidean`][jaxattn.manifolds.Euclidean] (tokens in R^d, (n, d)), [`Gram`][jaxattn.manifolds.Gram] (Gram matrices G = X X^T of n unit tokens,
(n, n): symmetric, positive semidefinite, unit diagonal), [`GaussianMoments`][jaxattn.manifolds.GaussianMoments] (the mean and covariance
of a Gaussian, (d + 1, d)), [`DirectionRadius`][jaxattn.manifolds.DirectionRadius] (tokens x_i = r_i u_i
as a direction on S^{d-1} and a radius r_i > 0, (n, d + 1)); module-level instances `SPHERE`,
`CIRCLE`, `EUCLIDEAN`, `GRAM`, `GAUSSIAN`, `DIRECTION_RADIUS`, and [`as_manifold`][jaxattn.manifolds.as_manifold]
for their names.
"""


import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._validate import Check, xp

#: how far a configuration may be from its manifold (| |x_i| - 1 |, |G_ij - G_ji|, |G_ii - 1|) before
#: an initial condition is rejected
SPHERE_TOLERANCE = 1e-6


def tangent_projection(x: Float[Array, "*batch n d"], y: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
    """P_x y = y - ⟨x, y⟩ x / |x|^2, row by row (Karagodin et al. 2024 §1.1).

    The division by |x|^2 (rather than the unit-sphere shortcut y - ⟨x, y⟩ x) makes
    d|x|^2/dt = 0 exactly off the sphere too; the shortcut makes the sphere transversally
    unstable when ⟨x, y⟩ < 0, e.g. for V = -I (docs/paper_003.md, "Long horizons and precision").

    **Arguments:**

    - `x`: the base points, float ``(*batch, n, d)``, rows nonzero (|x_i| = 1 on the sphere; a zero row
        gives NaN).
    - `y`: the ambient vectors to project, float ``(*batch, n, d)``, the shape of ``x``.

    **Returns:**

    P_x y, float ``(*batch, n, d)``: each row of ``y`` minus its component along the row of ``x``.
    """
    coef = jnp.sum(x * y, axis=-1, keepdims=True) / jnp.sum(x * x, axis=-1, keepdims=True)
    return y - coef * x


def retract_to_sphere(x: Float[Array, "*batch d"]) -> Float[Array, "*batch d"]:
    """The retraction onto the unit sphere: x -> x / |x| along the last axis.

    **Arguments:**

    - `x`: float ``(*batch, d)``, rows nonzero (a zero row gives NaN).

    **Returns:**

    x / |x|, float ``(*batch, d)``, every row of unit norm.
    """
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def retract_to_unit_diagonal(g: Float[Array, "*batch n n"]) -> Float[Array, "*batch n n"]:
    """The retraction onto Gram matrices of unit tokens: G -> D^{-1/2} G D^{-1/2} with D = diag(G).

    Per trailing (n, n) matrix: the Gram matrix of the normalised tokens x_i / |x_i| (the outer
    product r_i r_j, r_i = G_ii^{-1/2}, is formed first, so a symmetric G stays exactly symmetric).

    **Arguments:**

    - `g`: float ``(*batch, n, n)``, diagonal > 0 (a zero diagonal entry gives NaN/inf).

    **Returns:**

    D^{-1/2} G D^{-1/2}, float ``(*batch, n, n)``, with unit diagonal.
    """
    r = 1.0 / jnp.sqrt(jnp.diagonal(g, axis1=-2, axis2=-1))
    return g * (r[..., :, None] * r[..., None, :])


class AbstractManifold(eqx.Module):
    """Where one configuration of a field lives (module docstring: the interface).

    Class variables of every concrete manifold: ``name`` (str, written into saved files),
    ``event_ndim`` (int, the trailing axes of one configuration), ``variable`` and ``event_dims`` (the
    netCDF variable of a saved trajectory and its axes' names), ``constrained`` (bool: whether solves
    retract after each step).
    """

    name: eqx.AbstractClassVar[str]
    event_ndim: eqx.AbstractClassVar[int]
    variable: eqx.AbstractClassVar[str]
    event_dims: eqx.AbstractClassVar[tuple[str, ...]]
    constrained: eqx.AbstractClassVar[bool]
    #: the period of the coordinates (2 pi for angles), or None: see [`difference`][jaxattn.manifolds.AbstractManifold.difference]
    period: ClassVar[float | None] = None

    @abc.abstractmethod
    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Check that ``shape`` is the shape of one configuration.

        **Arguments:**

        - `shape`: the shape of one configuration (no ensemble axis), a tuple of ints.

        **Raises:**

        - `ValueError`: ``shape`` is not one configuration (wrong rank, no token, d < 2 on the
            sphere, not square for a Gram matrix); the message names the expected shape.
        """

    @abc.abstractmethod
    def token_dim(self, shape: tuple[int, ...]) -> int | None:
        """The token dimension d of a configuration of this shape (what a field's Q/K/V must act on).

        **Arguments:**

        - `shape`: the shape of one configuration, already checked by ``check_shape``.

        **Returns:**

        d (int), or None where a configuration has no token dimension (angles, Gram matrices).
        """

    @abc.abstractmethod
    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        """The rules ``x`` must satisfy to lie on the manifold, to [`SPHERE_TOLERANCE`][jaxattn.fields.SPHERE_TOLERANCE].

        **Arguments:**

        - `x`: one configuration or any leading (ensemble) axes of them; a NumPy array on the host or
            a traced JAX array.
        - `what`: the name used in the messages; default ``"x0"``.

        **Returns:**

        A list of `jaxattn._validate.Check` pairs (empty for an unconstrained manifold), raised on the
        host or attached with ``equinox.error_if`` by `jaxattn._validate.enforce`.
        """

    @abc.abstractmethod
    def project(self, x: Array, v: Array) -> Array:
        """The orthogonal projection of the ambient vector ``v`` onto the tangent space at ``x``
        (the Riemannian gradient of a function of x is the projection of its Euclidean gradient).

        **Arguments:**

        - `x`: a configuration (or any leading axes of them) on the manifold.
        - `v`: an ambient vector of the same shape.

        **Returns:**

        The projected vector, the shape of ``v``.
        """

    @abc.abstractmethod
    def retract(self, x: Array) -> Array:
        """A retraction: a point near the manifold mapped onto it (the identity where ``constrained`` is
        False). Applied after every solver step.

        **Arguments:**

        - `x`: a configuration (or any leading axes of them) near the manifold.

        **Returns:**

        The retracted configuration, the shape of ``x``.
        """

    def difference(self, x: Array, y: Array) -> Array:
        """x - y in the coordinates of the configurations (elementwise, any leading axes), wrapped to
        [-period/2, period/2) where the coordinates are periodic (``period``: 2 pi for angles on the
        circle), so that y + difference(x, y) is x up to a period: means and distances of nearby
        configurations are taken in these differences (the cluster collapse of `jaxattn.solvers`).

        **Arguments:**

        - `x`: configurations of this manifold (any leading axes).
        - `y`: configurations of the same shape (or broadcastable).

        **Returns:**

        x - y, wrapped to [-period/2, period/2) on periodic coordinates.
        """
        if self.period is None:
            return x - y
        return jnp.mod(x - y + self.period / 2, self.period) - self.period / 2

    def configuration_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        """The rules of an initial condition: finite entries, then
        [`constraint_checks`][jaxattn.manifolds.AbstractManifold.constraint_checks].

        **Arguments:**

        - `x`: one configuration or an ensemble of them (host NumPy array or traced JAX array).
        - `what`: the name used in the messages; default ``"x0"``.

        **Returns:**

        A list of `jaxattn._validate.Check` pairs, finiteness first.
        """
        m = xp(x)
        finite = Check(~m.all(m.isfinite(x)), f"{what} contains NaN or inf; pass finite initial tokens")
        return [finite, *self.constraint_checks(x, what)]

    def batch_shape(self, x: ArrayLike) -> tuple[int, ...]:
        """The leading (ensemble) axes of ``x``.

        **Arguments:**

        - `x`: an array with at least ``event_ndim`` axes.

        **Returns:**

        Its shape without the last ``event_ndim`` axes (a tuple of ints; () for one configuration).
        """
        return tuple(x.shape[: x.ndim - self.event_ndim])

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # the name comparisons of earlier versions would now be silently False
            raise TypeError(f"a manifold is an object now: compare with isinstance(field.manifold, "
                            f"jaxattn.manifolds.{type(self).__name__}) or use its methods, not the name {other!r}")
        return type(self) is type(other) and dataclasses.astuple(self) == dataclasses.astuple(other)

    __hash__ = eqx.Module.__hash__


def _n_tokens(shape: tuple[int, ...]) -> None:
    if shape[0] < 1:
        raise ValueError("need at least one token (n >= 1)")


def _tokens_shape(shape: tuple[int, ...]) -> None:
    if len(shape) != 2:
        raise ValueError(f"a configuration is an (n, d) array of n tokens in R^d; got shape {shape}")
    _n_tokens(shape)


class Sphere(AbstractManifold):
    """n tokens on the unit sphere S^{d-1}: configurations (n, d) with |x_i| = 1 (d >= 2); tangent
    projection P_x v = v - ⟨x, v⟩ x / |x|^2 per token, retraction x_i -> x_i / |x_i|."""

    name: ClassVar[str] = "sphere"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "x"
    event_dims: ClassVar[tuple[str, ...]] = ("token", "dim")
    constrained: ClassVar[bool] = True

    def check_shape(self, shape: tuple[int, ...]) -> None:
        _tokens_shape(shape)
        if shape[1] < 2:
            raise ValueError(f"the sphere S^(d-1) needs d >= 2, got d = {shape[1]}")

    def token_dim(self, shape: tuple[int, ...]) -> int:
        return shape[1]

    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        m = xp(x)
        drift = m.max(m.abs(m.linalg.norm(x, axis=-1) - 1.0))
        return [Check(drift > SPHERE_TOLERANCE,
                      f"{what} is off the unit sphere (max | |x_i| - 1 | > {SPHERE_TOLERANCE}){{got}}. "
                      f"Normalise it first with jaxattn.initial.project_to_sphere({what}).",
                      lambda: f"max | |x_i| - 1 | = {float(drift):.3g}")]

    def project(self, x: Array, v: Array) -> Array:
        return tangent_projection(x, v)

    def retract(self, x: Array) -> Array:
        return retract_to_sphere(x)


class AbstractFlatManifold(AbstractManifold):
    """A space without constraint: no configuration rule but finiteness, the identity as tangent
    projection and as retraction (``constrained`` is False, so solves add no retraction wrapper)."""

    constrained: ClassVar[bool] = False

    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        return []

    def project(self, x: Array, v: Array) -> Array:
        return v

    def retract(self, x: Array) -> Array:
        return x


class Circle(AbstractFlatManifold):
    """n angles theta_i on S^1 (x_i = (cos theta_i, sin theta_i)): configurations (n,), unconstrained."""

    name: ClassVar[str] = "circle"
    event_ndim: ClassVar[int] = 1
    variable: ClassVar[str] = "theta"
    period: ClassVar[float] = 2 * np.pi
    event_dims: ClassVar[tuple[str, ...]] = ("token",)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 1:
            raise ValueError(f"a circle configuration is an (n,) array of angles; got shape {shape}")
        _n_tokens(shape)

    def token_dim(self, shape: tuple[int, ...]) -> None:
        return None


class Euclidean(AbstractFlatManifold):
    """n tokens in R^d: configurations (n, d), unconstrained."""

    name: ClassVar[str] = "euclidean"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "x"
    event_dims: ClassVar[tuple[str, ...]] = ("token", "dim")

    def check_shape(self, shape: tuple[int, ...]) -> None:
        _tokens_shape(shape)

    def token_dim(self, shape: tuple[int, ...]) -> int:
        return shape[1]


class Gram(AbstractManifold):
    """Gram matrices G_ij = ⟨x_i, x_j⟩ of n unit tokens: (n, n) symmetric positive semidefinite matrices with
    diag(G) = 1 (the correlation matrices). Tangent vectors are the symmetric matrices with zero diagonal
    (projection: the symmetric part, diagonal zeroed); retraction G -> D^{-1/2} G D^{-1/2}, D = diag(G)
    ([`retract_to_unit_diagonal`][jaxattn.manifolds.retract_to_unit_diagonal], the image of x_i -> x_i / |x_i|). The smallest eigenvalue may be
    negative by round-off only: down to -[`SPHERE_TOLERANCE`][jaxattn.fields.SPHERE_TOLERANCE] x n (|G| <= n)."""

    name: ClassVar[str] = "gram"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "x"
    event_dims: ClassVar[tuple[str, ...]] = ("token", "dim")
    constrained: ClassVar[bool] = True

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"a Gram configuration is one square (n, n) matrix G = X X^T; got shape {shape}")
        _n_tokens(shape)

    def token_dim(self, shape: tuple[int, ...]) -> None:
        return None

    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        m = xp(x)
        asym = m.max(m.abs(x - m.swapaxes(x, -1, -2)))
        diag = m.max(m.abs(m.diagonal(x, axis1=-2, axis2=-1) - 1.0))
        fix = (f"Pass G0 = X0 X0^T of tokens on the sphere (jaxattn.analysis.pairwise_inner_products({what}))")
        gram = Check((asym > SPHERE_TOLERANCE) | (diag > SPHERE_TOLERANCE),
                     f"{what} is not a Gram matrix of unit tokens: it must be symmetric with unit diagonal "
                     f"(tolerance {SPHERE_TOLERANCE}){{got}}. {fix}.",
                     lambda: f"max |G - G^T| = {float(asym):.3g}, max |G_ii - 1| = {float(diag):.3g}")
        n = x.shape[-1]
        # symmetrised, so that eigvalsh reads both triangles (an asymmetric input fails the check above)
        lowest = m.min(m.linalg.eigvalsh(0.5 * (x + m.swapaxes(x, -1, -2))))
        psd = Check(lowest < -SPHERE_TOLERANCE * n,
                    f"{what} is not a Gram matrix of unit tokens: it must be positive semidefinite (a Gram "
                    f"matrix X X^T has no negative eigenvalue; tolerance {SPHERE_TOLERANCE} x n){{got}}. {fix}.",
                    lambda: f"smallest eigenvalue {float(lowest):.3g}")
        return [gram, psd]

    def project(self, x: Array, v: Array) -> Array:
        sym = 0.5 * (v + jnp.swapaxes(v, -1, -2))
        return sym * (1 - jnp.eye(v.shape[-1], dtype=v.dtype))

    def retract(self, x: Array) -> Array:
        return retract_to_unit_diagonal(x)


def _symmetrise_covariance(x: Array) -> Array:
    """The covariance block (all rows but the last) replaced by its symmetric part, the mean row kept."""
    cov = x[..., :-1, :]
    return jnp.concatenate([0.5 * (cov + jnp.swapaxes(cov, -1, -2)), x[..., -1:, :]], axis=-2)


class GaussianMoments(AbstractManifold):
    """The moments (m, Sigma) of a Gaussian N(m, Sigma) on R^d packed as one (d + 1, d) array: rows 0..d-1 the
    covariance (symmetric positive semidefinite), row d the mean (``jaxattn.fields.gaussian_state``). The state of
    [`jaxattn.fields.GaussianAttention`][jaxattn.fields.GaussianAttention]. Tangent vectors: a symmetric covariance block and any mean
    (projection: the symmetric part); unconstrained in the solver, since that field keeps Sigma exactly
    symmetric and the flow keeps it positive semidefinite up to blow-up."""

    name: ClassVar[str] = "gaussian"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "moments"
    event_dims: ClassVar[tuple[str, ...]] = ("row", "dim")
    constrained: ClassVar[bool] = False

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or shape[0] != shape[1] + 1 or shape[1] < 1:
            raise ValueError(f"a Gaussian state is one (d + 1, d) array: the covariance (d, d), then the mean as the "
                             f"last row (jaxattn.fields.gaussian_state(m, Sigma)); got shape {shape}")

    def token_dim(self, shape: tuple[int, ...]) -> int:
        return shape[1]

    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        m = xp(x)
        cov = x[..., :-1, :]
        scale = m.maximum(1.0, m.max(m.abs(cov)))
        asym = m.max(m.abs(cov - m.swapaxes(cov, -1, -2))) / scale
        sym = Check(asym > SPHERE_TOLERANCE, f"the covariance block of {what} must be symmetric (relative "
                    f"tolerance {SPHERE_TOLERANCE}){{got}}; build the state with jaxattn.fields.gaussian_state(m, Sigma)",
                    lambda: f"max |Sigma - Sigma^T| / max |Sigma| = {float(asym):.3g}")
        lowest = m.min(m.linalg.eigvalsh(0.5 * (cov + m.swapaxes(cov, -1, -2)))) / scale
        psd = Check(lowest < -SPHERE_TOLERANCE, f"the covariance block of {what} must be positive semidefinite{{got}}",
                    lambda: f"smallest eigenvalue / max |Sigma| = {float(lowest):.3g}")
        return [sym, psd]

    def project(self, x: Array, v: Array) -> Array:
        return _symmetrise_covariance(v)

    def retract(self, x: Array) -> Array:
        return _symmetrise_covariance(x)
class DirectionRadius(AbstractManifold):
    """Tokens x_i = r_i u_i as a direction u_i on S^{d-1} and a radius r_i > 0: configurations (n, d + 1) with
    columns [u_i, r_i] (d >= 2). Tangent projection: P_{u_i} on the direction part, the radius part kept;
    retraction u_i -> u_i / |u_i|, r_i kept (the product of the sphere's and the identity)."""

    name: ClassVar[str] = "direction-radius"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "x"
    event_dims: ClassVar[tuple[str, ...]] = ("token", "dim")
    constrained: ClassVar[bool] = True

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or shape[1] < 3:
            raise ValueError(f"a direction-radius configuration is (n, d + 1) = [u_i, r_i] with d >= 2 (directions "
                             f"on S^(d-1), radii in the last column); got shape {shape}. Build one from tokens "
                             "x_i in R^d with jaxattn.fields.polar(x)")
        _n_tokens(shape)

    def token_dim(self, shape: tuple[int, ...]) -> int:
        return shape[1] - 1

    def constraint_checks(self, x: ArrayLike, what: str = "x0") -> list[Check]:
        m = xp(x)
        r = x[..., -1]
        radius = Check(~m.all(r > 0), f"{what}: every radius r_i (the last column) must be > 0{{got}}; build the "
                       f"state from nonzero tokens x_i in R^d with jaxattn.fields.polar(x)",
                       lambda: f"min r_i = {float(np.min(r)):.3g}")
        return [*SPHERE.constraint_checks(x[..., :-1], what), radius]

    def project(self, x: Array, v: Array) -> Array:
        return jnp.concatenate([tangent_projection(x[..., :-1], v[..., :-1]), v[..., -1:]], axis=-1)

    def retract(self, x: Array) -> Array:
        return jnp.concatenate([retract_to_sphere(x[..., :-1]), x[..., -1:]], axis=-1)


SPHERE = Sphere()
CIRCLE = Circle()
EUCLIDEAN = Euclidean()
GRAM = Gram()
GAUSSIAN = GaussianMoments()
DIRECTION_RADIUS = DirectionRadius()

#: the built-in manifolds by name ([`as_manifold`][jaxattn.manifolds.as_manifold])
MANIFOLDS: dict[str, AbstractManifold] = {m.name: m for m in (SPHERE, CIRCLE, EUCLIDEAN, GRAM, GAUSSIAN,
                                                                    DIRECTION_RADIUS)}


def as_manifold(manifold: AbstractManifold | str) -> AbstractManifold:
    """A manifold object from an object or a name.

    **Arguments:**

    - `manifold`: an [`AbstractManifold`][jaxattn.manifolds.AbstractManifold] (returned as given) or the
        name of a built-in one: ``"sphere"``, ``"circle"``, ``"euclidean"``, ``"gram"``.

    **Returns:**

    The [`AbstractManifold`][jaxattn.manifolds.AbstractManifold].

    **Raises:**

    - `ValueError`: for anything else.
    """
    if isinstance(manifold, AbstractManifold):
        return manifold
    if isinstance(manifold, str) and manifold in MANIFOLDS:
        return MANIFOLDS[manifold]
    raise ValueError(f"manifold must be a jaxattn.manifolds.AbstractManifold or one of {sorted(MANIFOLDS)}, "
                     f"got {manifold!r}")
