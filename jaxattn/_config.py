"""Numerical precision policy.

jaxattn is a research library whose tests compare against theory to 1e-9 and whose
metastable dynamics drift on exponentially long time scales, so **float64 is the
default**: importing `jaxattn` switches on JAX's ``jax_enable_x64`` flag (the
documented mechanism; it is a process-wide JAX setting, so import jaxattn *before*
creating arrays you want in float64).

float32 is an explicit opt-in: pass float32 initial conditions (for example
``jaxattn.initial.uniform_sphere(key, n, d, dtype=jnp.float32)``) and the whole solve,
including diffrax's internal state, stays in float32. It is 2-4.5x faster on CPU for
n >= 256 (measurement: ``docs/solving.md``) but unsafe for

* long metastable runs (papers 002/003): 1 - <x_i, x_j> cannot be resolved below ~1e-7,
  so the slow drift between clusters freezes;
* the rescaled dynamics of paper 001, whose logits grow like e^{2t} and overflow float32
  near t = 42;
* tolerances below ~1e-6 and finite-difference gradient checks;
* the spherical-harmonic PDE solver (s2fft needs float64).

To keep float32 as JAX's default instead, set the environment variable
``JAXATTN_ENABLE_X64=0`` before importing jaxattn.
"""

from __future__ import annotations

import os

import jax


def enable_x64() -> None:
    """Switch JAX to 64-bit mode unless ``JAXATTN_ENABLE_X64=0`` is set."""
    if os.environ.get("JAXATTN_ENABLE_X64", "1") != "0":
        jax.config.update("jax_enable_x64", True)


enable_x64()
