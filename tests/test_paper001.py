"""Paper 001 (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023) reproductions against its theorems,
closed forms and reference values (errata: docs/errata.md). Checks T02, T08, T10 are in
tests/test_euclidean.py."""

import math

import jax
import numpy as np
import pytest
import scipy.cluster.hierarchy
import scipy.spatial

from jaxattn.layers import vertex_mask
from jaxattn.studies import paper_001 as p1


#: shared save grid: tests with the same shapes reuse one compiled solve
TS15 = np.linspace(0.0, 15.0, 31)


def test_polytope_vertices_and_leaders():  # T16, T18 (Thm 3.1 / 8.1, V = I)
    ds = p1.rescaled_trajectories(np.eye(3), n=40, t1=15.0, ts=TS15, seeds=(0, 1, 2))
    for s in range(3):
        summary = p1.polytope_summary(ds.z.isel(seed=s, t=-1).values, ds.P.isel(seed=s, t=-1).values)
        assert 4 <= summary["clusters"] <= 20
        assert summary["radius"] <= 1e-4
        assert summary["all_vertices"]  # every leader is a vertex of the limit polytope
        assert summary["S_defect"] <= 1e-8  # leaders attend to themselves (set S of Thm 8.1)
        assert summary["argmax_in_cluster"]
        # the same claims from scipy alone: single-linkage clusters at 1e-3, their centres all vertices of
        # scipy.spatial.ConvexHull (Thm 3.1: the limit points are the vertices of the limit polytope), and the
        # leaders attend to themselves (|c|^2 >= <c, c'> for every pair of centres, the set S of Thm 8.1)
        z = ds.z.isel(seed=s, t=-1).values
        labels = scipy.cluster.hierarchy.fcluster(scipy.cluster.hierarchy.linkage(z, "single"), 1e-3, "distance")
        centres = np.array([z[labels == k].mean(axis=0) for k in np.unique(labels)])
        assert len(centres) == summary["clusters"]
        assert set(scipy.spatial.ConvexHull(centres).vertices) == set(range(len(centres)))
        gram = centres @ centres.T
        assert np.all(np.diag(gram)[:, None] >= gram - 1e-8)
        # clusters shrink like e^{-t}: radius(10)/radius(15) ~ e^5
        r10 = p1.polytope_summary(ds.z.isel(seed=s).sel(t=10.0).values, ds.P.isel(seed=s).sel(t=10.0).values)
        assert math.exp(4) <= r10["radius"] / summary["radius"] <= math.exp(6)
        counts = [p1.cluster_centres(ds.z.isel(seed=s).sel(t=t).values, 1e-2)[0].shape[0] for t in (8.0, 15.0)]
        assert counts[0] == counts[1]  # count constant on [8, 15] at tol 1e-2
    # an interior point is not a vertex; the corners of a square are
    mask = vertex_mask(np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], float))
    assert mask.tolist() == [True, True, True, True, False]


def test_hyperplanes_use_the_left_eigenvector():  # T09, T20, T21 (Thm 4.2, Fig 6 matrix)
    lam, phi, dual = p1.dual_basis(p1.FIG6_V)
    np.testing.assert_allclose(lam.real, [1.3480, -0.0683], atol=1e-4)
    np.testing.assert_allclose(phi[:, 0].real, [0.7598, 0.6501], atol=1e-4)
    left = dual[0].real / np.linalg.norm(dual[0].real)
    np.testing.assert_allclose(left, [0.6578, 0.7532], atol=1e-4)
    assert p1.is_good_triple(np.eye(2), np.eye(2), p1.FIG6_V)
    ts = np.linspace(0.0, 20.0, 41)
    ds = p1.rescaled_trajectories(p1.FIG6_V, n=40, t1=20.0, ts=ts, seeds=(0, 1, 2))
    coords = p1.spectral_coordinates(ds.z.values, p1.FIG6_V)
    for s in range(3):
        c1 = coords[s, :, :, 0].real
        final = c1[-1]
        limits = np.unique(np.round(final, 5))
        assert len(limits) == 2 and limits[0] < 0 < limits[1]  # two hyperplanes, a < 0 < b
        a, b = limits
        assert c1[0].min() - 1e-9 <= a <= c1[0].min() + 0.1  # leaders nearly frozen
        assert c1[0].max() - 0.1 <= b <= c1[0].max() + 1e-9
        # Lemma 9.1: lambda_1 > 0 -> max phi_1^* non-increasing, min non-decreasing;
        # lambda_2 < 0 -> the phi_2^* spread grows
        assert np.all(np.diff(c1.max(1)) <= 1e-10) and np.all(np.diff(c1.min(1)) >= -1e-10)
        spread2 = np.ptp(coords[s, :, :, 1].real, axis=1)
        assert np.all(np.diff(spread2) >= -1e-10) and spread2[-1] > spread2[0]
        # the fitted normal of each final line is the LEFT eigenvector, 8.3 degrees off phi_1
        z_final = ds.z.isel(seed=s, t=-1).values
        for side in (final > 0, final < 0):
            normal = p1.fitted_normal(z_final[side])
            assert math.acos(min(1.0, abs(normal @ left))) <= 1e-3
            assert math.acos(abs(normal @ phi[:, 0].real)) == pytest.approx(0.145, abs=0.005)


