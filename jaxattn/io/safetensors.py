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
import math
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


#: largest header accepted (the reference implementation's limit is 100 MB as well)
MAX_HEADER_BYTES = 100_000_000


def _header_entries(path, header: object, buffer_size: int) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """{name: (dtype, shape, start, end)} from a parsed header, every declared size checked against the file.

    The rules of the reference implementation (huggingface/safetensors, ``Metadata::validate``): each entry has
    a known dtype, a shape of non-negative ints and data_offsets [start, end] with end - start = prod(shape) x
    the dtype's size; sorted by offset, the buffers are contiguous from 0 and end exactly at the end of the file
    (no hole, no overlap, nothing shared).
    """
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header must be a JSON object, got {type(header).__name__}")
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise ValueError(f"{where}: an entry needs 'dtype', 'shape' and 'data_offsets', got {info!r:.200}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype != "BF16" and dtype not in _DTYPES:
            raise ValueError(f"{where}: unsupported dtype {dtype!r} (supported: {', '.join([*_DTYPES, 'BF16'])})")
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r:.200}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise ValueError(f"{where}: data_offsets must be [start, end] with 0 <= start <= end, got {offsets!r:.200}")
        itemsize = 2 if dtype == "BF16" else _DTYPES[dtype].itemsize
        nbytes = math.prod(shape) * itemsize  # Python ints: a hostile shape cannot overflow
        if offsets[1] - offsets[0] != nbytes:
            raise ValueError(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes but data_offsets {offsets} "
                             f"span {offsets[1] - offsets[0]}")
        if offsets[1] > buffer_size:
            raise ValueError(f"{where}: data_offsets {offsets} reach beyond the {buffer_size} data bytes of the file "
                             "(truncated or corrupt)")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for name, (_, _, start, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if start != position:
            problem = "overlaps the tensor before it" if start < position else f"leaves bytes {position}..{start} unused"
            raise ValueError(f"{path}: tensor {name!r} (data_offsets [{start}, {end}]) {problem}: the buffers of a "
                             "safetensors file are contiguous and disjoint")
        position = end
    if position != buffer_size:
        raise ValueError(f"{path}: the tensors cover {position} of the {buffer_size} data bytes after the header "
                         "(a safetensors file ends with its last tensor)")
    return entries


def read_safetensors(path: str | os.PathLike, keys=None) -> dict[str, np.ndarray]:
    """Read tensors (all, or those in ``keys``) from a local ``.safetensors`` file.

    BF16 tensors are widened to float32. Every declared size and offset is checked against the file's size
    before anything is read or allocated (`_header_entries`); a malformed or hostile file raises
    ``ValueError`` naming the file and the problem, a missing key ``KeyError``.
    """
    with open(path, "rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
        (size,) = struct.unpack("<Q", raw)
        if size > MAX_HEADER_BYTES:
            raise ValueError(f"{path}: implausible safetensors header size {size} (> {MAX_HEADER_BYTES} bytes)")
        if 8 + size > file_size:
            raise ValueError(f"{path}: the header declares {size} bytes but the file has only {file_size - 8} after "
                             "the length field (truncated or not a safetensors file)")
        text = fh.read(size)
        try:
            header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: malformed safetensors header (not UTF-8 JSON: {exc})") from exc
        entries = _header_entries(path, header, file_size - 8 - size)
        if keys is not None:
            missing = set(keys) - set(entries)
            if missing:
                raise KeyError(f"{path} has no tensors {sorted(missing)}")
        out = {}
        for name, (dtype, shape, start, end) in entries.items():
            if keys is not None and name not in keys:
                continue
            fh.seek(8 + size + start)
            buf = fh.read(end - start)
            if len(buf) != end - start:
                raise ValueError(f"{path}: tensor {name!r} ends past the end of the file (changed while reading?)")
            if dtype == "BF16":
                arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(buf, _DTYPES[dtype])
            out[name] = arr.reshape(shape)
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
