"""Writes notebooks/paper_003_causal.ipynb (run: python notebooks/_paper_003_build.py). The logic lives in
jaxattn.studies.causal and jaxattn.analysis.renyi; the notebook only calls and plots."""

import pathlib

import nbformat as nbf

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s))  # noqa: E731
code = lambda s: cells.append(nbf.v4.new_code_cell(s))  # noqa: E731

md("""# Paper 003 — Clustering in causal attention masking (Karagodin, Polyanskiy, Rigollet 2024)

Reproduces Figs. 1-4 and explores Conjecture 1 with `jaxattn`. Causal self-attention (CSA): token *k* attends to
tokens *j ≤ k* (itself included), `jaxattn.SelfAttention(beta, Q, K, V, causal=True)` on the sphere and
`jaxattn.CircleSelfAttention(beta, causal=True)` in angle form (CSA-2d). Set `JAXATTN_FAST=1` for a quick
(< 1 min) run with shorter horizons and fewer runs; full size numbers are in `docs/paper_003.md`.""")
code("""import os
import numpy as np
import jax, jax.numpy as jnp
import matplotlib.pyplot as plt
import jaxattn
from jaxattn.analysis import renyi
from jaxattn.studies import causal as study

FAST = os.environ.get("JAXATTN_FAST") == "1"
key = jax.random.PRNGKey(3)
print("fast mode" if FAST else "full mode")""")
md("""## Fig. 4 — the interaction function h(x) = e^{β(cos x − 1)} sin x, β = 10
Its maximiser τ*_β (Lemma A.1) sits just below β^{-1/2}.""")
code("""beta = 10.0
x = np.linspace(-np.pi, np.pi, 2001)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(x, renyi.interaction_h(x, beta), label="h(x)")
ax.axvline(beta ** -0.5, color="r", label=r"$x=\\beta^{-1/2}$")
ax.axvline(float(renyi.tau_star(beta)), color="k", ls=":", label=r"$\\tau^*_\\beta$")
ax.legend(); ax.set_xlabel("x"); plt.show()
table = renyi.tau_star_table()
for row in zip(*table.values()):
    print("  ".join(f"{v:9.6f}" for v in row))""")
md("""## Fig. 1 — final configurations for five value matrices (d = 3, n = 32, β = 9, Q = K = I)
Adaptive Tsit5 (rtol 1e-8), T = 5000 (fast mode: 300). The sphere retraction in `simulate` keeps
max | |x| − 1 | at round-off even for V with negative eigenvalues.""")
code("""T1 = 300.0 if FAST else 5000.0
runs = study.fig1_runs(key, t1=T1, num_saves=101 if FAST else 501)
fig = plt.figure(figsize=(16, 3.5))
for i, (panel, traj) in enumerate(runs.items()):
    ax = fig.add_subplot(1, 5, i + 1, projection="3d")
    xs = np.asarray(traj.xs)
    for k in range(xs.shape[1]):
        ax.plot(*xs[:, k].T, lw=0.5)
    ax.scatter(*xs[-1].T, color="r", s=12)
    ax.set_title(f"({panel}) V = diag{study.FIG1_VALUES[panel]}", fontsize=8)
plt.show()
for panel, traj in runs.items():
    print(panel, "norm drift", f"{study.norm_drift(traj.xs):.1e}", "clusters",
          int(jaxattn.analysis.count_clusters(traj.final, delta=1.25e-3)), "steps", int(traj.stats["num_steps"]))""")
md("""## Fig. 2 — meta-stable clusters and Rényi centres (d = 2, n = 200, β = 64, δ = 4β^{-1/2})
Strong Rényi centres (red) are visually stationary (Lemma 5.1); Rényi centres (black) capture more clusters.
The first token (yellow) never moves.""")
code("""beta, n = 64.0, 200
theta0 = jaxattn.initial.uniform_circle(jax.random.PRNGKey(11), n)
times = jnp.asarray(study.FIG2_TIMES)
traj = jaxattn.simulate(jaxattn.CircleSelfAttention(beta, causal=True), theta0, float(times[-1]), ts=times,
                        rtol=1e-8, atol=1e-8)
delta = float(renyi.default_delta(beta))
r = np.asarray(renyi.renyi_centres(theta0, delta)); s = np.asarray(renyi.strong_renyi_centres(theta0, delta))
fig, axes = plt.subplots(1, 6, figsize=(18, 3.2))
for ax, t, th in zip(axes, np.asarray(times), np.asarray(traj.xs)):
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.8"))
    ax.scatter(np.cos(th), np.sin(th), s=8, color="C0")
    ax.scatter(np.cos(th[r]) * 1.08, np.sin(th[r]) * 1.08, s=14, color="k")
    ax.scatter(np.cos(th[s]) * 1.16, np.sin(th[s]) * 1.16, s=14, color="r")
    ax.scatter(np.cos(th[0]) * 1.24, np.sin(th[0]) * 1.24, s=20, color="gold")
    ax.set_title(f"t = {t:g}: {int(renyi.cluster_count_series(th))} clusters"); ax.set_aspect("equal"); ax.axis("off")
plt.show()
print("Rényi centres", r.sum(), "strong", s.sum())""")
md("""## Fig. 3 — share of particles consumed by (strong) Rényi centres
Mean and 0.1/0.9 quantiles over many runs (5000 at full size: `benchmarks/causal_statistics.py`), run as
batched ensembles. The paper does not define "consumed"; both readings are shown: within β^{-1/2} of a
centre's current position (ball), and in the same gap-0.07 cluster as a centre (cluster).""")
code("""runs_fig3 = 16 if FAST else 1000
ts3 = (0, 2, 5, 10, 20, 50, 100, 150) if FAST else (0, 1, 2, 5, 10, 20, 50, 75, 100, 150, 200, 300, 500)
stats = study.causal_statistics(jax.random.PRNGKey(5), runs_fig3, ts=ts3, chunk=250)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
for ax, kind in zip(axes, ("ball", "cluster")):
    for name, colour in (("renyi", "k"), ("strong", "r")):
        sm = study.summarise(stats[f"{name}_{kind}"])
        ax.plot(stats["ts"], sm["mean"], color=colour, label=f"{name} Rényi")
        ax.fill_between(stats["ts"], sm["q10"], sm["q90"], color=colour, alpha=0.2)
    ax.set_title(f"consumed ({kind}), {runs_fig3} runs"); ax.set_xlabel("t"); ax.legend()
plt.show()
print("mean clusters:", dict(zip(stats["ts"].tolist(), np.round(stats["clusters"].mean(0), 2).tolist())))""")
md("""## Conjecture 1 — V = diag(3, 2, 1)
The paper conjectures that every token ends at ±e₁ for any Q, K. With Q = K = I this holds in our runs; with
random non-symmetric Q, K (i.i.d. N(0, 1)) some runs stop at stable equilibria off ±e₁ (the digest found 4 of 10).
`off_axis` is max_k (1 − |⟨x_k(T), e₁⟩|).""")
code("""nruns, T = (2, 100.0) if FAST else (10, 1000.0)
for random_qk in (False, True):
    out = study.conjecture1_runs(jax.random.PRNGKey(7), nruns, beta=1.0, t1=T, random_qk=random_qk)
    print("random Q, K" if random_qk else "Q = K = I ", np.array2string(out["off_axis"], precision=2))""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
nbf.write(nb, pathlib.Path(__file__).with_name("paper_003_causal.ipynb"))
