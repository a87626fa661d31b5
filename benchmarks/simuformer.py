"""The discrete layer update of the simuformer simulator (Karagodin, Ge, Polyanskiy, Rigollet 2025), re-implemented
in NumPy from its description, and a timing of jaxattn against it at the simulator's own settings.

The update (one layer = one time step eta; tokens are rows theta_i on the sphere, radii r_i, H heads with
bilinear forms B_h = K_h^T Q_h and value maps V_h, every head weighted 1/H):

    A_i = (1/H) sum_h sum_j softmax_j(beta theta_i^T B_h theta_j) V_h^T theta_j     (j <= i if causal)

    post-LN:  theta <- normalise(theta + eta A)
    pre-LN:   r <- r + eta rdot;  theta <- normalise(theta + eta P_theta(A) / r)
    peri-LN:  r <- r + eta rdot;  theta <- normalise(theta + eta (A/|A|) / r)      (rdot with A/|A|)
    nGPT:     theta <- normalise(theta + eta alpha A / |A|)                        (alpha = 0.2)

where the radial rate is ``rdot = <theta_i, A_i>`` (``radius_rule="paper"``: the equation of Karagodin et al.
2025 and Rigollet 2025 §5.2) or, as the simulator codes it, ``rdot = r_i sum_k A_ik`` (``radius_rule=
"simuformer"``: r times the coordinate sum of A, which freezes the directions from an orthogonal start;
docs/normalisation.md, "The radius equation"). The radius update comes first and the direction update
divides by the new radius, as in the simulator. Weights are re-drawn every ``period`` time units (the
simulator's modes 5 re-draw at integer times, period 1); here the draw index of step k is
floor(k eta / period) computed from the step count, so eta = period / m re-draws exactly at the period
boundaries (the simulator accumulates time in floating point).

As eta -> 0 the post-LN, nGPT and (paper rule) pre-/peri-LN updates converge at O(eta) to
:class:`jaxattn.fields.NormalisedSelfAttention` with Q = I, K = B_h, V = V_h^T / H (the row convention
applies V^T): ``tests/test_simuformer.py`` checks the O(eta) convergence.

Run ``python -m benchmarks.simuformer`` (heavy: run under the shared lock) for the timing table of
benchmarks/README.md, "simuformer": jaxattn (adaptive Tsit5, one batched ensemble per beta, at two tolerances)
against this update (eta = 0.1, the simulator's, and finer) at the simulator's sizes, batch 512, n = 64, d = 16,
8 heads, beta up to 15 (``--beta-values`` for a subset, ``--t1`` for the horizon; ``--quick``: seconds), each
scored against a tight jaxattn reference on the same draws.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import jax
import numpy as np

NORMS = ("postln", "preln", "periln", "ngpt")
RADIUS_RULES = ("paper", "simuformer")
KQ_ENSEMBLES = ("identity", "ginibre", "goe", "gpt2")
VALUE_ENSEMBLES = ("identity", "ginibre", "qk", "minus_qk", "gpt2")


def draw_weights(rng: np.random.Generator, d: int, heads: int, kq: str = "ginibre", value: str = "identity"):
    """(B, V) stacks (heads, d, d) of the simulator's ensembles: B = G1 G2 / sqrt(d) (ginibre), (G + G^T)/sqrt(2)
    (goe), 0.02 N(0, 1) (gpt2) or I; V = N(0, 1/d) (ginibre), +-B / normV (qk, minus_qk; normV = sqrt(d),
    1 for gpt2 and identity), 0.02 N(0, 1) (gpt2) or I. Row convention: the update applies V^T."""
    B = np.empty((heads, d, d))
    V = np.empty((heads, d, d))
    for h in range(heads):
        if kq == "ginibre":
            B[h], norm = rng.standard_normal((d, d)) @ rng.standard_normal((d, d)) / math.sqrt(d), math.sqrt(d)
        elif kq == "goe":
            G = rng.standard_normal((d, d))
            B[h], norm = (G + G.T) / math.sqrt(2.0), math.sqrt(d)
        elif kq == "gpt2":
            B[h], norm = 0.02 * rng.standard_normal((d, d)), 1.0
        elif kq == "identity":
            B[h], norm = np.eye(d), 1.0
        else:
            raise ValueError(f"kq must be one of {KQ_ENSEMBLES}, got {kq!r}")
        if value == "ginibre":
            V[h] = rng.standard_normal((d, d)) / math.sqrt(d)
        elif value == "qk":
            V[h] = B[h] / norm
        elif value == "minus_qk":
            V[h] = -B[h] / norm
        elif value == "gpt2":
            V[h] = 0.02 * rng.standard_normal((d, d))
        elif value == "identity":
            V[h] = np.eye(d)
        else:
            raise ValueError(f"value must be one of {VALUE_ENSEMBLES}, got {value!r}")
    return B, V


def attention_vector(theta: np.ndarray, beta: float, B: np.ndarray, V: np.ndarray, causal: bool = False) -> np.ndarray:
    """A = (1/H) sum_h softmax(beta theta B_h theta^T) theta V_h for a batch theta (batch, n, d)."""
    n = theta.shape[-2]
    heads = B.shape[0]
    out = np.zeros_like(theta)
    for h in range(heads):
        logits = beta * (theta @ B[h]) @ np.swapaxes(theta, -1, -2)  # batched products, as the simulator's bmm
        if causal:
            logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
        logits = logits - logits.max(axis=-1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=-1, keepdims=True)
        out += w @ (theta @ V[h]) / heads
    return out


def _normalise(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def layer_update(theta, r, A, eta: float, norm: str, radius_rule: str = "paper", alpha: float = 0.2):
    """One layer of the simulator's update (module docstring); returns the new (theta, r)."""
    if norm == "postln":
        return _normalise(theta + eta * A), r
    if norm == "ngpt":
        return _normalise(theta + eta * alpha * A / np.linalg.norm(A, axis=-1, keepdims=True)), r
    if norm not in ("preln", "periln"):
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm == "periln":
        A = A / np.linalg.norm(A, axis=-1, keepdims=True)
    if radius_rule == "paper":
        rdot = np.sum(theta * A, axis=-1)
    elif radius_rule == "simuformer":
        rdot = r * np.sum(A, axis=-1)
    else:
        raise ValueError(f"radius_rule must be one of {RADIUS_RULES}, got {radius_rule!r}")
    r = r + eta * rdot
    move = A if norm == "periln" else A - np.sum(theta * A, axis=-1, keepdims=True) * theta
    return _normalise(theta + eta * move / r[..., None]), r


