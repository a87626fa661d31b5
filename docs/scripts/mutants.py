"""Re-run the mutant evidence of docs/beyond.md and docs/normalisation.md: ``python docs/scripts/mutants.py``.

Each later model's tests must fail if its equation is changed. A *mutant* is one deliberate change of one
line of a model (a flipped sign, a dropped factor): this script copies the repository's tracked files (as
they are in the working tree) to a temporary folder, applies the mutant there as a text substitution (the
original text must occur exactly once), and runs the test that catches it. The repository itself is never
modified.

    python docs/scripts/mutants.py --list            # the mutants, their change and the test that catches it
    python docs/scripts/mutants.py NAME [NAME ...]   # run those mutants' tests (expected: each fails)
    python docs/scripts/mutants.py --all             # every mutant
    python docs/scripts/mutants.py NAME --whole-file # run the model's whole test file with -x instead, and
                                                     # report the first test that fails
    python docs/scripts/mutants.py NAME --test NODE  # run another test against the mutant

Exit status 0 when every mutant run was caught (its test failed) and the unmutated test passes
(``--check-clean`` also runs each named test on the unmutated copy). Not part of the default test suite: each
run re-compiles the model's tests (seconds to a minute per mutant).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    model: str
    path: str  # file, relative to the repository root
    old: str  # text that occurs exactly once in ``path``
    new: str
    change: str  # the mutant in words
    test: str  # the pytest node id that catches it

    @property
    def test_file(self) -> str:
        return self.test.split("::")[0]


MUTANTS: dict[str, Mutant] = {m.model: m for m in [
    Mutant("postln", "jaxattn/fields/normalised.py",
           "    def speed(self, t, r, norm_a):\n        return jnp.ones_like(r)\n",
           "    def speed(self, t, r, norm_a):\n        return 2.0 * jnp.ones_like(r)\n",
           "Post-LN speed factor s = 1 -> 2 (directions twice as slow)",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[post]"),
    Mutant("preln", "jaxattn/fields/normalised.py",
           "    def radial(self, t, r, a, norm_a):\n        return a\n",
           "    def radial(self, t, r, a, norm_a):\n        return r * a\n",
           "Pre-LN radius dr/dt = <theta, A> -> r <theta, A>",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[pre]"),
    Mutant("periln", "jaxattn/fields/normalised.py",
           "        return r * norm_a\n",
           "        return r / norm_a\n",
           "Peri-LN speed s = r |A| -> r / |A|",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[peri]"),
    Mutant("mixln", "jaxattn/fields/normalised.py",
           "jnp.where(t <= self.tau, jnp.ones_like(r), r)",
           "jnp.where(t < 0.5 * self.tau, jnp.ones_like(r), r)",
           "Mix-LN switches from Post-LN to Pre-LN speed at tau/2 instead of tau",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[mix]"),
    Mutant("ngpt", "jaxattn/fields/normalised.py",
           "        return norm_a / self.alpha\n",
           "        return norm_a * self.alpha\n",
           "nGPT speed s = |A| / alpha -> |A| alpha",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[ngpt]"),
    Mutant("sqrt", "jaxattn/fields/normalised.py",
           "jnp.sqrt(t + 1.0)",
           "jnp.sqrt(t + 2.0)",
           "sqrt-scaling speed s = sqrt(t + 1) -> sqrt(t + 2)",
           "tests/test_normalisation.py::test_velocity_matches_numpy_double_loop[sqrt]"),
    Mutant("noisy", "jaxattn/fields/noisy.py",
           "        return jnp.sqrt(2.0 / self.kappa)\n",
           "        return jnp.sqrt(1.0 / self.kappa)\n",
           "NoisyField noise sqrt(2 / kappa) -> sqrt(1 / kappa) (generator Delta / (2 kappa))",
           "tests/test_noise.py::test_diffusion_is_the_tangent_projection"),
    Mutant("sinkhorn", "jaxattn/fields/_attention.py",
           "        return log_col_mass - logsumexp(logits + u[:, None], axis=0)\n",
           "        return 0.5 * (log_col_mass - logsumexp(logits + u[:, None], axis=0))\n",
           "Sinkhorn column step v = log(rows/n) - logsumexp(...) -> half of it (a damped step)",
           "tests/test_sinkhorn.py::test_one_iteration_is_the_softmax_and_many_give_doubly_stochastic_weights"),
    Mutant("gaussian", "jaxattn/fields/gaussian.py",
           "            half = vsa @ cov\n",
           "            half = vsa @ cov.T @ self.a.T @ cov\n",
           "Gaussian ODE dSigma/dt = V Sigma A Sigma + (.)^T -> V Sigma A Sigma A^T Sigma + (.)^T",
           "tests/test_gaussian.py::test_covariance_ode_from_the_exact_start"),
    Mutant("alibi", "jaxattn/fields/decay.py",
           "        z = jnp.cumsum(jnp.exp(-self.lam * gaps / n))  # Z_j for j = 2..N\n",
           "        z = jnp.cumsum(jnp.exp(self.lam * gaps / n))  # Z_j for j = 2..N\n",
           "ALiBi normaliser Z_j = sum e^{-lambda (j-k)/N} -> sum e^{+lambda (j-k)/N}",
           "tests/test_decay.py::test_velocity_matches_a_numpy_double_loop[1.0]"),
    Mutant("staircase", "jaxattn/fields/clusters.py",
           "        w = jnp.where(off, jnp.exp(self.beta * (c - shift) + log_m - log_den[:, None]), 0.0)\n",
           "        w = jnp.where(off, jnp.exp(self.beta * (c - shift) - log_den[:, None]), 0.0)\n",
           "WeightedCircleAttention drops the cluster masses m_j from the numerator",
           "tests/test_staircase.py::test_weighted_particles_are_coincident_tokens_and_the_clock_is_a_time_change"),
    Mutant("long_context", "jaxattn/analysis/long_context.py",
           "    r = jnp.exp(-gamma * (1.0 - rho) * jnp.log(n))\n",
           "    r = jnp.exp(-gamma * (1.0 + rho) * jnp.log(n))\n",
           "long context: off-diagonal weight ratio n^{-gamma (1 - rho)} -> n^{-gamma (1 + rho)}",
           "tests/test_long_context.py::test_formula_equals_the_kernel_on_200_tokens[1.0]"),
]}


def copy_repo(dest: Path) -> None:
    """The tracked files of the working tree (with their uncommitted edits) under ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in files.decode().split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def apply(mutant: Mutant, tree: Path) -> None:
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise RuntimeError(f"mutant {mutant.model}: the text to change occurs {count} times in {mutant.path} "
                           "(the model's code moved: update docs/scripts/mutants.py)")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_pytest(tree: Path, target: str) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, "-m", "pytest", target, "-n", "0", "-q", "-x", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str | None:
    m = re.search(r"^FAILED (\S+)", output, re.M)
    return m.group(1) if m else None


