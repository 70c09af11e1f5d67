"""Fuzzing the metadata parser and the sampling functions: only the documented errors, never another exception.

The contract: :mod:`edgevc.spec` raises :class:`~edgevc.errors.SpecError` for
anything that is not valid metadata (and what it accepts round-trips through
JSON unchanged); :mod:`edgevc.sampling` raises ``ValueError`` (SpecError is
one) for arguments it documents as invalid, and otherwise returns indices
inside the video, counts the streaming and offline twins agree on, and
finite model input. A TypeError, IndexError, OverflowError, RecursionError,
ZeroDivisionError or UnicodeDecodeError is a bug.

Each property runs twice: ``fast`` (CI, 1,000 examples; 300 for the one
that writes a file per example) and ``@pytest.mark.slow``, where each subject
gets at least 100,000 examples: the three parser properties 34,000 each
(102,000), the four sampling properties 25,000 each (100,000). The fast runs
are derandomized (CI reproducible), the slow ones explore anew each time;
the example database is off (nothing written into the repo).
atheris is not used: it is not installed here (no pip installs on this
machine) and hypothesis already drives every function below.
The finds, fixed with these tests (and pinned in
:func:`test_what_the_fuzzing_found_is_a_validation_error`): a JSON nesting of
thousands of levels, an integer beyond float range or of more than 4300
digits, a non-UTF-8 ``edgevc.json``, infinite/NaN timestamps or fps, and a
subnormal fps (2.2e-313, found by the 25k run) each raised a bare Python
error (RecursionError, OverflowError, ValueError from int(), UnicodeDecodeError)
instead of the validation error.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgevc.errors import SpecError
from edgevc.sampling import (
    Aggregator,
    FpsResampler,
    StreamingWindow,
    assemble,
    clip_indices,
    eval_clips,
    preprocess_frame,
    resample_indices,
    stream_clips,
    topk,
    window_offsets,
    window_starts,
)
from edgevc.sampling.preprocess import resized_size
from edgevc.spec import AggSpec, ArtifactMeta, ClipSpec, PreprocSpec, TensorSpec

FAST = 1000
# slow: >= 100k examples for each of the two subjects: the 3 parser properties 34k each, the 4 sampling ones 25k
SPEC_RUNS = [pytest.param(FAST, id="fast"), pytest.param(34_000, id="34k", marks=pytest.mark.slow)]
SAMPLING_RUNS = [pytest.param(FAST, id="fast"), pytest.param(25_000, id="25k", marks=pytest.mark.slow)]


def run(examples: int, *strategies, **kw_strategies):
    """Decorate a property: run it with ``examples`` examples (no deadline, no database, reproducible)."""
    def wrap(prop):
        cfg = settings(max_examples=examples, deadline=None, database=None, derandomize=examples <= FAST,
                       suppress_health_check=list(HealthCheck))
        cfg(given(*strategies, **kw_strategies)(prop))()
    return wrap


# ------------------------------------------------------------------------------------------ metadata

BASE = ArtifactMeta(
    model="x3d_xs", labels=("a", "b", "c"), clip=ClipSpec(4, stride=12, fps=30.0, hop=2),
    preproc=PreprocSpec(crop=(160, 160), resize_short=182, mean=(0.45,) * 3, std=(0.225,) * 3),
    agg=AggSpec(method="ema", alpha=0.3), input_name="clip", input_shape=(1, 3, 4, 160, 160), output_name="logits",
    params=3_794_274, macs_per_clip=605_256_512, precision="int8", target="openvino", model_file="model.xml",
    files={"model.xml": "a" * 64, "model.bin": "b" * 64}, state=(TensorSpec("state_0", (1, 8, 2, 4, 4)),),
    weights_sha256="c" * 64,
).to_dict()


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=8) | st.sampled_from(["strided", "int8", "RGB", "NCTHW", "a" * 64, "", "../x"]))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=6), c,
                                                                                          max_size=4), max_leaves=10)


@st.composite
def mutated_meta(draw):
    """The valid metadata above with 1-4 edits: a value replaced, a key deleted, or an unknown key added."""
    doc = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            op = draw(st.sampled_from(["replace", "delete", "add"]))
            if op == "replace":
                parent[path[-1]] = draw(json_values)
            elif op == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=10))] = draw(json_values)
        except (KeyError, IndexError, TypeError):  # an earlier edit changed the path: skip this one
            continue
    return doc


def _accepts_or_refuses(cls, data) -> None:
    try:
        obj = cls.from_json(data) if isinstance(data, str) else cls.from_dict(data)
    except SpecError as err:
        assert isinstance(err.field, str) and err.message.startswith("invalid field")  # names the field
        return
    assert cls.from_json(obj.to_json()) == obj  # what is accepted round-trips unchanged


@pytest.mark.parametrize("examples", SPEC_RUNS)
def test_edited_metadata_is_accepted_as_valid_or_refused_with_a_spec_error(examples):
    @run(examples, mutated_meta())
    def prop(doc):
        _accepts_or_refuses(ArtifactMeta, json.dumps(doc))


@pytest.mark.parametrize("examples", SPEC_RUNS)
def test_any_json_or_text_through_every_spec_parser_gives_only_spec_errors(examples):
    classes = st.sampled_from([ArtifactMeta, ClipSpec, PreprocSpec, AggSpec, TensorSpec])

    @run(examples, classes, json_values | st.text(max_size=40) | st.dictionaries(st.sampled_from(
        ["num_frames", "mode", "stride", "fps", "hop", "crop", "resize_short", "mean", "std", "value_range",
         "method", "alpha", "window", "topk", "name", "shape", "dtype"]), json_values, max_size=6))
    def prop(cls, data):
        _accepts_or_refuses(cls, data)


@pytest.mark.parametrize("examples", [pytest.param(300, id="fast"), SPEC_RUNS[1]])
def test_any_bytes_as_edgevc_json_give_only_spec_errors(examples, tmp_path):
    @run(examples, st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), mutated_meta()))
    def prop(data):
        (tmp_path / "edgevc.json").write_bytes(data)
        try:
            ArtifactMeta.load(tmp_path)
        except SpecError:
            pass


def test_what_the_fuzzing_found_is_a_validation_error():
    for text in ["[" * 100_000, '{"a":' * 50_000, '{"num_frames": 1' + "0" * 5000 + "}"]:
        with pytest.raises(SpecError):
            ClipSpec.from_json(text)
    for value in (10**400, 2**64, -(2**63) - 1):
        with pytest.raises(SpecError):
            ClipSpec.from_dict({"num_frames": 4, "fps": value, "hop": value})
    with pytest.raises(SpecError, match="not UTF-8"):
        ArtifactMeta.load(_folder_with(b"\xff\xfe{"))
    for fps in (2.2250738585e-313, math.inf, math.nan):  # a subnormal fps made tol / fps infinite
        with pytest.raises(ValueError, match="fps must be a positive finite number"):
            FpsResampler(fps)
        with pytest.raises(ValueError):
            resample_indices(np.array([0.0, 1.0]), fps)
    with pytest.raises(SpecError, match="at least 0.001 fps"):
        ClipSpec(4, fps=1e-310)
    with pytest.raises(ValueError, match="not a finite number"):
        FpsResampler(25).push(math.inf)


def _folder_with(data: bytes):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    (folder / "edgevc.json").write_bytes(data)
    return folder


# ------------------------------------------------------------------------------------------ sampling

clip_kw = st.fixed_dictionaries({
    "num_frames": st.integers(-2, 70), "mode": st.sampled_from(["strided", "uniform", "segment", "dense"]),
    "stride": st.integers(-1, 20), "hop": st.none() | st.integers(-2, 120)})


def _spec(kw) -> ClipSpec | None:
    try:
        return ClipSpec(**kw)
    except SpecError:
        return None


@pytest.mark.parametrize("examples", SAMPLING_RUNS)
def test_clip_index_functions_stay_inside_the_video_or_raise_value_error(examples):
    @run(examples, clip_kw, st.integers(-3, 3000), st.integers(-2, 40), st.integers(-2, 200))
    def prop(kw, n, num_clips, hop):
        spec = _spec(kw)
        if spec is None:
            return
        try:
            offsets = window_offsets(spec, n)
            assert len(offsets) == spec.num_frames and offsets.min() >= 0 and offsets.max() <= max(n - 1, spec.span)
            clips = [clip_indices(spec, n, 0), *eval_clips(spec, n, num_clips)]
        except ValueError:
            assert n < 1
            return
        assert n >= 1
        for idx in clips:
            assert idx.dtype == np.int64 and 0 <= idx.min() and idx.max() <= n - 1 and np.all(np.diff(idx) >= 0)
        if hop >= 1:
            starts = window_starts(n, spec.span, hop)
            got = stream_clips(spec, n, hop)
            assert len(got) == len(starts) >= 1 and all(0 <= c.min() and c.max() <= n - 1 for c in got)
            win = StreamingWindow(spec, hop)  # the streaming twin emits exactly these clips
            out = [c.indices for c in (win.push(i) for i in range(n)) if c is not None]
            out += [c.indices for c in [win.flush()] if c is not None]
            assert len(out) == len(got) and all(np.array_equal(a, b) for a, b in zip(out, got, strict=True))
        else:
            with pytest.raises(ValueError):
                StreamingWindow(spec, hop)


timestamps = st.lists(st.floats(-1e4, 1e4) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0]), max_size=60)


@pytest.mark.parametrize("examples", SAMPLING_RUNS)
def test_timestamp_resampling_agrees_offline_and_streaming_or_raises_value_error(examples):
    fps = st.floats(-5, 120) | st.sampled_from([0.0, math.nan, math.inf, 10**400, 25, 29.97])

    @run(examples, timestamps, fps, st.booleans())
    def prop(pts, fps, sort):
        pts = sorted(pts, key=lambda t: (math.isnan(t), t)) if sort else pts
        if pts and all(map(math.isfinite, pts)) and isinstance(fps, float) and math.isfinite(fps) and fps > 0:
            if (max(pts) - min(pts)) * fps > 2e5:  # a grid of that many slots is a video of that length
                return
        try:
            idx = resample_indices(np.asarray(pts, dtype=np.float64), fps)
        except ValueError:
            offline_ok = False
        else:
            offline_ok = True
            assert idx.size == 0 or (idx.min() >= 0 and idx.max() < len(pts) and np.all(np.diff(idx) >= 0))
        counts = []
        try:
            rs = FpsResampler(fps)
            counts = [rs.push(t) for t in pts]
        except ValueError:
            assert not offline_ok or not pts
            return
        assert offline_ok  # streaming accepted the same timestamps: both give the same slots
        assert np.array_equal(np.repeat(np.arange(len(pts)), counts), idx)


frames = st.builds(
    lambda h, w, c, seed: np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8),
    st.integers(1, 48), st.integers(1, 48), st.sampled_from([3, 3, 3, 1, 4]), st.integers(0, 2**16))
preprocs = st.builds(
    lambda ch, cw, extra, none, lo, span, order, layout: PreprocSpec(
        crop=(ch, cw), resize_short=None if none else min(ch, cw) + extra, mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3), value_range=(lo, lo + span), channel_order=order, layout=layout),
    st.integers(1, 40), st.integers(1, 40), st.integers(0, 30), st.booleans(), st.floats(-2, 2), st.floats(0.01, 300),
    st.sampled_from(["RGB", "BGR"]), st.sampled_from(["NCTHW", "NTCHW", "NTHWC"]))


@pytest.mark.parametrize("examples", SAMPLING_RUNS)
def test_preprocessing_any_frame_gives_finite_input_of_the_crop_size_or_value_error(examples):
    @run(examples, frames, preprocs, st.integers(1, 4))
    def prop(frame, spec, t):
        try:
            x = preprocess_frame(frame, spec)
        except ValueError:  # documented: not an RGB frame, or smaller than the crop after the resize
            h, w = frame.shape[:2]
            rh, rw = (h, w) if spec.resize_short is None else resized_size(h, w, spec.resize_short)
            assert frame.shape[2] != 3 or rh < spec.crop[0] or rw < spec.crop[1]
            return
        assert x.shape == (*spec.crop, 3) and x.dtype == np.float32 and np.all(np.isfinite(x))
        lo, hi = spec.value_range  # the value range, then (x - mean) / std: bounds per channel
        a = (np.array([lo, lo, lo]) - spec.mean) / spec.std
        b = (np.array([hi, hi, hi]) - spec.mean) / spec.std
        assert np.all(x >= np.minimum(a, b) - 1e-3) and np.all(x <= np.maximum(a, b) + 1e-3)
        clip = assemble(np.stack([x] * t), spec)
        assert clip.shape[0] == 1 and sorted(clip.shape[1:]) == sorted((3, t, *spec.crop))


@pytest.mark.parametrize("examples", SAMPLING_RUNS)
def test_aggregation_and_topk_of_any_logits_or_value_error(examples):
    logits = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=12)
    aggs = st.builds(AggSpec, method=st.sampled_from(["mean", "max", "ema", "window"]),
                     activation=st.sampled_from(["softmax", "sigmoid", "none"]), alpha=st.floats(0.01, 1.0),
                     window=st.integers(1, 5), topk=st.integers(1, 10))

    @run(examples, st.lists(logits, min_size=1, max_size=6), aggs, st.integers(1, 15), st.integers(-1, 1))
    def prop(rows, spec, k, extra_labels):
        width = len(rows[0])
        rows = [(r * width)[:width] for r in rows]  # one width per stream
        agg = Aggregator(spec)
        with np.errstate(over="ignore"):
            for r in rows:
                scores = agg.update(np.asarray(r, dtype=np.float32))
        assert scores.shape == (width,)
        if spec.activation != "none":
            assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1 + 1e-9))
        labels = tuple(f"c{i}" for i in range(width + extra_labels))
        try:
            best = topk(scores, labels, k)
        except ValueError:
            assert extra_labels != 0
            return
        assert len(best) == min(k, width) and [p.score for p in best] == sorted((p.score for p in best), reverse=True)
