"""Runners of ``jaxattn demo``, ``jaxattn simulate`` and ``jaxattn pde circle|sphere``.

The arguments are declared in :mod:`jaxattn.cli`; everything heavy is imported inside the runners.
"""

from __future__ import annotations

import time
from pathlib import Path


def demo_command(args) -> int:
    """(SA) on S^2 (paper 002 eq. (2.6)) from uniform tokens; prints clusters, steps, time; saves a PNG."""
    import jax

    from .analysis import count_clusters
    from .fields import SelfAttention
    from .initial import uniform_sphere
    from .plot import animate, plot_sphere_trajectories, pyplot
    from .solve import simulate

    x0 = uniform_sphere(jax.random.PRNGKey(args.seed), args.n, 3)
    field = SelfAttention(args.beta)
    start = time.perf_counter()
    cpu = time.process_time()
    traj = simulate(field, x0, args.t1)
    traj.xs.block_until_ready()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    clusters = int(count_clusters(traj.final, delta=1e-3))
    drift = float(abs(jax.numpy.linalg.norm(traj.xs, axis=-1) - 1).max())
    ax = plot_sphere_trajectories(
        traj, title=rf"SA on $S^2$: $n = {args.n}$, $\beta = {args.beta:g}$, seed {args.seed}, {clusters} clusters")
    ax.figure.savefig(args.output, dpi=120, bbox_inches="tight", pad_inches=0.02)
    pyplot().close(ax.figure)
    stats = traj.stats
    print(f"jaxattn demo: SA on S^2, n = {args.n}, beta = {args.beta:g}, t in [0, {args.t1:g}], seed {args.seed}")
    print(f"  clusters at t = {args.t1:g}: {clusters}  (<x_i, x_j> >= 1 - 1e-3 linked)")
    print(f"  solver: Tsit5 + PID (rtol = atol = 1e-6): {int(stats['num_steps'])} steps "
          f"({int(stats['num_rejected_steps'])} rejected)")
    print(f"  max | |x_i| - 1 | = {drift:.1e}")
    print(f"  time: {wall:.2f} s wall, {cpu:.2f} s CPU (including JIT compilation)")
    print(f"  figure: {args.output}")
    if args.animate:
        animate(traj, args.animate, title=rf"SA on $S^2$: $n = {args.n}$, $\beta = {args.beta:g}$")
        print(f"  animation: {args.animate}")
    return 0


# ---------------------------------------------------------------------------------------------
# jaxattn simulate


def _field(args, d: int):
    import jax.numpy as jnp

    from . import fields

    V = None if args.value is None else jnp.diag(jnp.asarray(args.value, dtype=float))
    if V is not None and len(args.value) != d:
        raise SystemExit(f"jaxattn simulate: --value needs d = {d} numbers, got {len(args.value)}")
    if args.model in ("circle", "kuramoto") and (V is not None):
        raise SystemExit(f"jaxattn simulate: --value does not apply to --model {args.model}")
    if args.causal and args.model not in ("sa", "usa", "circle"):
        raise SystemExit(f"jaxattn simulate: --causal applies to sa, usa and circle, not {args.model}")
    if args.model == "sa":
        return fields.SelfAttention(args.beta, V=V, causal=args.causal)
    if args.model == "usa":
        return fields.UnnormalisedSelfAttention(args.beta, V=V, causal=args.causal)
    if args.model == "circle":
        return fields.CircleSelfAttention(args.beta, causal=args.causal)
    if args.model == "kuramoto":
        return fields.Kuramoto(coupling=args.beta)
    eye = jnp.eye(d)
    cls = fields.EuclideanSelfAttention if args.model == "euclidean" else fields.RescaledSelfAttention
    return cls(eye, eye, eye if V is None else V, beta=args.beta)


def _initial(args, kind: str, d: int):
    import jax

    from . import initial

    key = jax.random.PRNGKey(args.seed)
    if kind == "sphere":
        return initial.uniform_sphere(key, args.n, d)
    if kind == "circle":
        return initial.uniform_circle(key, args.n)
    if kind == "cube":
        return initial.uniform_cube(key, args.n, d)
    return initial.orthogonal_frame(args.n, d)


