"""The one baseline scheme of the studies and benchmarks (jaxattn.studies.euler): the papers' authors' forward
Euler on the attention output followed by renormalisation, checked against a per-token loop written from the
formula x_i <- (x_i + h sum_j A_ij V x_j) / |...|."""

import numpy as np
import pytest

from jaxattn.studies.euler import euler_renormalise


def _loop(beta, x, h, steps, Q, K, V, unnormalised=False, causal=False):
    """The scheme token by token (no shift of the logits, plain Python sums)."""
    out = [x.copy()]
    n = len(x)
    for _ in range(steps):
        new = np.empty_like(x)
        for i in range(n):
            keys = range(i + 1) if causal else range(n)
            w = np.array([np.exp(beta * (Q @ x[i]) @ (K @ x[j])) for j in keys])
            w = w / n if unnormalised else w / w.sum()
            y = x[i] + h * sum(wj * (V @ x[j]) for wj, j in zip(w, keys))
            new[i] = y / np.linalg.norm(y)
        x = new
        out.append(x.copy())
    return np.stack(out)


@pytest.mark.parametrize("case", ["sa", "sa-qkv", "usa-v", "causal"])
def test_euler_renormalise_is_the_authors_scheme(case):
    rng = np.random.default_rng(0)
    n, d, beta, h, steps = 6, 3, 2.5, 0.1, 7
    x0 = rng.normal(size=(n, d))
    x0 /= np.linalg.norm(x0, axis=-1, keepdims=True)
    Q, K, V = (np.eye(d),) * 3
    kw = {}
    if case == "sa-qkv":
        Q, K, V = rng.normal(size=(3, d, d))
        kw = dict(Q=Q, K=K, V=V)
    elif case == "usa-v":
        V = rng.normal(size=(d, d))
        kw = dict(V=V, unnormalised=True)
    elif case == "causal":
        kw = dict(causal=True)
    ref = _loop(beta, x0, h, steps, Q, K, V, unnormalised=kw.get("unnormalised", False),
                causal=kw.get("causal", False))
    got = euler_renormalise(beta, x0, h, steps, **kw)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
    # saves at given step counts, an ensemble axis: the same iterates
    batch = euler_renormalise(beta, np.stack([x0, x0[::-1]]), h, [0, 3, 7], **kw)
    np.testing.assert_allclose(batch[:, 0], ref[[0, 3, 7]], rtol=0, atol=1e-13)
    if case == "causal":  # the first token attends to itself only: it never moves
        np.testing.assert_allclose(got[:, 0], np.broadcast_to(x0[0], (steps + 1, d)), atol=1e-15)


def test_euler_renormalise_refuses_what_is_not_a_scheme_of_the_papers():
    x0 = np.eye(3)
    with pytest.raises(ValueError, match="causal"):
        euler_renormalise(1.0, x0, 0.1, 3, causal=True, unnormalised=True)
    with pytest.raises(ValueError, match="h must be"):
        euler_renormalise(1.0, x0, 0.0, 3)
    with pytest.raises(ValueError, match="non-decreasing"):
        euler_renormalise(1.0, x0, 0.1, [3, 1])
