"""Loaders refuse hostile files: every declared size checked against the file before anything is read or
allocated, and every malformed file a clear error that names the file and the problem.

Oracles: the safetensors format's rules (huggingface/safetensors: 8-byte little-endian header length, a JSON
header {name: {dtype, shape, data_offsets}}, buffers contiguous from 0 to the end of the file), the old
tag-stripping regex (the linear scanner must return the same text), and hand-made run directories.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from jaxattn import io
from jaxattn.sentiment.data import read_csv, strip_tags, tokenize


def _file(tmp_path, header, data=b"", *, size=None, name="x.safetensors"):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path = tmp_path / name
    path.write_bytes(struct.pack("<Q", len(text) if size is None else size) + text + data)
    return path


F64 = np.arange(4, dtype="<f8")  # 32 bytes


@pytest.mark.parametrize("case, header, data, size, match", [
    ("negative offsets read the header", {"a": {"dtype": "U8", "shape": [16], "data_offsets": [-16, 0]}},
     b"", None, "data_offsets must be"),
    ("overlapping tensors", {"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},
                             "b": {"dtype": "F64", "shape": [2], "data_offsets": [8, 24]}},
     F64.tobytes(), None, "overlaps"),
    ("header longer than the file", b'{}', b"", 4096, "declares 4096 bytes"),
    ("shape [1e12] in a 100-byte file", {"a": {"dtype": "F64", "shape": [10**12], "data_offsets": [0, 8 * 10**12]}},
     F64.tobytes(), None, "reach beyond"),
    ("shape and offsets disagree", {"a": {"dtype": "F64", "shape": [10**12], "data_offsets": [0, 32]}},
     F64.tobytes(), None, "needs 8000000000000 bytes"),
    ("a hole between tensors", {"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                                "b": {"dtype": "F64", "shape": [2], "data_offsets": [16, 32]}},
     F64.tobytes(), None, "unused"),
    ("trailing bytes", {"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}}, F64.tobytes(), None,
     "cover 16 of the 32"),
    ("float shape", {"a": {"dtype": "F64", "shape": [4.0], "data_offsets": [0, 32]}}, F64.tobytes(), None,
     "shape must be"),
    ("bool shape", {"a": {"dtype": "F64", "shape": [True], "data_offsets": [0, 8]}}, F64.tobytes()[:8], None,
     "shape must be"),
    ("unknown dtype", {"a": {"dtype": "C128", "shape": [2], "data_offsets": [0, 32]}}, F64.tobytes(), None,
     "unsupported dtype"),
    ("missing field", {"a": {"dtype": "F64", "shape": [4]}}, F64.tobytes(), None, "needs 'dtype'"),
    ("header not an object", [1, 2], b"", None, "must be a JSON object"),
    ("header not UTF-8", b"\xff\xfe{}", b"", None, "not UTF-8 JSON"),
    ("header too large", b"{}", b"", 10**9, "implausible"),
])
def test_safetensors_refuses_hostile_files(tmp_path, case, header, data, size, match):
    path = _file(tmp_path, header, data, size=size)
    with pytest.raises(ValueError, match=match) as info:
        io.read_safetensors(path)
    assert str(path) in str(info.value), case


def test_safetensors_reads_valid_files_and_short_files(tmp_path):
    header = {"__metadata__": {"format": "pt"}, "b": {"dtype": "F64", "shape": [2], "data_offsets": [16, 32]},
              "a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},
              "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [32, 32]}}
    out = io.read_safetensors(_file(tmp_path, header, F64.tobytes()))
    np.testing.assert_array_equal(out["a"], F64[:2])
    np.testing.assert_array_equal(out["b"], F64[2:])
    assert out["e"].shape == (0, 3)
    (tmp_path / "short").write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="shorter than"):
        io.read_safetensors(tmp_path / "short")


def _spec_valid(entries, data_size):
    """The format's layout rule, written independently: sizes match, buffers contiguous from 0 to the end."""
    spans = []
    for info in entries.values():
        shape, offsets = info["shape"], info["data_offsets"]
        if not all(type(v) is int and v >= 0 for v in [*shape, *offsets]):
            return False
        if offsets[1] - offsets[0] != int(np.prod(shape, dtype=object)) * _SIZES[info["dtype"]]:
            return False
        spans.append(tuple(offsets))
    position = 0
    for start, end in sorted(spans):
        if start != position:
            return False
        position = end
    return position == data_size