def _save_trajectory(traj, path: Path, args, init: str) -> None:
    """netCDF (CF-style attributes) or .npz of the saved times and states."""
    import numpy as np

    ts, xs = np.asarray(traj.ts), np.asarray(traj.xs)
    meta = dict(model=args.model, init=init, n=args.n, beta=args.beta, causal=int(args.causal), seed=args.seed,
                rtol=args.rtol, atol=args.atol, num_steps=int(np.asarray(traj.stats["num_steps"])),
                command="jaxattn simulate")
    if args.value is not None:
        meta["value_diagonal"] = np.asarray(args.value, dtype=float)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez(path, t=ts, x=xs, **{k: np.asarray(v) for k, v in meta.items()})
        return
    import xarray as xr

    from .io import atomic_write_netcdf

    angles = xs.ndim == 2
    dims = ("t", "token") if angles else ("t", "token", "dim")
    x = xr.DataArray(xs, dims=dims, attrs=dict(
        long_name="token angle theta_i(t)" if angles else "token position x_i(t)",
        units="rad" if angles else "1"))
    coords = {"t": ("t", ts, {"long_name": "time (depth)", "units": "1"}), "token": np.arange(xs.shape[1])}
    ds = xr.Dataset({"theta" if angles else "x": x}, coords=coords, attrs=meta)
    atomic_write_netcdf(ds, path)


def simulate_command(args) -> int:
    """Integrate a model from a random initial condition; save the trajectory and a figure/animation."""
    import numpy as np

    from .plot import animate, plot_circle_trajectories, plot_sphere_trajectories, pyplot
    from .solve import simulate

    circle = args.model in ("circle", "kuramoto")
    init = args.init or ("circle" if circle else "cube" if args.model in ("euclidean", "rescaled") else "sphere")
    if circle != (init == "circle"):
        raise SystemExit(f"jaxattn simulate: --model {args.model} needs "
                         f"{'--init circle (angles)' if circle else 'points, not --init circle'}")
    d = 1 if circle else args.d
    field = _field(args, d)
    x0 = _initial(args, init, d)
    start = time.process_time()
    traj = simulate(field, x0, args.t1, ts=args.saves, rtol=args.rtol, atol=args.atol)
    cpu = time.process_time() - start
    xs = np.asarray(traj.xs)
    _save_trajectory(traj, args.out, args, init)
    figure = args.figure or args.out.with_suffix(".png")
    plt = pyplot()
    if circle:
        ax = plot_circle_trajectories(traj)
    elif d == 3:
        ax = plot_sphere_trajectories(traj) if init in ("sphere", "frame") else None
    else:
        ax = None
    if ax is None:  # R^d or S^{d-1} with d != 3: the first two coordinates
        _, ax = plt.subplots(figsize=(5, 5))
        ax.plot(xs[:, :, 0], xs[:, :, 1], lw=0.8)
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], color="crimson", s=20, zorder=3)
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    space = "$S^1$" if circle else f"$S^{{{d - 1}}}$" if init in ("sphere", "frame") else f"$\\mathbb{{R}}^{{{d}}}$"
    ax.set_title(rf"{type(field).__name__} on {space}: $n = {args.n}$, $\beta = {args.beta:g}$", fontsize=10)
    ax.figure.savefig(figure, dpi=110, bbox_inches="tight")
    print(f"jaxattn simulate: {type(field).__name__} (beta = {args.beta:g}) from {init}, n = {args.n}"
          f"{'' if circle else f', d = {d}'}, t in [0, {args.t1:g}]: {int(np.asarray(traj.stats['num_steps']))} "
          f"steps, {cpu:.2f} CPU-s (including compilation)")
    print(f"  trajectory: {args.out}  ({xs.shape[0]} saved times)")
    print(f"  figure: {figure}")
    if args.animate:
        if not circle and d > 3:
            print("  (animation of the first three coordinates)")
            traj = type("Projected", (), {"ts": traj.ts, "xs": xs[..., :3]})()
        animate(traj, args.animate)
        print(f"  animation: {args.animate}")
    return 0


# ---------------------------------------------------------------------------------------------
# jaxattn pde circle|sphere


def _pde_attrs(args, solver: str) -> dict:
    return dict(beta=args.beta, model=args.model, mode=args.mode, amplitude=args.amplitude, solver=solver,
                command=f"jaxattn pde {args.pde_command}")


