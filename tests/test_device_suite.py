"""The device suite's quick mode (``python -m benchmarks.device --quick``) on the CPU, and the rules
that read the backend (``ensemble="auto"``, the kernel's row blocks).

The suite itself is what runs on an accelerator (benchmarks/README.md, "Device suite"); here it runs
at tiny sizes so that it cannot rot: every section must be present and finish, and every accuracy
row must meet its tolerance against its CPU reference (NumPy oracles of the equations, the dense
kernel for the fast paths, the same program pinned to the CPU) or say why it was skipped.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import device
from jaxattn.fields import attend, default_block_size
from jaxattn.solve import backend_of, resolve_ensemble


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("device")
    device.main(["--quick", "--out", str(out)])
    return json.loads((out / "device.json").read_text()), (out / "device.md").read_text()


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_every_section_present_and_ok(quick_run):
    result, table = quick_run
    assert result["meta"]["backend"] == jax.default_backend() and result["meta"]["quick"]
    assert set(result["sections"]) == set(device.SECTIONS)
    for name, sec in result["sections"].items():
        assert sec["status"] == "ok", (name, sec["status"], sec.get("traceback"))
        assert sec["rows"], name
        assert f"## {name}" in table


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_accuracy_rows_meet_their_tolerance(quick_run):
    result, _ = quick_run
    rows = result["sections"]["accuracy"]["rows"]
    checked = [r for r in rows if r["status"] != "skipped"]
    assert len(checked) >= 20
    for r in checked:
        assert r["status"] == "ok" and r["max_abs_diff"] / r["scale"] <= r["tol"], r
    for r in rows:  # a skip names its reason: a missing package or the quick mode, never the budget
        if r["status"] == "skipped":
            assert "needs" in r["note"] or "--quick" in r["note"], r
    # the independent oracles ran (not only the same code on the same CPU)
    refs = {r["reference"] for r in checked}
    assert {"numpy oracle", "dense on cpu", "exact: rotation angle"} <= refs


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_measurement_rows(quick_run):
    result, _ = quick_run
    s = result["sections"]
    dense = [r for r in s["dense_rhs"]["rows"] if r["status"] == "ok"]
    assert dense and all(r["wall_s"] > 0 and 0 < r["roofline"] < np.inf for r in dense)
    assert {r["mode"] for r in s["ensembles"]["rows"] if r["status"] == "ok"} == {"batched", "vmap", "map"}
    assert all(r["ratio"] > 0 for r in s["gradients"]["rows"])
    (pd,) = s["phase_diagram"]["rows"]
    assert pd["wall_s"] > 0 and pd["status"] == "ok"


def test_compare_row_flags_a_discrepancy():
    ref = np.linspace(-2.0, 2.0, 9)
    ok = device.compare_row("x", "cpu", ref + 1e-14, ref, 1e-12, "cpu")
    bad = device.compare_row("x", "cpu", ref + 1e-9, ref, 1e-12, "cpu")
    nan = device.compare_row("x", "cpu", ref * np.nan, ref, 1e-12, "cpu")
    assert ok["status"] == "ok" and bad["status"] == "FAIL" and nan["status"] == "FAIL"
    assert bad["max_abs_diff"] == pytest.approx(1e-9, rel=1e-3) and bad["scale"] == 2.0


def test_auto_ensemble_reads_the_backend():
    assert resolve_ensemble("auto", 256, "cpu").name == "map"
    assert resolve_ensemble("auto", 32, "cpu").name == "batched"
    assert resolve_ensemble("auto", 256, "gpu").name == "batched" == resolve_ensemble("auto", 256, "tpu").name
    assert resolve_ensemble("vmap", 256, "gpu").name == "vmap"
    cpu_x = jax.device_put(jnp.ones((2, 3)), jax.devices("cpu")[0])
    assert backend_of(cpu_x) == "cpu"
    assert backend_of(np.ones(3)) == jax.default_backend()
    seen = []
    jax.jit(lambda x: seen.append(backend_of(x)) or x)(cpu_x)  # traced: the default backend
    assert seen == [jax.default_backend()]


def test_kernel_blocks_read_the_backend():
    assert [default_block_size(n, "cpu") for n in (256, 257, 65536)] == [0, 256, 256]
    assert [default_block_size(n, "gpu") for n in (256, 4096, 4097, 16384, 65536)] == [0, 0, 3840, 1024, 256]
    assert default_block_size(1000) == default_block_size(1000, jax.default_backend())
    # whatever the rule picks, the blocked result is the dense one
    x = jax.random.normal(jax.random.PRNGKey(0), (600, 3))
    for block in (None, 256, 384):
        np.testing.assert_allclose(attend(x, x, x, block_size=block), attend(x, x, x, block_size=0),
                                   rtol=1e-13, atol=1e-13)