_ints = st.one_of(st.integers(-40, 80), st.sampled_from([2**63, 2**64 + 3, 10**12, -(2**63)]))
_SIZES = {"F64": 8, "F32": 4, "U8": 1, "BF16": 2}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(shapes=st.lists(st.lists(st.integers(0, 5), max_size=2), min_size=2, max_size=2),
       dtypes=st.lists(st.sampled_from(list(_SIZES)), min_size=2, max_size=2),
       hostile_offsets=st.lists(st.one_of(st.none(), st.tuples(_ints, _ints)), min_size=2, max_size=2),
       hostile_shapes=st.lists(st.one_of(st.none(), st.sampled_from([[-1], [10**12], [2**64], [1.5], ["2"]])),
                               min_size=2, max_size=2),
       extra_bytes=st.sampled_from([0, 0, 0, 8, -8]))
def test_fuzz_safetensors_layouts(tmp_path_factory, shapes, dtypes, hostile_offsets, hostile_shapes, extra_bytes):
    """A valid two-tensor layout, then some of its offsets/shapes/the data size replaced by hostile values: the
    reader returns exactly the bytes at each declared place when the layout is still valid (the rule above)
    and a ValueError naming the file otherwise; nothing is read outside the file."""
    header, position = {}, 0
    for name, dt, shape, off, bad_shape in zip("ab", dtypes, shapes, hostile_offsets, hostile_shapes):
        nbytes = int(np.prod(shape)) * _SIZES[dt]
        header[name] = {"dtype": dt, "shape": shape if bad_shape is None else bad_shape,
                        "data_offsets": [position, position + nbytes] if off is None else list(off)}
        position += nbytes
    data_size = max(position + extra_bytes, 0)
    raw = np.random.default_rng(0).integers(0, 255, data_size, dtype=np.uint8).tobytes()
    path = _file(tmp_path_factory.mktemp("fuzz"), header, raw)
    valid = _spec_valid(header, data_size)
    event("valid layout" if valid else "hostile layout")
    if not valid:
        with pytest.raises(ValueError, match=re.escape(str(path))):
            io.read_safetensors(path)
        return
    out = io.read_safetensors(path)
    for name, info in header.items():
        start, end = info["data_offsets"]
        got = out[name]
        assert got.shape == tuple(info["shape"])
        if info["dtype"] == "BF16":
            got = (got.view(np.uint32) >> 16).astype("<u2")
        assert got.tobytes() == raw[start:end]


# ----------------------------------------------------------------------------- sentiment text and files


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="<>a b'/", max_size=40))
def test_strip_tags_equals_the_tag_regex(text):
    """The linear scanner returns what re.sub(r"<[^>]+>", " ", text) returns (the old, quadratic definition)."""
    assert strip_tags(text) == re.sub(r"<[^>]+>", " ", text)


