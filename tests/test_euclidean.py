"""Dynamics in R^d of Geshkovski et al. 2023 (emergence), eqs. (1.1)-(1.2) and (3.1)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

import jaxattn


def in_convex_hull(points, p, tol=1e-9):
    """LP feasibility: p = sum_k lambda_k points_k, lambda >= 0, sum lambda = 1 (with slack tol)."""
    m, d = points.shape
    A_eq = np.vstack([points.T, np.ones((1, m))])
    b_eq = np.concatenate([p, [1.0]])
    # minimise the l1 slack s >= |A lambda - b|
    c = np.concatenate([np.zeros(m), np.ones(d + 1)])
    A_ub = np.block([[A_eq, -np.eye(d + 1)], [-A_eq, -np.eye(d + 1)]])
    b_ub = np.concatenate([b_eq, -b_eq])
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * (m + d + 1), method="highs")
    return res.status == 0 and res.fun <= tol


def test_rescaled_frame_equals_original(key):  # 001 T02 / 002 T33
    k1, k2, k3, k4 = jax.random.split(key, 4)
    Q = jax.random.uniform(k1, (2, 3), minval=-1, maxval=1)
    K = jax.random.uniform(k2, (2, 3), minval=-1, maxval=1)
    V = jax.random.uniform(k3, (3, 3), minval=-1, maxval=1)
    x0 = jax.random.uniform(k4, (8, 3), minval=-1, maxval=1)
    ts = jnp.array([0.0, 1.0, 2.0])
    orig = jaxattn.simulate(jaxattn.EuclideanSelfAttention(Q, K, V), x0, 2.0, ts=ts, rtol=1e-12, atol=1e-12)
    field = jaxattn.RescaledSelfAttention(Q, K, V)
    resc = jaxattn.simulate(field, x0, 2.0, ts=ts, rtol=1e-12, atol=1e-12)
    x_from_z = field.to_original(ts, resc.xs)
    scale = max(1.0, float(jnp.max(jnp.abs(orig.xs))))
    assert float(jnp.max(jnp.abs(x_from_z - orig.xs))) <= 1e-9 * scale
    P_x = jaxattn.analysis.attention_matrix(orig.field, orig.xs, ts)
    P_z = jaxattn.analysis.attention_matrix(field, resc.xs, ts)
    assert float(jnp.max(jnp.abs(P_x - P_z))) <= 1e-10


def test_v_identity_rescaled_tokens_stay_in_initial_hull(key):  # 001 T08 (Prop 8.2)
    x0 = jaxattn.initial.uniform_cube(key, 40, 3, low=-5, high=5)
    I = jnp.eye(3)
    traj = jaxattn.simulate(jaxattn.RescaledSelfAttention(I, I, I), x0, 15.0, ts=16, rtol=1e-8, atol=1e-10)
    zs = np.asarray(traj.xs)
    for t in (5, 15):
        assert all(in_convex_hull(zs[0], z) for z in zs[t])
    # support functions are non-increasing (nested hulls)
    u = np.asarray(jaxattn.initial.uniform_sphere(key, 200, 3))
    h = np.max(np.einsum("tid,kd->tki", zs, u), axis=-1)
    assert np.all(np.diff(h, axis=0) <= 1e-9)
    # and the tokens end at a few clusters (Thm 3.1: vertices of a polytope)
    count = int(jaxattn.analysis.count_clusters(zs[-1], manifold="euclidean", tol=1e-3))
    assert 2 <= count <= 20


def test_v_minus_identity_collapses_to_origin(key):  # 001 T10 / T19 (Thm 8.5)
    x0 = jaxattn.initial.uniform_cube(key, 40, 3, low=-5, high=5)
    I = jnp.eye(3)
    field = jaxattn.EuclideanSelfAttention(I, I, -I)
    traj = jaxattn.simulate(field, x0, 100.0, ts=jnp.array([0.0, 10.0, 50.0, 100.0]), rtol=1e-8, atol=1e-10)
    L = np.asarray(jnp.sum(jnp.exp(jnp.einsum("tid,tjd->tij", traj.xs, traj.xs)), axis=(1, 2)))
    assert np.all(np.diff(L) <= 1e-10 * L[:-1])  # Lyapunov function non-increasing
    assert abs(L[-1] - 1600) <= 1.0  # L(T) -> n^2
    assert float(jnp.max(jnp.linalg.norm(traj.final, axis=-1))) <= 0.3