def test_boolean_low_rank_attention_d1():  # T11-T13 (Thm 2.1, Fig 3) and Fig 11 (n = 100)
    ds = p1.boolean_attention(n=40, ts=[0.0, 2.0, 4.0, 5.0, 6.0], seeds=(0, 1, 2))
    late = ds.sel(t=6.0)
    assert float(late.row_max_defect.max()) <= 1e-12  # rows one-hot
    assert np.all(late.leaders.values <= 2) and np.all(late["rank"].values == 2)
    for s in range(3):
        P = late.P.isel(seed=s).values
        top = P.argmax(1)
        assert set(top) <= {0, 39}  # leaders: the extreme tokens
        # rows attending to the first token form a prefix block, the rest a suffix
        switch = np.argmax(top == 39)
        assert np.all(top[:switch] == 0) and np.all(top[switch:] == 39)
        # two clusters in z (tol 1e-2), inside the initial range
        z = late.z_sorted.isel(seed=s).values[:, 0]
        z0 = ds.z_sorted.isel(seed=s, t=0).values[:, 0]
        groups = np.sort(p1.cluster_centres(z[:, None], 1e-2)[0][:, 0])
        assert len(groups) == 2 and groups[0] >= z0.min() - 1e-9 and groups[1] <= z0.max() + 1e-9
        # doubly exponential decay: log(-log off-leader mass) has slope 1 (V = 1)
        off = ds.log_off_mass.isel(seed=s).sel(t=[4.0, 5.0, 6.0]).values
        slope = np.diff(np.log(-off), axis=0)
        np.testing.assert_allclose(slope, 1.0, atol=0.05)
    assert np.all(ds.sel(t=2.0)["rank"].values > 2)  # not yet low rank at t = 2
    # Fig 11: the same structure for n = 100 (rank = number of leaders, independent of n)
    big = p1.boolean_attention(n=100, ts=[0.0, 8.0], seeds=(0,)).sel(t=8.0)
    assert int(big["rank"].item()) == 2 and int(big.leaders.item()) == 2
    assert float(big.row_max_defect.max()) <= 1e-9  # the token nearest 0 is the slowest row


def test_polytope_times_subspace():  # T24 (Thm 5.2, V = diag(1, 1, -1/2), Fig 8)
    ds = p1.rescaled_trajectories(p1.FIG8_V, n=40, t1=15.0, ts=TS15, seeds=(0, 1, 2))
    z = ds.z.isel(seed=0).values
    proj = z[..., :2]
    centres, _ = p1.cluster_centres(proj[-1], 1e-3)
    assert 3 <= len(centres) <= 12
    assert np.all(vertex_mask(centres) | (np.linalg.norm(centres, axis=1) < 1e-3))
    # support functions of the (z1, z2) projection are non-increasing (pi_F conv shrinks)
    u = np.random.default_rng(0).standard_normal((50, 2))
    support = np.einsum("ud,tid->tui", u, proj).max(-1)
    assert np.all(np.diff(support, axis=0) <= 1e-10)
    spread = np.ptp(z[..., 2], axis=-1)
    ratio = spread[list(ds.t.values).index(15.0)] / spread[list(ds.t.values).index(10.0)]
    assert 10 <= ratio <= 15  # e^{0.5 * 5} = 12.2


@pytest.mark.slow
def test_complex_subdominant_eigenvalues():  # T22 (Figs 13-14)
    for V in (p1.FIG13_V, p1.FIG14_V):
        assert p1.is_good_triple(np.eye(3), np.eye(3), V)
        ds = p1.rescaled_trajectories(V, n=25, t1=20.0, ts=[0.0, 10.0, 20.0], seeds=(0,))
        c = p1.spectral_coordinates(ds.z.isel(seed=0).values, V)
        assert len(np.unique(np.round(c[-1, :, 0].real, 6))) == 2
        if V is p1.FIG14_V:
            mod = np.abs(c[..., 1]).max(-1)
            assert mod[-1] > mod[0]
    lam, _, _ = p1.dual_basis(p1.FIG13_V)
    np.testing.assert_allclose([lam[0].real, lam[1].real, abs(lam[1].imag)], [1.0783, 0.0991, 0.0819], atol=1e-4)


@pytest.mark.slow
def test_origin_collapse_t_half_law():  # T19 rate (Thm 8.5 + the algebraic law)
    ds = p1.origin_collapse(n=40, d=3, ts=[0.0, 100.0, 250.0, 1000.0], seed=0)
    assert float(ds.max_norm.sel(t=100.0)) <= 0.3 and float(ds.max_norm.sel(t=1000.0)) <= 0.1
    a, b = float(ds.sqrt_t_max_norm.sel(t=250.0)), float(ds.sqrt_t_max_norm.sel(t=1000.0))
    assert abs(a - b) <= 0.25 * b
    assert float(ds.attention_defect.sel(t=100.0)) <= 2e-3
    assert np.all(np.diff(ds.lyapunov.values) <= 1e-10 * ds.lyapunov.values[:-1])


@pytest.mark.slow
def test_ginibre_good_triple_fraction():  # T23
    rng = np.random.default_rng(0)
    frac = np.mean([p1.is_good_triple(np.eye(128), np.eye(128), rng.standard_normal((128, 128)))
                    for _ in range(300)])
    assert 0.09 <= frac <= 0.24
    assert all(p1.is_good_triple(np.eye(16), np.eye(16), rng.uniform(0, 1, (16, 16))) for _ in range(20))


@pytest.mark.slow
def test_higher_dimensional_boolean_attention():  # T27 (Fig 12, soft)
    W = jax.random.uniform(jax.random.PRNGKey(0), (10, 10), minval=-1, maxval=1)
    V = np.asarray(W @ W.T)
    V = V / np.linalg.eigvalsh(V).max()
    ds = p1.boolean_attention(n=40, d=10, V=V, ts=[0.0, 15.0], seeds=(0,))
    assert float(ds.row_max_defect.sel(t=15.0).max()) <= 1e-9
    # Fig. 12: one leader at each end of the top eigendirection, as in Thm 2.1 / 4.2 (2 leaders for seeds 0, 1, 2)
    assert int(ds.leaders.sel(t=15.0).item()) == 2
