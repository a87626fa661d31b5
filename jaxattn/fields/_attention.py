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
  (``UnnormalisedSelfAttention(..., time_rescaled=True)``) whose weights are exp(beta(<x_i, x_j> - 1))/n.

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

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Normalisation = Literal["softmax", "mean"]

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


def _exponentials(logits, causal, row_offset):
    """exp(logits - row max) with masked entries exactly 0, and the (stop-gradient) row max."""
    n = logits.shape[-1]
    rows = logits.shape[-2]
    if causal:
        row_index = row_offset + jnp.arange(rows)[:, None]
        visible = jnp.arange(n)[None, :] <= row_index
        logits = jnp.where(visible, logits, -jnp.inf)
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
    raise ValueError(f"normalisation must be 'softmax' or 'mean', got {normalisation!r}")


def attention_weights(
    logits: Float[Array, "rows n"],
    *,
    normalisation: Normalisation = "softmax",
    causal: bool = False,
    row_offset: int | Array = 0,
    log_shift: float | Array = 0.0,
) -> Float[Array, "rows n"]:
    """Attention weights w_ij from logits <q_i, k_j> (max-subtracted, optionally causal).

    ``row_offset`` is the global index of the first row (used by the blocked evaluation
    for the causal mask: row r is token ``row_offset + r`` and sees keys j <= that).
    """
    unnormalised, row_max = _exponentials(logits, causal, row_offset)
    return unnormalised * _row_scale(unnormalised, row_max, normalisation, causal, row_offset, log_shift)


def attend(
    queries: Float[Array, "n m"],
    keys: Float[Array, "nk m"],
    values: Float[Array, "nk dv"],
    *,
    normalisation: Normalisation = "softmax",
    causal: bool = False,
    log_shift: float | Array = 0.0,
    block_size: int | None = None,
) -> Float[Array, "n dv"]:
    """Apply attention: out_i = sum_j w_ij v_j with w from [`attention_weights`][jaxattn.fields.attention_weights].

    ``block_size=None`` picks by the backend ([`default_block_size`][jaxattn.fields.default_block_size]: on a CPU dense
    for n <= DEFAULT_BLOCK_SIZE and row blocks of DEFAULT_BLOCK_SIZE above); ``block_size=0``
    forces dense. For n < `SMALL_TOKENS` the softmax row sums are a separate reduction
    (the batched small-n path; module docstring), otherwise a ones column of the product.
    """
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
