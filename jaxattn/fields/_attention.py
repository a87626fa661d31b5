"""The one attention kernel every particle field is built on.

Given queries q_i, keys k_j and values v_j the kernel returns

    out_i = sum_j w_ij v_j,        w_ij = exp(<q_i, k_j>) / N_i,

restricted to j <= i when ``causal`` (Karagodin et al. 2024: token i attends to j <= i, itself
included), with one of two normalisations:

* ``"softmax"`` — N_i = sum_j exp(<q_i, k_j>) (Geshkovski et al. 2023 (perspective) eqs. (2.4)-(2.5);
  Geshkovski et al. 2023 (emergence)
  eq. (1.2)): the rows of w are probability vectors (the attention matrix);
* ``"mean"`` — N_i = (number of keys row i sees) * exp(shift): the unnormalised
  surrogate (USA, Geshkovski et al. 2023 (perspective) §3.3) where the partition function Z_i is replaced by n
  (by i under a causal mask). ``log_shift`` multiplies the whole row by exp(-shift),
  i.e. rescales time by exp(shift); with shift = beta this is the time-rescaled USA
  (``UnnormalisedSelfAttention(..., time_rescaled=True)``) whose weights are exp(beta(<x_i, x_j> - 1))/n;
* [`Sinkhorn`][jaxattn.Sinkhorn] ``(iterations)`` — doubly stochastic attention (Sander, Ablin, Blondel, Peyre,
  "Sinkformers: Transformers with doubly stochastic attention", AISTATS 2022, §3): the weights
  w_ij = exp(<q_i, k_j> + u_i + v_j) with row and column potentials u, v from log-domain Sinkhorn
  iterations, alternately normalising rows (to sum 1) and columns (to sum n / n_keys, i.e. 1 for
  self-attention). ``iterations`` counts the row normalisations; a column normalisation sits
  between two of them, and the last step is always a row normalisation, so the rows are exact
  probability vectors and the columns converge to n / n_keys (``Sinkhorn(1)`` is the softmax,
  as "one iteration is the original Transformer" in the Sinkformers paper; their ``max_iter``
  counts both kinds of step: our k is their 2k - 1). A causal mask is allowed, but a
  lower-triangular doubly stochastic matrix is the identity (row 1 has one entry, so column 1
  is e_1; induct), so the causal Sinkhorn weights tend to I as the iterations grow.

Numerics. Logits are max-subtracted row by row before exponentiation, so the softmax is
finite for any finite logits (tested up to 1e300); the mean normalisation adds the row
max back in log space, so it overflows only when the true velocity does.

Blocking. A dense evaluation materialises several n x n temporaries; on this CPU fresh
n x n buffers pay page faults and ran the exponentials 4x slower at n = 4096 (measured; see
benchmarks/README.md). For n > ``block_size`` (256) the rows are processed ``block_size`` at a time
with ``jax.lax.map`` (O(n * block) memory, no n x n temporary), which gives identical
results and was measured 1.6-4x faster at n = 4096 and 1.15-1.4x at n = 1024 (where an
earlier threshold of 4 blocks still ran dense). That rule is the CPU's: the default reads the
backend ([`default_block_size`][jaxattn.fields.default_block_size]), and on GPU/TPU evaluates tiles of up to 2^24 entries.

Normalising after the product. ``attend`` multiplies the unnormalised exponentials by
the values first and divides the (rows, dv) result by the row sums, instead of dividing
the (rows, n) weight matrix: n/dv times fewer divisions, measured 1.2-1.3x faster for
d = 2-3 at n = 200-1024; same result to round-off. For the softmax the values carry an
extra column of ones, so the same product also returns the row sums Z_i and the tile is
not read a further time for them (another 1.14-1.25x for d = 3, n = 256-2048).

Dispatch by shape: small n (ensembles). Below `SMALL_TOKENS` (128) tokens the softmax
takes its row sums from a separate reduction instead (``(e @ v) / sum(e)``: one einsum, max,
exp + sum, one einsum). That is the path ensembles run: ``simulate`` integrates n < 128 as one
batched state (``ensemble="auto"``) and ``jax.vmap`` turns it into batched ``einsum`` + softmax
+ ``einsum``, where the ones column costs a concatenation and a (dv + 1)-wide batched product
per evaluation. Measured (one core, float64, vmapped over B members, ``benchmarks/roofline.py
--kernel``): separate sums 1.7-3.7x faster at (B, n, d) = (128, 32, 128), (1024, 32, 3),
(256, 64, 64), within 3% for one configuration at n = 32. From n = 128 on the ones column stays
(one configuration, as ``ensemble="auto"`` runs n >= 128 member by member: it is 1.06-1.12x
faster there at d = 3, n = 128-256).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float


class Sinkhorn(eqx.Module):
    """Doubly stochastic attention normalisation (module docstring; Sander et al. 2022, Sinkformers, §3).

    Pass ``normalisation=Sinkhorn(iterations)`` to [`attend`][jaxattn.fields.attend] / [`attention_weights`][jaxattn.fields.attention_weights], or to
    the fields that accept it (``SelfAttention``, ``EuclideanSelfAttention``,
    ``RescaledSelfAttention``). ``iterations`` >= 1 is the number of row normalisations
    (1: the softmax); the marginal error of the columns decays geometrically in it, at a rate that
    worsens as the logits grow (larger beta or |Q^T K|): check ``attention_weights(...).sum(0)``
    when it matters. The iterations are unrolled by ``jax.lax.fori_loop`` with rematerialised
    steps, so reverse-mode gradients flow through them at O(iterations * n) extra memory.
    Sinkhorn attention couples every row with every column, so it is evaluated densely (O(n^2)
    memory; ``block_size`` does not apply).
    """

    iterations: int = eqx.field(static=True)

    def __init__(self, iterations: object = 20):  # validated here, with its own message
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
            raise TypeError(f"Sinkhorn iterations must be a positive int (the number of row normalisations; "
                            f"1 is the softmax), got {iterations!r}")
        if iterations < 1:
            raise ValueError(f"Sinkhorn iterations must be >= 1 (the number of row normalisations; 1 is the "
                             f"softmax), got {iterations}")
        self.iterations = int(iterations)


Normalisation = Literal["softmax", "mean"] | Sinkhorn


def check_normalisation(normalisation: object, allowed: tuple[str, ...] = ("softmax", "mean")) -> object:
    """``normalisation`` if it is one of ``allowed`` or a [`Sinkhorn`][jaxattn.Sinkhorn], else a ValueError naming them."""
    if isinstance(normalisation, Sinkhorn) or (isinstance(normalisation, str) and normalisation in allowed):
        return normalisation
    names = " or ".join(repr(a) for a in allowed)
    raise ValueError(f"normalisation must be {names} or jaxattn.fields.Sinkhorn(iterations), got {normalisation!r}")

#: rows per block in the blocked evaluation, and the n above which blocking is used (on a CPU)
DEFAULT_BLOCK_SIZE = 256

#: below this many tokens the softmax row sums come from a separate reduction (the batched
#: small-n path; module docstring, "Dispatch by shape")
SMALL_TOKENS = 128

#: GPU/TPU: the largest tile (rows x n entries, 128 MiB in float64) the default evaluates at once.
#: Provisional: not yet measured on a device (``python -m benchmarks.device`` times the
#: alternatives; see benchmarks/README.md, "Device suite").
ACCELERATOR_TILE_ENTRIES = 2**24


def default_block_size(n: int, backend: str | None = None) -> int:
    """The rows per block ``attend(..., block_size=None)`` uses at n tokens (0: dense).

    Reads the backend (``jax.default_backend()`` unless given; inside ``jit`` the arrays are
    traced, so the default backend is what a compiled kernel targets). CPU, measured
    (module docstring): dense up to n = 256, blocks of 256 rows above. GPU/TPU: one wide kernel
    is what the hardware wants, so dense while the n x n tile has at most
    `ACCELERATOR_TILE_ENTRIES` entries (n <= 4096), then blocks of that many entries
    (a multiple of 256 rows, at least 256), bounding the working set of every block.
    """
    backend = jax.default_backend() if backend is None else backend
    if backend == "cpu":
        return DEFAULT_BLOCK_SIZE if n > DEFAULT_BLOCK_SIZE else 0
    if n * n <= ACCELERATOR_TILE_ENTRIES:
        return 0
    rows = ACCELERATOR_TILE_ENTRIES // n
    return max(DEFAULT_BLOCK_SIZE, rows - rows % DEFAULT_BLOCK_SIZE)


def _masked(logits, causal, row_offset):
    """The logits with the entries a causal mask hides set to -inf (row r is token row_offset + r)."""
    if not causal:
        return logits
    row_index = row_offset + jnp.arange(logits.shape[-2])[:, None]
    visible = jnp.arange(logits.shape[-1])[None, :] <= row_index
    return jnp.where(visible, logits, -jnp.inf)


def sinkhorn_potentials(logits: Float[Array, "rows n"], normalisation: Sinkhorn
                        ) -> tuple[Float[Array, " rows"], Float[Array, " n"]]:
    """Row and column potentials (u, v) of [`Sinkhorn`][jaxattn.Sinkhorn] attention: w_ij = exp(logits_ij + u_i + v_j).

    Row step: u_i = -logsumexp_j(logits_ij + v_j) (rows sum to 1); column step:
    v_j = log(rows / n) - logsumexp_i(logits_ij + u_i) (columns sum to rows / n); ``normalisation.iterations``
    row steps with a column step between two of them, the last step a row step. Entries set to
    -inf (a mask) stay exactly 0. Each step is rematerialised in the backward pass
    (``jax.checkpoint``), so a gradient stores the potentials, not an n x n matrix per step.
    For square logits the potentials give the entropic transport value of the empirical measure
    ([`jaxattn.analysis.sinkhorn_transport_cost`][jaxattn.analysis.sinkhorn_transport_cost]).
    """
    rows, cols = logits.shape[-2], logits.shape[-1]
    log_col_mass = jnp.log(jnp.asarray(rows / cols, logits.dtype))

    def row_step(v):
        return -logsumexp(logits + v[None, :], axis=1)

    @jax.checkpoint
    def cycle(_, v):
        u = row_step(v)
        return log_col_mass - logsumexp(logits + u[:, None], axis=0)

    v = jax.lax.fori_loop(0, normalisation.iterations - 1, cycle, jnp.zeros(cols, logits.dtype))
    return row_step(v), v


def _sinkhorn_log_weights(logits, normalisation: Sinkhorn):
    """log w_ij = logits_ij + u_i + v_j ([`sinkhorn_potentials`][jaxattn.fields.sinkhorn_potentials])."""
    u, v = sinkhorn_potentials(logits, normalisation)
    return logits + u[:, None] + v[None, :]


def _exponentials(logits, causal, row_offset):
    """exp(logits - row max) with masked entries exactly 0, and the (stop-gradient) row max."""
    logits = _masked(logits, causal, row_offset)
    row_max = jnp.max(logits, axis=-1, keepdims=True)
    # a fully masked row (max -inf) gets a finite shift, so its exponentials are exactly 0. A clamp,
    # not where(isfinite(...)): measured 1.4-1.6x faster vmapped at (1024, 32, 3) and (128, 32, 128)
    row_max = jax.lax.stop_gradient(jnp.maximum(row_max, jnp.finfo(logits.dtype).min))
    return jnp.exp(logits - row_max), row_max


def _row_scale(unnormalised, row_max, normalisation, causal, row_offset, log_shift):
    """The factor 1/N_i e^{row max} that turns exp(logits - row max) into weights (rows, 1)."""
    n = unnormalised.shape[-1]
    rows = unnormalised.shape[-2]
    if normalisation == "softmax":
        return 1.0 / jnp.sum(unnormalised, axis=-1, keepdims=True)
    if normalisation == "mean":
        if causal:
            count = (row_offset + jnp.arange(rows)[:, None] + 1).astype(unnormalised.dtype)
        else:
            count = jnp.asarray(n, unnormalised.dtype)
        return jnp.exp(row_max - log_shift) / count
    check_normalisation(normalisation)  # raises for a string it does not know
    raise TypeError(f"{normalisation!r} weights are not a row scale of the exponentials")


def attention_weights(
    logits: Float[Array, "rows n"],
    *,
    normalisation: Normalisation | str = "softmax",  # checked by check_normalisation, with its own message
    causal: bool = False,
    row_offset: int | Array = 0,
    log_shift: float | Array = 0.0,
) -> Float[Array, "rows n"]:
    """Attention weights w_ij from logits <q_i, k_j> (max-subtracted, optionally causal).

    ``row_offset`` is the global index of the first row (used by the blocked evaluation
    for the causal mask: row r is token ``row_offset + r`` and sees keys j <= that).
    With ``normalisation=Sinkhorn(k)`` the rows are the whole matrix (``row_offset`` must be 0).
    """
    check_normalisation(normalisation)
    if isinstance(normalisation, Sinkhorn):
        return jnp.exp(_sinkhorn_log_weights(_masked(logits, causal, row_offset), normalisation))
    unnormalised, row_max = _exponentials(logits, causal, row_offset)
    return unnormalised * _row_scale(unnormalised, row_max, normalisation, causal, row_offset, log_shift)


def attend(
    queries: Float[Array, "n m"],
    keys: Float[Array, "nk m"],
    values: Float[Array, "nk dv"],
    *,
    normalisation: Normalisation | str = "softmax",  # checked by check_normalisation, with its own message
    causal: bool = False,
    log_shift: float | Array = 0.0,
    block_size: int | None = None,
) -> Float[Array, "n dv"]:
    """Apply attention: out_i = sum_j w_ij v_j with w from [`attention_weights`][jaxattn.fields.attention_weights].

    ``block_size=None`` picks by the backend ([`default_block_size`][jaxattn.fields.default_block_size]: on a CPU dense
    for n <= DEFAULT_BLOCK_SIZE and row blocks of DEFAULT_BLOCK_SIZE above); ``block_size=0``
    forces dense. For n < `SMALL_TOKENS` the softmax row sums are a separate reduction
    (the batched small-n path; module docstring), otherwise a ones column of the product.
    ``normalisation=Sinkhorn(k)`` is always dense (its column sums couple all rows).
    """
    check_normalisation(normalisation)
    if isinstance(normalisation, Sinkhorn):
        logits = _masked(queries @ keys.T, causal, 0)
        return jnp.exp(_sinkhorn_log_weights(logits, normalisation)) @ values
    n = queries.shape[0]
    if block_size is None:
        block_size = default_block_size(n)

    dv = values.shape[1]
    separate_sum = normalisation == "softmax" and n < SMALL_TOKENS
    if normalisation == "softmax" and not separate_sum:
        # a ones column: the product also returns the row sums
        values = jnp.concatenate([values, jnp.ones((values.shape[0], 1), values.dtype)], axis=1)

    def rows(q_block, offset):
        unnormalised, row_max = _exponentials(q_block @ keys.T, causal, offset)
        # normalise after the product: rows x dv operations instead of rows x n divisions
        out = unnormalised @ values
        if separate_sum:  # small n: vmaps to batched einsum + softmax + einsum
            return out / jnp.sum(unnormalised, axis=-1, keepdims=True)
        if normalisation == "softmax":
            return out[:, :dv] / out[:, dv:]
        return out * _row_scale(unnormalised, row_max, normalisation, causal, offset, log_shift)

    if block_size <= 0 or block_size >= n:
        return rows(queries, 0)
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n
    q_padded = jnp.pad(queries, ((0, pad), (0, 0)))
    q_blocks = q_padded.reshape(num_blocks, block_size, queries.shape[1])
    offsets = jnp.arange(num_blocks) * block_size
    out = jax.lax.map(lambda args: rows(*args), (q_blocks, offsets))
    return out.reshape(num_blocks * block_size, dv)[:n]