def run(mutant: Mutant, whole_file: bool, check_clean: bool, test: str | None = None) -> bool:
    target = test or (mutant.test_file if whole_file else mutant.test)
    with tempfile.TemporaryDirectory(prefix="jaxattn-mutant-") as tmp:
        tree = Path(tmp)
        copy_repo(tree)
        if check_clean:
            code, out = run_pytest(tree, target)
            if code != 0:
                print(f"{mutant.model}: the UNMUTATED {target} fails already:\n{out[-2000:]}")
                return False
        apply(mutant, tree)
        code, out = run_pytest(tree, target)
    failed = first_failure(out)
    caught = code == 1 and failed is not None
    status = f"caught by {failed}" if caught else f"NOT caught (pytest exit {code})"
    print(f"{mutant.model}: {mutant.change}: {status}", flush=True)
    if not caught:
        print(out[-3000:])
    return caught


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutant names (--list shows them)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--all", action="store_true", help="run every mutant")
    parser.add_argument("--whole-file", action="store_true", help="run the model's whole test file (-x)")
    parser.add_argument("--check-clean", action="store_true", help="first check that the unmutated test passes")
    parser.add_argument("--test", help="run this pytest node id (or file) instead of the mutant's own test")
    args = parser.parse_args(argv)
    if args.list or not (args.names or args.all):
        for m in MUTANTS.values():
            print(f"{m.model:13s} {m.path}: {m.change}\n{'':13s} caught by {m.test}")
        return 0
    unknown = [n for n in args.names if n not in MUTANTS]
    if unknown:
        parser.error(f"unknown mutants {unknown}; known: {', '.join(MUTANTS)}")
    names = list(MUTANTS) if args.all else args.names
    results = [run(MUTANTS[n], args.whole_file, args.check_clean, args.test) for n in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