def run(theta0: np.ndarray, beta: float, weights, eta: float, t1: float, *, norm: str = "postln",
        radius_rule: str = "paper", causal: bool = False, period: float | None = None, save_every: int = 1,
        alpha: float = 0.2):
    """Iterate :func:`layer_update` from theta0 (batch, n, d), r = 1, for round(t1 / eta) steps.

    ``weights`` is a list of (B, V) stacks: entry p is used on [p period, (p + 1) period) (only entry 0
    when ``period`` is None). Returns the times, the directions and the radii every ``save_every`` steps.
    """
    steps = int(round(t1 / eta))
    theta = np.array(theta0, dtype=float)
    r = np.ones(theta.shape[:-1])
    ts, thetas, rs = [0.0], [theta.copy()], [r.copy()]
    for k in range(steps):
        index = 0 if period is None else min(int(math.floor(k * eta / period + 1e-9)), len(weights) - 1)
        B, V = weights[index]
        A = attention_vector(theta, beta, B, V, causal)
        theta, r = layer_update(theta, r, A, eta, norm, radius_rule, alpha)
        if (k + 1) % save_every == 0:
            ts.append((k + 1) * eta)
            thetas.append(theta.copy())
            rs.append(r.copy())
    return np.array(ts), np.stack(thetas), np.stack(rs)


def clustered_fraction(theta: np.ndarray, threshold: float = 0.999) -> np.ndarray:
    """The simulator's "density": the fraction of ordered pairs i != j with <theta_i, theta_j> > threshold,
    per member (..., n, d) -> (...)."""
    n = theta.shape[-2]
    gram = np.einsum("...id,...jd->...ij", theta, theta)
    off = ~np.eye(n, dtype=bool)
    return np.sum((gram > threshold) & off, axis=(-2, -1)) / (n * (n - 1))


# ----------------------------------------------------------------------------------------- the benchmark


