"""The shared attention kernel: softmax algebra, stability, causal mask, blocking (001 T01)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.fields import attend, attention_weights


def naive_softmax(logits):
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def test_rows_are_probabilities_and_match_naive_formula(key):
    logits = 10 * jax.random.normal(key, (7, 7))
    w = attention_weights(logits)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-14)
    assert np.all((w >= 0) & (w <= 1))
    np.testing.assert_allclose(w, naive_softmax(np.asarray(logits)), rtol=1e-13, atol=1e-15)


def test_invariant_to_row_constants(key):
    logits = jax.random.normal(key, (6, 6))
    shifted = logits + jnp.arange(6.0)[:, None] * 100
    np.testing.assert_allclose(attention_weights(logits), attention_weights(shifted), atol=1e-14)


@pytest.mark.parametrize("scale", [1e4, 1e300])
def test_huge_logits_stay_finite_and_become_one_hot(key, scale):
    logits = scale * jax.random.normal(key, (5, 5))
    w = attention_weights(logits)
    assert np.all(np.isfinite(w))
    np.testing.assert_array_equal(np.max(w, axis=1), 1.0)


def test_beta_1e3_sphere_field_finite(key):
    """At beta = 1e3 the weights e^{beta <x_i, x_j>} overflow float64; the max-shifted kernel must equal the
    unshifted sums computed in x87 extended precision (e^{1000} ~ 1e434 is finite there), for SA, causal SA and
    time-rescaled USA (weights e^{beta(<x_i, x_j> - 1)} / n)."""
    import jaxattn

    if np.finfo(np.longdouble).maxexp < 16384:
        pytest.skip("needs x87 extended precision for the unshifted oracle")
    beta, n = 1e3, 20
    # tokens within a few beta^{-1/2} of each other, so that the sums are not dominated by the self term alone
    x = jaxattn.initial.project_to_sphere(jnp.array([1.0, 0.0, 0.0]) + 0.05 * jax.random.normal(key, (n, 3)))
    xl = np.asarray(x, dtype=np.longdouble)
    w = np.exp(np.longdouble(beta) * (xl @ xl.T))
    for field, weights in ((jaxattn.SelfAttention(beta), w / w.sum(1, keepdims=True)),
                           (jaxattn.SelfAttention(beta, causal=True),
                            np.tril(w) / np.tril(w).sum(1, keepdims=True)),
                           (jaxattn.UnnormalisedSelfAttention(beta, time_rescaled=True),
                            w / np.exp(np.longdouble(beta)) / n)):
        y = weights @ xl
        expected = (y - np.sum(y * xl, axis=1, keepdims=True) * xl).astype(np.float64)
        got = np.asarray(field(0.0, x))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * max(1.0, np.abs(expected).max()))
        assert np.abs(expected).max() > 1e-3


def test_causal_mask_is_lower_triangular_with_diagonal(key):
    logits = jax.random.normal(key, (6, 6))
    w = np.asarray(attention_weights(logits, causal=True))
    assert np.all(np.triu(w, 1) == 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-14)
    for k in range(6):  # row k is the softmax over the first k + 1 logits
        np.testing.assert_allclose(w[k, : k + 1], naive_softmax(np.asarray(logits)[k : k + 1, : k + 1])[0], rtol=1e-13)


def test_mean_normalisation_is_exp_over_n(key):
    logits = 3 * jax.random.normal(key, (5, 5))
    np.testing.assert_allclose(attention_weights(logits, normalisation="mean"), np.exp(logits) / 5, rtol=1e-13)
    causal = np.asarray(attention_weights(logits, normalisation="mean", causal=True))
    expected = np.tril(np.exp(np.asarray(logits))) / np.arange(1, 6)[:, None]
    np.testing.assert_allclose(causal, expected, rtol=1e-13)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalisation", ["softmax", "mean"])
def test_blocked_equals_dense(key, causal, normalisation):
    k1, k2, k3 = jax.random.split(key, 3)
    q, k, v = (jax.random.normal(kk, (103, 4)) for kk in (k1, k2, k3))
    dense = attend(q, k, v, causal=causal, normalisation=normalisation, block_size=0)
    blocked = attend(q, k, v, causal=causal, normalisation=normalisation, block_size=16)
    np.testing.assert_allclose(blocked, dense, rtol=1e-13, atol=1e-14)


def naive_attend(q, k, v, causal, normalisation, log_shift):
    """out_i = sum_j w_ij v_j from the defining formula, in NumPy (module docstring of _attention)."""
    logits = np.asarray(q) @ np.asarray(k).T
    n = logits.shape[0]
    visible = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    e = np.where(visible, np.exp(logits), 0.0)
    if normalisation == "softmax":
        norm = e.sum(axis=1, keepdims=True)
    else:
        norm = visible.sum(axis=1, keepdims=True) * np.exp(log_shift)
    return (e / norm) @ np.asarray(v)


@pytest.mark.parametrize("n", [32, 127, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalisation", ["softmax", "mean"])
def test_batched_small_n_path_equals_dense_weights(key, n, causal, normalisation):
    """The shape dispatch (separate row sums below SMALL_TOKENS, a ones column from there on),
    vmapped over a batch as ensembles run it, equals the dense weight matrix times the values
    (attention_weights, the other evaluation) and the NumPy formula, to 1e-13."""
    from jaxattn.fields._attention import SMALL_TOKENS

    assert SMALL_TOKENS == 128  # n = 127 and 128 straddle the switch
    k1, k2, k3 = jax.random.split(key, 3)
    batch, m, dv = 4, 5, 3
    q = 1.5 * jax.random.normal(k1, (batch, n, m))
    k = jax.random.normal(k2, (batch, n, m))
    v = jax.random.normal(k3, (batch, n, dv))
    shift = 0.7 if normalisation == "mean" else 0.0
    kw = dict(normalisation=normalisation, causal=causal, log_shift=shift)
    fast = jax.jit(jax.vmap(lambda q, k, v: attend(q, k, v, **kw)))(q, k, v)
    weights = jax.vmap(lambda q, k: attention_weights(q @ k.T, **kw))(q, k)
    dense = jnp.einsum("bij,bjd->bid", weights, v)
    scale = float(jnp.max(jnp.abs(dense)))
    np.testing.assert_allclose(fast, dense, rtol=1e-13, atol=1e-13 * scale)
    for b in range(batch):
        np.testing.assert_allclose(fast[b], naive_attend(q[b], k[b], v[b], causal, normalisation, shift),
                                   rtol=1e-12, atol=1e-13 * scale)


@pytest.mark.parametrize("field", ["SA", "USA", "causal SA"])
def test_batched_field_equals_member_loop(key, field):
    """The sphere field vmapped over an ensemble (the batched small-n path) equals the field
    evaluated member by member, to 1e-13 (n = 32, d = 16)."""
    import jaxattn

    model = {"SA": jaxattn.SelfAttention(3.0), "USA": jaxattn.UnnormalisedSelfAttention(3.0, time_rescaled=True),
             "causal SA": jaxattn.SelfAttention(3.0, causal=True)}[field]
    x = jaxattn.initial.uniform_sphere(key, 32, 16, batch=6)
    batched = jax.jit(jax.vmap(lambda y: model(0.0, y)))(x)
    for b in range(x.shape[0]):
        np.testing.assert_allclose(batched[b], model(0.0, x[b]), rtol=1e-13, atol=1e-14)
