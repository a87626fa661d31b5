"""Keeping tokens on the sphere: retraction wrapper vs plain solves at tighter tolerances.

Setting of issue 2: V = -I, beta = 4, T = 50, n = 32, d = 3. For each method prints the
step count, the max norm drift max | |x_i(t)| - 1 | over 101 save times, and CPU time.
Run: ``taskset -c 0 python -m benchmarks.sphere_retraction``.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import jaxattn
from benchmarks._measure import print_table, time_call


def plain_solve(field, x0, t1, rtol):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, a: field(t, y)), diffrax.Tsit5(), 0.0, t1, None, x0,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol),
        saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, t1, 101)), max_steps=10**6)
    return sol


def main():
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 3)
    rows = []
    for cls in (jaxattn.SelfAttention, jaxattn.UnnormalisedSelfAttention):
        field = cls(4.0, V=-jnp.eye(3))
        traj = jaxattn.simulate(field, x0, 50.0)
        t = time_call(lambda: jaxattn.simulate(field, x0, 50.0).xs, min_time=0.05)[0]
        drift = float(np.max(np.abs(np.linalg.norm(traj.xs, axis=-1) - 1)))
        rows.append([cls.__name__, "retraction, rtol 1e-6", int(traj.stats["num_steps"]), drift, 1e3 * t])
        jitted = jax.jit(plain_solve, static_argnums=(2, 3))
        for rtol in (1e-6, 1e-8, 1e-10, 1e-12):
            sol = jitted(field, x0, 50.0, rtol)
            t = time_call(lambda: jitted(field, x0, 50.0, rtol).ys, min_time=0.05)[0]
            drift = float(np.max(np.abs(np.linalg.norm(sol.ys, axis=-1) - 1)))
            rows.append([cls.__name__, f"plain, rtol {rtol:g}", int(sol.stats["num_steps"]), drift, 1e3 * t])
    print("V = -I, beta = 4, T = 50, n = 32, d = 3, Tsit5 + PID (atol = rtol)")
    print_table(["field", "method", "steps", "max norm drift", "CPU ms"], rows)


if __name__ == "__main__":
    main()