def test_tokenize_hostile_text_is_linear():
    """200,000 '<' took 87 s (the regex rescans the rest of the text from every '<'); the scanner reads the text a
    bounded number of times. The same results on inputs 10x longer than the slowest case of the old code: run in
    a subprocess with a generous limit (the old code needs ~87 s for the first input alone)."""
    code = ("from jaxattn.sentiment.data import tokenize\n"
            "assert tokenize('<' * 200_000) == []\n"
            "assert tokenize('<b' * 1_000_000) == ['b'] * 1_000_000\n"  # no '>': nothing is a tag
            "assert tokenize('<>' * 1_000_000) == []\n"
            "assert tokenize('x <z ' * 500_000) == ['x', 'z'] * 500_000\n"
            "assert tokenize('<' * 1_000_000 + '> good') == ['good']\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert tokenize("<<b <c>x") == ["x"] and tokenize("x<>z") == ["x", "z"]


@pytest.mark.parametrize("content, match", [
    (b"review,sentiment\n\"good\",positive\n\xff\xfe,negative\n", "is not UTF-8"),
    (b"review,sentiment\n\"" + b"good " * 40_000 + b"\",positive\n", "not a readable CSV"),  # csv's field limit
    (b"review,sentiment\n\"good\"\n", "fewer fields"),
    (b"text,label\nfoo,maybe\n", "label 'maybe'"),
    (b"words,score\nfoo,1\n", "needs a text column"),
    (b"review,sentiment\n", "has no rows"),
])
def test_sentiment_csv_errors_name_the_file(tmp_path, content, match):
    path = tmp_path / "reviews.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        read_csv(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- sentiment run directories


def _run_dir(tmp_path, words=("<pad>", "<unk>", "good", "bad", "plot")):
    """A run directory with a fresh (untrained) model saved as its checkpoint: what `train` writes."""
    import equinox as eqx

    from jaxattn.sentiment.training import DataConfig, TrainConfig, _new_model, _optimizer, save_checkpoint

    cfg = TrainConfig(dim=2, epochs=1)
    (tmp_path / "config.json").write_text(json.dumps({"train": cfg.__dict__, "data": DataConfig("synthetic").__dict__}))
    (tmp_path / "vocab.json").write_text(json.dumps(list(words)))
    model = _new_model(cfg, len(words))
    save_checkpoint(tmp_path, model, _optimizer(cfg).init(eqx.filter(model, eqx.is_array)), 1)
    return model


def test_sentiment_run_without_checkpoint_raises(tmp_path):
    """A missing checkpoint.eqx used to load a random model silently (and `explain` printed its verdict)."""
    from jaxattn.sentiment.training import load_run

    _run_dir(tmp_path)
    (tmp_path / "checkpoint.eqx").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "checkpoint.eqx")) + " is missing"):
        load_run(tmp_path)


@pytest.mark.parametrize("name, content, match", [
    ("config.json", "{not json", "config.json is not valid JSON"),
    ("config.json", "[1, 2]", "config.json must hold"),
    ("config.json", json.dumps({"train": {"dim": 2}, "data": {"source": "synthetic", "colour": 1}}),
     "settings this version does not know: \\['colour'\\]"),
    ("config.json", json.dumps({"train": {"dim": "two"}, "data": {}}), "config.json: invalid TrainConfig"),
    ("config.json", json.dumps({"train": [], "data": {}}), "must be a JSON object"),
    ("vocab.json", json.dumps({"a": 1}), "vocab.json must be a JSON list"),
    ("vocab.json", json.dumps(["<pad>", "<unk>", "good", "bad", "plot", "extra"]), "written for other settings"),
    ("checkpoint.eqx", None, "checkpoint.eqx cannot be read"),  # truncated
    ("history.json", "{}", "history.json must hold a JSON list"),
])
def test_sentiment_malformed_run_files_name_the_file(tmp_path, name, content, match):
    from jaxattn.sentiment.training import load_run

    _run_dir(tmp_path)
    path = tmp_path / name
    if content is None:
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        load_run(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_explain_warns_when_no_word_is_known(tmp_path):
    """A text whose words are all <unk> (or that has no word at all) has a prediction that does not depend on it:
    explain says so, in the Explanation, in its printed form, and as a UserWarning; a text with a known word
    does not warn."""
    from jaxattn.sentiment.analysis import explain

    model = _run_dir(tmp_path)
    from jaxattn.sentiment.data import Vocabulary

    vocab = Vocabulary(("<pad>", "<unk>", "good", "bad", "plot"))
    for text in ("zzz qqq xyzzy", "<b>the and of</b>"):
        with pytest.warns(UserWarning, match="the prediction below is the model's output for an empty/unknown"):
            out = explain(model, vocab, text, seq_len=8)
        assert out.format().startswith("warning: ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = explain(model, vocab, "zzz good qqq", seq_len=8)
    assert out.warning is None and not out.format().startswith("warning")