def _timing(settings) -> dict:
    """Per beta and norm, on the same draws and weights, in this process (CPU seconds): jaxattn's solve (one
    batched ensemble, adaptive Tsit5 at each rtol, the clustered-pair fraction at 11 times) and this update at
    each step eta; each one's error is the max |P - P_ref| over the 11 times against a tight jaxattn reference
    (``reference_rtol``)."""
    import jax.numpy as jnp

    import jaxattn
    from jaxattn.analysis import clustered_pair_fraction
    from jaxattn.fields import NORMALISATIONS, RandomWeights, directions, polar

    betas = np.linspace(0.1, settings.beta_max, settings.betas) if settings.beta_values is None else settings.beta_values
    ts = np.linspace(0.0, settings.t1, 11)
    rows = []
    for b_index, beta in enumerate(betas):
        key = jax.random.PRNGKey(b_index)
        weights = RandomWeights(key, settings.d, heads=settings.heads, kq=settings.kq, value=settings.value)
        theta0 = np.asarray(jaxattn.initial.uniform_sphere(jax.random.fold_in(key, 1), settings.n, settings.d,
                                                           batch=settings.batch))
        Q, K, V = (np.asarray(m) for m in weights.draw(0))
        peer = [(np.einsum("hmd,hme->hde", Q, K), np.swapaxes(settings.heads * V, -1, -2))]
        for norm in settings.norms:
            field = NORMALISATIONS[norm](beta, weights=weights, causal=settings.causal)

            def jax_run(rtol):
                traj = jaxattn.simulate(field, polar(jnp.asarray(theta0)), settings.t1, ts=ts, rtol=rtol, atol=rtol,
                                        max_steps=1_000_000)
                return np.asarray(clustered_pair_fraction(directions(traj.xs), 1e-3)), int(traj.stats["num_steps"])

            reference, ref_steps = jax_run(settings.reference_rtol)
            for rtol in settings.rtols:
                jax_run(rtol)  # compiled already (tolerances are arrays); a warm run
                c0 = time.process_time()
                p, steps = jax_run(rtol)
                rows.append(dict(norm=norm, beta=float(beta), impl="jaxattn", setting=f"rtol {rtol:g}",
                                 cpu_s=time.process_time() - c0, steps=steps,
                                 error=float(np.max(np.abs(p - reference)))))
                print(json.dumps(rows[-1]), flush=True)
            for eta in settings.etas:
                c0 = time.process_time()
                _, thetas, _ = run(theta0, beta, peer, eta, settings.t1, norm=norm, causal=settings.causal,
                                   save_every=int(round(settings.t1 / eta / 10)))
                p = clustered_fraction(thetas).T
                rows.append(dict(norm=norm, beta=float(beta), impl="simuformer update (NumPy)", setting=f"eta {eta:g}",
                                 cpu_s=time.process_time() - c0, steps=int(round(settings.t1 / eta)),
                                 error=float(np.max(np.abs(p - reference)))))
                print(json.dumps(rows[-1]), flush=True)
    return {"settings": vars(settings), "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--betas", type=int, default=20, help="beta in linspace(0.1, 15, BETAS) (the simulator's grid)")
    parser.add_argument("--beta-values", type=float, nargs="+", default=None, help="these betas instead")
    parser.add_argument("--t1", type=float, default=50.0)
    parser.add_argument("--norms", default="postln,preln", help="comma-separated: " + ", ".join(NORMS))
    parser.add_argument("--etas", type=float, nargs="+", default=[0.1, 0.025], help="steps of the update (0.1: the "
                        "simulator's)")
    parser.add_argument("--rtols", type=float, nargs="+", default=[1e-4, 1e-6], help="jaxattn's tolerances")
    parser.add_argument("--out", default=None, help="append the JSON record to this file")
    args = parser.parse_args(argv)
    settings = argparse.Namespace(batch=args.batch, n=64, d=16, heads=8, beta_max=15.0, betas=args.betas, t1=args.t1,
                                  etas=args.etas, kq="ginibre", value="identity", causal=False,
                                  norms=args.norms.split(","), rtols=args.rtols, reference_rtol=1e-9,
                                  beta_values=args.beta_values)
    if args.quick:
        settings = argparse.Namespace(**{**vars(settings), "batch": 8, "n": 16, "d": 8, "heads": 2, "betas": 2,
                                         "t1": 5.0, "beta_values": None})
    record = _timing(settings)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
