"""Runners of ``jaxattn demo``, ``jaxattn simulate`` and ``jaxattn pde circle|sphere``.

The arguments are declared in `jaxattn.cli`; everything heavy is imported inside the runners.
Each runner checks its arguments before it solves or writes anything (an error leaves no file behind),
raising ``ValueError`` with a message that names the option; `jaxattn.cli.main` prints it as one
line. Trajectories are written by [`jaxattn.Trajectory.save`][jaxattn.solve.Trajectory.save] (read back by
[`jaxattn.load_trajectory`][jaxattn.load_trajectory]), datasets by [`jaxattn.io.atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf], figures by
`jaxattn.plot.save_figure` (``--dpi``, ``--format``); every file records the command line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: the share of the machine's memory the saved output may take (the solver, its output and the file
#: writer each hold a copy)
MEMORY_SHARE = 0.25


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_output_size(option: str, count: int, shape: tuple[int, ...], what: str) -> int:
    """Refuse a command whose saved output would not fit in memory; returns its size in bytes.

    ``count`` saved items (the value of ``option``), each ``shape`` float64 numbers.

    Raises:
        ValueError: the output would take more than `MEMORY_SHARE` of the machine's memory; the
            message gives the size and the largest value of ``option`` that fits.
    """
    per = 8
    for k in shape:
        per *= int(k)
    total = int(count) * per
    memory = _memory_bytes()
    if memory is not None and total > MEMORY_SHARE * memory:
        fits = max(int(MEMORY_SHARE * memory // per), 1)
        raise ValueError(f"{option} {count} would store {count} x {' x '.join(map(str, shape))} float64 {what} = "
                         f"{total / 1e9:.3g} GB, more than {MEMORY_SHARE:.0%} of this machine's "
                         f"{memory / 1e9:.3g} GB of memory: use {option} {fits} or fewer")
    return total


def _figure(path: Path, args) -> Path:
    """The figure path with the suffix of ``--format``."""
    return Path(path).with_suffix(f".{args.format}")


def demo_command(args) -> int:
    """(SA) on S^2 (paper 002 eq. (2.6)) from uniform tokens; prints clusters, steps, time; saves a figure."""
    import jax

    from .analysis import count_clusters
    from .fields import SelfAttention
    from .initial import uniform_sphere
    from .plot import animate, parameter_title, plot_sphere_trajectories, save_figure
    from .solve import simulate

    field = SelfAttention(args.beta)  # checks beta before anything runs
    if args.animate is not None and args.animate.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"--animate writes .gif or .mp4 files, got {args.animate.name!r}")
    x0 = uniform_sphere(jax.random.PRNGKey(args.seed), args.n, 3)
    start = time.perf_counter()
    cpu = time.process_time()
    traj = simulate(field, x0, args.t1, ts=401 if args.animate else 101)  # dense saves for the animation
    traj.xs.block_until_ready()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    clusters = int(count_clusters(traj.final, delta=1e-3))
    drift = float(abs(jax.numpy.linalg.norm(traj.xs, axis=-1) - 1).max())
    title = parameter_title("SA on $S^2$", n=args.n, beta=args.beta)
    ax = plot_sphere_trajectories(traj, title=f"{title}, seed {args.seed}, {clusters} clusters")
    figure = save_figure(ax.figure, _figure(args.output, args), dpi=args.dpi, format=args.format)
    stats = traj.stats
    print(f"jaxattn demo: SA on S^2, n = {args.n}, beta = {args.beta:g}, t in [0, {args.t1:g}], seed {args.seed}")
    print(f"  clusters at t = {args.t1:g}: {clusters}  (<x_i, x_j> >= 1 - 1e-3 linked)")
    print(f"  solver: Tsit5 + PID (rtol = atol = 1e-6): {int(stats['num_steps'])} steps "
          f"({int(stats['num_rejected_steps'])} rejected)")
    print(f"  max | |x_i| - 1 | = {drift:.1e}")
    print(f"  time: {wall:.2f} s wall, {cpu:.2f} s CPU (including JIT compilation)")
    print(f"  figure: {figure}")
    if args.animate:
        animate(traj, args.animate, title=title)
        print(f"  animation: {args.animate}")
    return 0


# ---------------------------------------------------------------------------------------------
# jaxattn simulate


def _field(args, d: int):
    import jax.numpy as jnp

    from . import fields

    if args.value is not None and args.model in ("circle", "kuramoto"):
        raise ValueError(f"--value does not apply to --model {args.model}")
    if args.value is not None and len(args.value) != d:
        raise ValueError(f"--value needs d = {d} numbers (the diagonal of V), got {len(args.value)}")
    if args.causal and args.model not in ("sa", "usa", "circle"):
        raise ValueError(f"--causal applies to --model sa, usa and circle, not {args.model}")
    V = None if args.value is None else jnp.diag(jnp.asarray(args.value, dtype=float))
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
    if args.n > d:
        raise ValueError(f"--init frame places the n tokens on n orthogonal axes: needs --n <= --d = {d}, "
                         f"got --n {args.n}")
    return initial.orthogonal_frame(args.n, d)


def simulate_command(args) -> int:
    """Integrate a model from a random initial condition; save the trajectory and a figure/animation."""
    import numpy as np

    from .plot import animate, parameter_title, plot_circle_trajectories, plot_sphere_trajectories, pyplot, save_figure
    from .solve import TRAJECTORY_SUFFIXES, simulate

    circle = args.model in ("circle", "kuramoto")
    init = args.init or ("circle" if circle else "cube" if args.model in ("euclidean", "rescaled") else "sphere")
    if circle != (init == "circle"):
        raise ValueError(f"--model {args.model} needs "
                         f"{'--init circle (angles)' if circle else 'points, not --init circle'}")
    if args.out.suffix.lower() not in TRAJECTORY_SUFFIXES:
        raise ValueError(f"--out {args.out} must end in .nc (netCDF) or .npz (NumPy archive)")
    if args.animate is not None and args.animate.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"--animate writes .gif or .mp4 files, got {args.animate.name!r}")
    d = 1 if circle else args.d
    check_output_size("--saves", args.saves, (args.n,) if circle else (args.n, d), "states")
    field = _field(args, d)
    x0 = _initial(args, init, d)
    start = time.process_time()
    traj = simulate(field, x0, args.t1, ts=args.saves, rtol=args.rtol, atol=args.atol)
    cpu = time.process_time() - start
    xs = np.asarray(traj.xs)
    traj.save(args.out, attrs=dict(model=args.model, init=init, n=args.n, seed=args.seed, rtol=args.rtol,
                                   atol=args.atol, t1=args.t1))
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
    title = parameter_title(f"{type(field).__name__} on {space}", n=args.n,
                            **({"K": args.beta} if args.model == "kuramoto" else {"beta": args.beta}))
    ax.set_title(title, fontsize=10)
    figure = save_figure(ax.figure, _figure(args.figure or args.out, args), dpi=args.dpi, format=args.format)
    print(f"jaxattn simulate: {type(field).__name__} (beta = {args.beta:g}) from {init}, n = {args.n}"
          f"{'' if circle else f', d = {d}'}, t in [0, {args.t1:g}]: {int(np.asarray(traj.stats['num_steps']))} "
          f"steps, {cpu:.2f} CPU-s (including compilation)")
    print(f"  trajectory: {args.out}  ({xs.shape[0]} saved times; jaxattn.load_trajectory reads it)")
    print(f"  figure: {figure}")
    if args.animate:
        if not circle and d > 3:
            print("  (animation of the first three coordinates)")
            traj = type("Projected", (), {"ts": traj.ts, "xs": xs[..., :3]})()
        animate(traj, args.animate, title=title)
        print(f"  animation: {args.animate}")
    return 0


# ---------------------------------------------------------------------------------------------
# jaxattn pde circle|sphere


def _pde_attrs(args, solver: str) -> dict:
    return dict(beta=args.beta, model=args.model, mode=args.mode, amplitude=args.amplitude, solver=solver)


def _check_pde(args, size: str, modes: int, lowest: float, highest: float, density: str) -> None:
    """Validate ``pde`` arguments before anything is solved or written.

    The initial density must be >= 0: with rho_0 = 1 + a f, min f = ``lowest`` < 0 < ``highest`` = max f,
    a must lie in [-1 / highest, -1 / lowest].
    """
    if args.beta <= 0:
        raise ValueError(f"--beta must be > 0 (an inverse temperature), got {args.beta:g}")
    if args.saves < 2:
        raise ValueError(f"--saves must be >= 2 (t = 0 and t1), got {args.saves}")
    if not 1 <= args.mode < modes:
        raise ValueError(f"--mode must be in 1..{modes - 1} ({size} = {getattr(args, size[2:])}), got {args.mode}")
    lo, hi = -1.0 / highest, -1.0 / lowest
    if not lo <= args.amplitude <= hi:
        raise ValueError(f"--amplitude {args.amplitude:g} makes the initial density {density} negative: use a "
                         f"value in [{lo:.3g}, {hi:.3g}] (the linear regime is |a| << 1, e.g. 0.01)")


def pde_circle_command(args) -> int:
    """rho_0 = (1 + 2 a cos(k theta)) / (2 pi) on S^1 by the Fourier solver; density, energy, plot."""
    import numpy as np
    import xarray as xr

    from . import spectral
    from .io import atomic_write_netcdf
    from .plot import parameter_title, pyplot, save_figure

    _check_pde(args, "--K", args.K + 1, -2.0, 2.0, "(1 + 2 a cos(k theta)) / (2 pi)")
    check_output_size("--saves", args.saves, (256,), "density values")
    c0 = spectral.mode_coefficients(args.K, cos={args.mode: args.amplitude})
    tr = spectral.solve_circle(c0, beta=args.beta, t1=args.t1, n_save=args.saves, model=args.model)
    if len(tr.ts) < 2:
        raise RuntimeError(f"the solution lost resolution before the first save after t = 0 (t_lost = "
                           f"{float(tr.t_lost):.3g}): raise --K or lower --t1; nothing was written")
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
    nc = atomic_write_netcdf(ds, args.out / "pde_circle.nc", source="jaxattn.spectral.solve_circle")
    _, ax = pyplot().subplots(figsize=(6, 3.5))
    im = ax.pcolormesh(ds.theta, ds.t, ds.density, shading="auto", cmap="magma")
    ax.figure.colorbar(im, ax=ax, label=r"$\rho(t, \theta)$")
    ax.set(xlabel=r"$\theta$", ylabel="$t$",
           title=parameter_title(f"{args.model.upper()} on $S^1$", beta=args.beta, k=args.mode, a=args.amplitude,
                                 K=args.K))
    png = save_figure(ax.figure, args.out / "pde_circle", dpi=args.dpi, format=args.format)
    print(f"jaxattn pde circle: beta = {args.beta:g}, K = {args.K}, {len(tr.ts)} resolved saved times up to "
          f"t = {float(tr.ts[-1]):g}; min density {float(np.min(tr.min_density)):.3g}")
    print(f"  wrote {nc} and {png}")
    return 0


def sphere_power_axes(ax, ts, power, *, degrees: int = 6, floor: float = 1e-12):
    """Draw the harmonic power S_l(t), l = 1..``degrees``, on a log axis whose limits show the data.

    A degree whose power stays below ``floor`` times the largest power drawn (exactly 0 for the degrees a
    zonal initial condition of one mode never excites, round-off for others) is left out; zeros at t = 0
    are not drawn (a log axis has no 0) and do not stretch the axis (`jaxattn.plot.log_limits`).
    Returns the axes.
    """
    import numpy as np

    from .plot import log_limits

    power = np.asarray(power, dtype=float)[:, 1: degrees + 1]
    top = float(np.nanmax(power)) if power.size else 0.0
    if not top > 0:
        return ax
    for ell in range(power.shape[1]):
        curve = power[:, ell]
        if curve.max() >= floor * top:
            ax.semilogy(ts, np.where(curve > 0, curve, np.nan), color=f"C{ell}", label=rf"$\ell = {ell + 1}$")
    ax.set_ylim(*log_limits(power, floor=floor))
    ax.legend(fontsize=8, ncol=2)
    return ax


def pde_sphere_command(args) -> int:
    """rho_0 = 1 + a P_k(cos theta) on S^2 by the spherical-harmonic solver; harmonic power, energy, plot."""
    import numpy as np
    import xarray as xr
    from numpy.polynomial import legendre

    from . import spectral
    from .io import atomic_write_netcdf
    from .plot import parameter_title, pyplot, save_figure

    if 1 <= args.mode < args.L:
        p_k = legendre.Legendre.basis(args.mode)(np.linspace(-1.0, 1.0, 4001))
        lowest, highest = float(min(p_k.min(), -1e-300)), float(p_k.max())
    else:
        lowest, highest = -1.0, 1.0
    _check_pde(args, "--L", args.L, lowest, highest, "1 + a P_k(cos theta)")
    check_output_size("--saves", args.saves, (args.L,), "harmonic powers")
    flm0 = spectral.sphere_zonal_mode(args.L, {args.mode: args.amplitude})
    tr = spectral.solve_sphere(flm0, beta=args.beta, t1=args.t1, n_save=args.saves, model=args.model)
    if len(tr.ts) < 2:
        raise RuntimeError(f"the solution lost resolution before the first save after t = 0 (t_lost = "
                           f"{float(tr.t_lost):.3g}): raise --L or lower --t1; nothing was written")
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
    nc = atomic_write_netcdf(ds, args.out / "pde_sphere.nc", source="jaxattn.spectral.solve_sphere")
    _, ax = pyplot().subplots(figsize=(5.5, 3.5))
    sphere_power_axes(ax, ds.t.values, power)
    ax.set(xlabel="$t$", ylabel=r"$S_\ell(t)$",
           title=parameter_title(f"{args.model.upper()} on $S^2$", beta=args.beta, k=args.mode, a=args.amplitude,
                                 L=args.L))
    png = save_figure(ax.figure, args.out / "pde_sphere", dpi=args.dpi, format=args.format)
    print(f"jaxattn pde sphere: beta = {args.beta:g}, L = {args.L}, {len(tr.ts)} resolved saved times up to "
          f"t = {float(tr.ts[-1]):g}; S_{args.mode} from {power[0, args.mode]:.3g} to {power[-1, args.mode]:.3g}")
    print(f"  wrote {nc} and {png}")
    return 0
