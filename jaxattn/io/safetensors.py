"""Value-matrix spectra of pretrained attention layers.

Geshkovski, Letrouit, Polyanskiy, Rigollet 2023 (paper 001), Fig. 10; Karagodin,
Polyanskiy, Rigollet 2024 (paper 003), Figs. 5-6. `jaxattn.plot.plot_value_spectra`
draws them.

Reads a **user-supplied local** safetensors checkpoint (nothing is downloaded) with a small
pure-NumPy reader of the safetensors format (8-byte little-endian header length, a JSON
header ``{name: {dtype, shape, data_offsets}}``, then the raw little-endian buffers), so no
extra dependency is needed.

Per-head value matrices follow the authors' notebook ``albert_eigvals.ipynb`` (code of
paper 001): with PyTorch ``nn.Linear`` weights (shape (out, in), y = x W^T + b) and head h
occupying the rows ``hs = h*dk : (h+1)*dk`` of the value projection,

    V_h = W_O[:, hs] @ W_V[hs, :]        (hidden x hidden, rank <= dk),

acting on column vectors (biases and LayerNorm ignored). Its non-zero eigenvalues equal
those of the dk x dk matrix W_V[hs, :] @ W_O[:, hs] (AB and BA share non-zero spectra),
which is how [`value_spectra`][jaxattn.io.value_spectra] computes them. ALBERT shares one layer across depth,
so one (Q, K, V) per head is exactly paper 001's time-independent setting; the default
key names are ALBERT's (``encoder.albert_layer_groups.0.albert_layers.0.attention.``).
The paper's "V_5, V_14" are most likely 0-based heads 4 and 13 (1-based plot titles).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping

import numpy as np

__all__ = [
    "ALBERT_ATTENTION_PREFIX",
    "dominant_eigenvalue_is_real_positive",
    "read_safetensors",
    "value_matrix",
    "value_spectra",
    "write_safetensors",
]

ALBERT_ATTENTION_PREFIX = "encoder.albert_layer_groups.0.albert_layers.0.attention."

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path: str | os.PathLike, keys=None) -> dict[str, np.ndarray]:
    """Read tensors (all, or those in ``keys``) from a local ``.safetensors`` file.

    BF16 tensors are widened to float32. Raises ``ValueError`` on a malformed header.
    """
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > 100_000_000:
            raise ValueError(f"{path}: implausible safetensors header size {size}")
        try:
            header = json.loads(fh.read(size))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: malformed safetensors header") from exc
        base = 8 + size
        out = {}
        for name, info in header.items():
            if name == "__metadata__" or (keys is not None and name not in keys):
                continue
            start, end = info["data_offsets"]
            fh.seek(base + start)
            buf = fh.read(end - start)
            shape = tuple(info["shape"])
            if info["dtype"] == "BF16":
                arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
            elif info["dtype"] in _DTYPES:
                arr = np.frombuffer(buf, _DTYPES[info["dtype"]])
            else:
                raise ValueError(f"{path}: unsupported dtype {info['dtype']} for {name}")
            if arr.size != int(np.prod(shape)):
                raise ValueError(f"{path}: {name} has {arr.size} values for shape {shape}")
            out[name] = arr.reshape(shape)
    if keys is not None:
        missing = set(keys) - set(out)
        if missing:
            raise KeyError(f"{path} has no tensors {sorted(missing)}")
    return out


def write_safetensors(tensors: Mapping[str, np.ndarray], path: str | os.PathLike,
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write NumPy arrays in the safetensors format (used to make synthetic checkpoints)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if np.dtype(dt) not in _NAMES:
            raise TypeError(f"cannot store dtype {arr.dtype} ({name})")
        blob = arr.astype(dt).tobytes()
        header[name] = {"dtype": _NAMES[np.dtype(dt)], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for blob in blobs:
            fh.write(blob)


def _weights(state, prefix, value_key, output_key):
    if isinstance(state, (str, os.PathLike)):
        state = read_safetensors(state, keys=[prefix + value_key, prefix + output_key])
    try:
        wv = np.asarray(state[prefix + value_key], dtype=np.float64)
        wo = np.asarray(state[prefix + output_key], dtype=np.float64)
    except KeyError as exc:
        raise KeyError(f"checkpoint has no {exc}; pass prefix= / value_key= / output_key= "
                       "for non-ALBERT layouts") from None
    if wv.ndim != 2 or wo.ndim != 2 or wv.shape[1] != wo.shape[0]:
        raise ValueError(f"value weight {wv.shape} and output weight {wo.shape} do not compose")
    return wv, wo


def _head_slice(wv, num_heads, head):
    if wv.shape[0] % num_heads:
        raise ValueError(f"{wv.shape[0]} value rows do not split into {num_heads} heads")
    dk = wv.shape[0] // num_heads
    if not 0 <= head < num_heads:
        raise ValueError(f"head must be in [0, {num_heads}), got {head}")
    return slice(head * dk, (head + 1) * dk)


def value_matrix(state, head: int, *, num_heads: int = 16, prefix: str = ALBERT_ATTENTION_PREFIX,
                 value_key: str = "value.weight", output_key: str = "dense.weight") -> np.ndarray:
    """The full (hidden x hidden) value matrix V_h = W_O[:, hs] @ W_V[hs, :] of one head.

    ``state`` is a mapping of arrays or a path to a local safetensors file.
    """
    wv, wo = _weights(state, prefix, value_key, output_key)
    hs = _head_slice(wv, num_heads, head)
    return wo[:, hs] @ wv[hs, :]


def value_spectra(state, *, num_heads: int = 16, prefix: str = ALBERT_ATTENTION_PREFIX,
                  value_key: str = "value.weight", output_key: str = "dense.weight") -> np.ndarray:
    """Non-zero eigenvalues of every head's value matrix: (num_heads, dk) complex, each
    row sorted by decreasing modulus (the paper's order)."""
    wv, wo = _weights(state, prefix, value_key, output_key)
    rows = []
    for h in range(num_heads):
        hs = _head_slice(wv, num_heads, h)
        lam = np.linalg.eigvals(wv[hs, :] @ wo[:, hs])
        rows.append(lam[np.lexsort((-lam.real, -np.abs(lam)))])
    return np.stack(rows)


def dominant_eigenvalue_is_real_positive(eigenvalues, tol: float = 1e-9) -> np.ndarray:
    """Paper 001 §4's eigenvalue assumption per head: the top-modulus eigenvalue is real,
    positive and simple (strictly larger modulus than the next)."""
    lam = np.atleast_2d(eigenvalues)
    top, second = lam[:, 0], lam[:, 1] if lam.shape[1] > 1 else np.zeros(lam.shape[0])
    return (np.abs(top.imag) <= tol) & (top.real > tol) & (np.abs(top) > np.abs(second) + tol)