def pde_circle_command(args) -> int:
    """rho_0 = (1 + 2 a cos(k theta)) / (2 pi) on S^1 by the Fourier solver; density, energy, plot."""
    import numpy as np
    import xarray as xr

    from . import spectral
    from .io import atomic_write_netcdf
    from .plot import pyplot

    if not 1 <= args.mode <= args.K:
        raise SystemExit(f"jaxattn pde circle: --mode must be in 1..K = {args.K}, got {args.mode}")
    c0 = spectral.mode_coefficients(args.K, cos={args.mode: args.amplitude})
    tr = spectral.solve_circle(c0, beta=args.beta, t1=args.t1, n_save=args.saves, model=args.model)
    theta, rho = tr.density(256)
    ds = xr.Dataset(
        {"density": (("t", "theta"), np.asarray(rho), {"long_name": "density rho(t, theta) w.r.t. d theta",
                                                        "units": "1/rad"}),
         "energy": ("t", np.asarray(tr.energy), {"long_name": "interaction energy E[rho](t)", "units": "1"}),
         "min_density": ("t", np.asarray(tr.min_density), {"long_name": "min_theta rho(t, theta)", "units": "1/rad"})},
        coords={"t": ("t", np.asarray(tr.ts), {"long_name": "time", "units": "1"}),
                "theta": ("theta", np.asarray(theta), {"long_name": "angle", "units": "rad"})},
        attrs=_pde_attrs(args, "jaxattn.spectral.solve_circle") | {"K": args.K, "t_lost": float(tr.t_lost)},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "pde_circle.nc")
    _, ax = pyplot().subplots(figsize=(6, 3.5))
    im = ax.pcolormesh(ds.theta, ds.t, ds.density, shading="auto", cmap="magma")
    ax.figure.colorbar(im, ax=ax, label=r"$\rho(t, \theta)$")
    ax.set(xlabel=r"$\theta$", ylabel="$t$",
           title=rf"{args.model.upper()} on $S^1$: $\beta$ = {args.beta:g}, mode {args.mode}, $a = {args.amplitude:g}$")
    ax.figure.savefig(args.out / "pde_circle.png", dpi=110, bbox_inches="tight")
    print(f"jaxattn pde circle: beta = {args.beta:g}, K = {args.K}, {len(tr.ts)} resolved saved times up to "
          f"t = {float(tr.ts[-1]):g}; min density {float(np.min(tr.min_density)):.3g}")
    print(f"  wrote {args.out / 'pde_circle.nc'} and {args.out / 'pde_circle.png'}")
    return 0


def pde_sphere_command(args) -> int:
    """rho_0 = 1 + a P_k(cos theta) on S^2 by the spherical-harmonic solver; harmonic power, energy, plot."""
    import numpy as np
    import xarray as xr

    from . import spectral
    from .io import atomic_write_netcdf
    from .plot import pyplot

    if not 1 <= args.mode < args.L:
        raise SystemExit(f"jaxattn pde sphere: --mode must be in 1..L-1 = {args.L - 1}, got {args.mode}")
    flm0 = spectral.sphere_zonal_mode(args.L, {args.mode: args.amplitude})
    tr = spectral.solve_sphere(flm0, beta=args.beta, t1=args.t1, n_save=args.saves, model=args.model)
    power = np.asarray(tr.power)
    ds = xr.Dataset(
        {"power": (("t", "l"), power, {"long_name": "harmonic power S_l(t) = sum_m |c_lm|^2", "units": "1"}),
         "energy": ("t", np.asarray(tr.energy), {"long_name": "interaction energy E[rho](t)", "units": "1"}),
         "min_density": ("t", np.asarray(tr.min_density),
                         {"long_name": "min rho(t, x) w.r.t. the normalised measure", "units": "1"})},
        coords={"t": ("t", np.asarray(tr.ts), {"long_name": "time", "units": "1"}),
                "l": ("l", np.arange(power.shape[1]), {"long_name": "spherical-harmonic degree", "units": "1"})},
        attrs=_pde_attrs(args, "jaxattn.spectral.solve_sphere") | {"L": args.L, "t_lost": float(tr.t_lost)},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "pde_sphere.nc")
    _, ax = pyplot().subplots(figsize=(5.5, 3.5))
    for ell in range(1, min(power.shape[1], 7)):
        ax.semilogy(ds.t, np.maximum(power[:, ell], 1e-300), label=rf"$\ell = {ell}$")
    ax.set(xlabel="$t$", ylabel=r"$S_\ell(t)$",
           title=rf"{args.model.upper()} on $S^2$: $\beta$ = {args.beta:g}, mode {args.mode}, $a = {args.amplitude:g}$")
    ax.legend(fontsize=8, ncol=2)
    ax.figure.savefig(args.out / "pde_sphere.png", dpi=110, bbox_inches="tight")
    print(f"jaxattn pde sphere: beta = {args.beta:g}, L = {args.L}, {len(tr.ts)} resolved saved times up to "
          f"t = {float(tr.ts[-1]):g}; S_{args.mode} from {power[0, args.mode]:.3g} to {power[-1, args.mode]:.3g}")
    print(f"  wrote {args.out / 'pde_sphere.nc'} and {args.out / 'pde_sphere.png'}")
    return 0
