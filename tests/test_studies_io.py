"""Value-matrix spectra reader on synthetic safetensors checkpoints (paper 001 Fig. 10)."""

import json
import struct

import numpy as np
import pytest

from jaxattn import io


def _checkpoint(rng, hidden, heads, dtype=np.float32):
    p = io.ALBERT_ATTENTION_PREFIX
    return {p + name: rng.standard_normal((hidden, hidden)).astype(dtype) / np.sqrt(hidden)
            for name in ("query.weight", "key.weight", "value.weight", "dense.weight")}


def test_roundtrip_and_header(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"a": rng.standard_normal((3, 4)), "b": np.arange(5, dtype=np.int64),
               "c": rng.standard_normal(7).astype(np.float16)}
    path = tmp_path / "x.safetensors"
    io.write_safetensors(tensors, path, metadata={"format": "pt"})
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    assert header["a"]["dtype"] == "F64" and header["b"]["shape"] == [5]
    back = io.read_safetensors(path)
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)
    assert set(io.read_safetensors(path, keys=["a"])) == {"a"}
    with pytest.raises(KeyError):
        io.read_safetensors(path, keys=["zzz"])
    # bfloat16: the top 16 bits of float32
    bf = tmp_path / "bf.safetensors"
    vals = np.array([1.0, -2.5, 3.140625], np.float32)
    blob = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    head = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(blob)]}}).encode()
    bf.write_bytes(struct.pack("<Q", len(head)) + head + blob)
    np.testing.assert_array_equal(io.read_safetensors(bf)["w"], vals)
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(ValueError):
        io.read_safetensors(tmp_path / "bad.safetensors")


def test_value_spectra_match_full_matrices(tmp_path):
    rng = np.random.default_rng(1)
    hidden, heads = 256, 4
    dk = hidden // heads
    state = _checkpoint(rng, hidden, heads)
    path = tmp_path / "model.safetensors"
    io.write_safetensors(state, path)
    spectra = io.value_spectra(path, num_heads=heads)
    assert spectra.shape == (heads, dk)
    for h in range(heads):
        V = io.value_matrix(path, h, num_heads=heads)
        assert V.shape == (hidden, hidden) and np.linalg.matrix_rank(V) == dk
        full = np.linalg.eigvals(V)
        nonzero = full[np.abs(full) > 1e-8]
        assert len(nonzero) == dk
        key = lambda z: (round(z.real, 8), round(z.imag, 8))  # noqa: E731
        np.testing.assert_allclose(sorted(nonzero, key=key), sorted(spectra[h], key=key), rtol=1e-8, atol=1e-12)
    assert np.all(np.diff(np.abs(spectra), axis=1) <= 1e-12)  # sorted by decreasing modulus


def test_planted_dominant_eigenvalues():
    rng = np.random.default_rng(2)
    hidden, heads, dk = 32, 2, 16
    p = io.ALBERT_ATTENTION_PREFIX
    wv = rng.standard_normal((hidden, hidden)) * 0.05
    wo = rng.standard_normal((hidden, hidden)) * 0.05
    # head 0: W_V[hs] @ W_O[:, hs] = M with a planted real dominant eigenvalue 3
    # head 1: a planted dominant complex pair 2 +- 2i
    for h, block in ((0, np.diag([3.0] + [0.1] * (dk - 1))),
                     (1, np.block([[np.array([[2.0, -2.0], [2.0, 2.0]]), np.zeros((2, dk - 2))],
                                   [np.zeros((dk - 2, 2)), 0.1 * np.eye(dk - 2)]]))):
        hs = slice(h * dk, (h + 1) * dk)
        left = rng.standard_normal((dk, hidden))
        right = np.linalg.pinv(left)  # left @ right = I_dk
        wv[hs, :] = block @ left
        wo[:, hs] = right
    lam = io.value_spectra({p + "value.weight": wv, p + "dense.weight": wo}, num_heads=heads)
    assert lam[0, 0] == pytest.approx(3.0)
    assert abs(lam[1, 0]) == pytest.approx(2 * np.sqrt(2))
    assert io.dominant_eigenvalue_is_real_positive(lam).tolist() == [True, False]
    with pytest.raises(ValueError, match="heads"):
        io.value_spectra({p + "value.weight": wv, p + "dense.weight": wo}, num_heads=5)
    with pytest.raises(KeyError):
        io.value_spectra({"x": wv}, num_heads=2)


@pytest.mark.slow
def test_albert_xlarge_shapes(tmp_path):  # T31 at full size: hidden 2048, 16 heads of 128
    rng = np.random.default_rng(3)
    state = _checkpoint(rng, 2048, 16)
    path = tmp_path / "albert.safetensors"
    io.write_safetensors(state, path)
    spectra = io.value_spectra(path)
    V = io.value_matrix(path, 4)
    assert np.linalg.matrix_rank(V) == 128
    full = np.linalg.eigvals(V)
    nonzero = np.sort_complex(full[np.abs(full) > 1e-4])
    np.testing.assert_allclose(nonzero, np.sort_complex(spectra[4]), rtol=1e-8)
