"""The contract between training and the device, as plain stdlib dataclasses.

Three specs decide what a model sees and what it says:

- :class:`ClipSpec`: which frames form a clip (strided, uniform or TSN segment
  sampling), at which reference fps, and how often a stream emits one (hop).
- :class:`PreprocSpec`: how uint8 RGB frames become the model's float input.
- :class:`AggSpec`: how clip scores become a video or stream decision.

:class:`ArtifactMeta` carries them inside every exported artifact
(``edgevc.json``), so a device reads them back instead of re-typing
constants. Everything here round-trips through JSON and is validated
strictly: an unknown key, a wrong type or an out-of-range value raises
:class:`~edgevc.errors.SpecError` naming the field and what is allowed.
Never ``eval``: parsing is plain ``json`` plus these checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from edgevc import __version__
from edgevc.errors import SpecError, did_you_mean

SCHEMA_VERSION = 1
META_FILENAME = "edgevc.json"

SamplingMode = Literal["strided", "uniform", "segment"]
AggMethod = Literal["mean", "max", "ema", "window"]
Activation = Literal["softmax", "sigmoid", "none"]
Layout = Literal["NCTHW", "NTCHW", "NTHWC"]
ChannelOrder = Literal["RGB", "BGR"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class _Spec:
    """Mixin: strict validation, dict/JSON round trips for the dataclasses below."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(f"{_prefix(self)}{f.name}", value, _hints(type(self))[f.name]))
        self.validate()

    def validate(self) -> None:
        """Range checks; overridden by each spec."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> Any:
        """Build from a parsed-JSON dict; every key is checked against the fields."""
        if not isinstance(data, dict):
            raise SpecError(path or cls.__name__, f"expected an object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                hint = did_you_mean(str(key), names)
                allowed = ", ".join(names)
                problem = "unknown key" + (f"; did you mean '{hint}'?" if hint else "")
                raise SpecError(f"{path}{key}", problem, allowed)
        hints = _hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise SpecError(f"{path}{f.name}", "required key is missing")
                continue
            kwargs[f.name] = _parse(f"{path}{f.name}", data[f.name], hints[f.name])
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_path", path)
        cls.__init__(obj, **kwargs)
        return obj

    @classmethod
    def from_json(cls, text: str) -> Any:
        try:
            data = json.loads(text)
        except ValueError as err:  # JSONDecodeError, or an integer of more than 4300 digits
            raise SpecError("<json>", f"not valid JSON: {err}") from None
        except RecursionError:  # '[[[[...' thousands deep: json's own recursion limit
            raise SpecError("<json>", "not valid metadata: nested too deeply") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _prefix(obj: Any) -> str:
    return getattr(obj, "_path", "")


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINT_CACHE:
        _HINT_CACHE[cls] = typing.get_type_hints(cls)
    return _HINT_CACHE[cls]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _parse(path: str, value: Any, tp: Any) -> Any:
    """Turn a parsed-JSON value into the field's type, raising SpecError on mismatch."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse(path, value, arg)
            except SpecError:
                continue
        raise SpecError(path, f"got {_short(value)}", _type_name(tp))
    if isinstance(tp, type) and issubclass(tp, _Spec):
        return tp.from_dict(value, path=f"{path}.")
    if origin in (tuple, list) and isinstance(value, list):
        return tuple(_parse(f"{path}[{i}]", v, get_args(tp)[0]) for i, v in enumerate(value))
    return _coerce(path, value, tp)


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against ``tp``; lists become tuples; ints are accepted as floats."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(path, value, arg)
            except SpecError as err:
                errors.append(err)
        raise SpecError(path, f"got {_short(value)}", _type_name(tp))
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool):
            raise SpecError(path, f"got {_short(value)}", _type_name(tp))
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SpecError(path, f"expected a list, got {type(value).__name__}")
        item_tp = get_args(tp)[0]
        return tuple(_coerce(f"{path}[{i}]", v, item_tp) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise SpecError(path, f"expected an object with string keys, got {type(value).__name__}")
        val_tp = get_args(tp)[1]
        return {k: _coerce(f"{path}.{k}", v, val_tp) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, _Spec):
        if not isinstance(value, tp):
            raise SpecError(path, f"expected a {tp.__name__}, got {type(value).__name__}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"expected true or false, got {_short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(path, f"expected an integer, got {_short(value)}")
        if not -(2**63) <= value < 2**63:
            raise SpecError(path, f"got {_short(value)}", "a 64-bit integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise SpecError(path, f"expected a finite number, got {_short(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(path, f"expected a string, got {_short(value)}")
        return value
    raise TypeError(f"unsupported spec type {tp!r} at {path}")  # a programming error, not input


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range (10**400): JSON allows it
        return False


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (an int of more than 4300 digits has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _to_plain(value: Any) -> Any:
    if isinstance(value, _Spec):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _check(ok: bool, obj: Any, name: str, problem: str, allowed: str | None = None) -> None:
    if not ok:
        raise SpecError(f"{_prefix(obj)}{name}", problem, allowed)


@dataclass(frozen=True)
class ClipSpec(_Spec):
    """Which frames form one clip, and how often a stream emits one.

    ``mode``:
      - ``strided`` (dense): ``num_frames`` frames, ``stride`` apart; a clip
        spans ``(num_frames - 1) * stride + 1`` source frames.
      - ``uniform``: ``num_frames`` frames spread evenly over the whole video
        (offline) or over a window of ``num_frames * stride`` frames (stream),
        endpoints included.
      - ``segment`` (TSN): the video or window is cut into ``num_frames``
        equal segments and the centre frame of each is taken (at test time).

    ``fps`` is the reference frame rate the model was trained at: sources at
    another rate are resampled by their timestamps first. ``None`` takes the
    source frames as they come. ``hop`` is how many (resampled) frames a
    stream advances between clips.
    """

    num_frames: int
    mode: SamplingMode = "strided"
    stride: int = 1
    fps: float | None = None
    hop: int | None = None

    def validate(self) -> None:
        _check(1 <= self.num_frames <= 4096, self, "num_frames", f"got {self.num_frames}", "1..4096")
        _check(1 <= self.stride <= 256, self, "stride", f"got {self.stride}", "1..256")
        _check(self.fps is None or 0 < self.fps <= 1000, self, "fps", f"got {self.fps}", "null or 0 < fps <= 1000")
        _check(self.fps is None or self.fps >= 1e-3, self, "fps", f"got {self.fps}", "at least 0.001 fps")
        _check(
            self.hop is None or 1 <= self.hop <= 100_000, self, "hop", f"got {self.hop}", "null or 1..100000"
        )

    @property
    def span(self) -> int:
        """Source frames one clip covers (the streaming ring buffer's size)."""
        if self.mode == "strided":
            return (self.num_frames - 1) * self.stride + 1
        return self.num_frames * self.stride

    @property
    def stream_hop(self) -> int:
        """The hop in frames: ``hop``, or half the span by default (at least 1)."""
        return self.hop if self.hop is not None else max(1, self.span // 2)


@dataclass(frozen=True)
class PreprocSpec(_Spec):
    """How uint8 frames become the model's float input.

    Order: short side resized to ``resize_short`` (antialiased bilinear), a
    centre ``crop`` of (height, width), pixel values mapped linearly from
    [0, 255] to ``value_range``, then ``(x - mean) / std`` per channel (in the
    model's ``channel_order``), and the clip laid out as ``layout``.

    Example: I3D takes RGB in [-1, 1]: ``value_range=(-1, 1)``, mean 0, std 1.
    ImageNet-style models: ``value_range=(0, 1)``,
    ``mean=(0.485, 0.456, 0.406)``, ``std=(0.229, 0.224, 0.225)``.
    """

    crop: tuple[int, ...]
    resize_short: int | None = None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    value_range: tuple[float, ...] = (0.0, 1.0)
    channel_order: ChannelOrder = "RGB"
    layout: Layout = "NCTHW"

    def validate(self) -> None:
        _check(len(self.crop) == 2, self, "crop", f"got {list(self.crop)}", "[height, width]")
        _check(all(1 <= c <= 8192 for c in self.crop), self, "crop", f"got {list(self.crop)}", "sides 1..8192")
        _check(
            self.resize_short is None or 1 <= self.resize_short <= 8192,
            self, "resize_short", f"got {self.resize_short}", "null or 1..8192",
        )
        if self.resize_short is not None:
            _check(
                self.resize_short >= min(self.crop), self, "resize_short",
                f"{self.resize_short} is smaller than the crop {list(self.crop)}", ">= the crop's short side",
            )
        _check(len(self.mean) == 3, self, "mean", f"got {len(self.mean)} values", "3 values, one per channel")
        _check(len(self.std) == 3, self, "std", f"got {len(self.std)} values", "3 values, one per channel")
        _check(all(s > 0 for s in self.std), self, "std", f"got {list(self.std)}", "positive values")
        _check(
            len(self.value_range) == 2 and self.value_range[0] < self.value_range[1],
            self, "value_range", f"got {list(self.value_range)}", "[low, high] with low < high",
        )


@dataclass(frozen=True)
class AggSpec(_Spec):
    """How clip scores become a decision.

    ``activation`` turns logits into scores (softmax for single-label
    classifiers). ``method``: ``mean`` or ``max`` over all clips so far,
    ``ema`` with weight ``alpha`` on the newest clip, or ``window``: the mean
    of the last ``window`` clips.
    """

    method: AggMethod = "mean"
    activation: Activation = "softmax"
    alpha: float = 0.5
    window: int = 4
    topk: int = 5

    def validate(self) -> None:
        _check(0.0 < self.alpha <= 1.0, self, "alpha", f"got {self.alpha}", "0 < alpha <= 1")
        _check(1 <= self.window <= 10_000, self, "window", f"got {self.window}", "1..10000")
        _check(1 <= self.topk <= 1000, self, "topk", f"got {self.topk}", "1..1000")


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TensorSpec(_Spec):
    """A named model input or output beyond the clip and the logits (the state of a stream model)."""

    name: str
    shape: tuple[int, ...]
    dtype: Literal["float32", "int64"] = "float32"

    def validate(self) -> None:
        _check(bool(self.name), self, "name", "empty name")
        _check(all(d >= 0 for d in self.shape), self, "shape", f"got {list(self.shape)}", "sizes >= 0")


@dataclass(frozen=True)
class ArtifactMeta(_Spec):
    """Everything a device needs to run an exported artifact, read with plain ``json``.

    ``target`` names the export target, which is also the runtime backend
    (``openvino``, ``onnx``, ``executorch``, ``coreml``); ``model_file`` is the
    file (or folder) in the artifact the backend opens; ``files`` maps every
    file the export wrote to its sha256. ``state`` lists, in order, the extra
    inputs of a stateful stream model (MoViNet stream, online TSM): the
    model takes ``(frame, *state)`` and returns ``(logits, *new_state)``
    with the same names and shapes; a clip model has no state.
    ``macs_per_clip`` is for one call (one frame for a stream model).
    """

    model: str
    labels: tuple[str, ...]
    clip: ClipSpec
    preproc: PreprocSpec
    agg: AggSpec
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    params: int
    macs_per_clip: int
    precision: Precision
    target: str
    model_file: str
    files: dict[str, str] = field(default_factory=dict)
    state: tuple[TensorSpec, ...] = ()
    profile: str | None = None
    weights_sha256: str | None = None
    edgevc_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def validate(self) -> None:
        _check(
            self.schema_version == SCHEMA_VERSION, self, "schema_version",
            f"got {self.schema_version}; this edgevc ({__version__}) reads version {SCHEMA_VERSION}",
            f"{SCHEMA_VERSION} (re-export the artifact with this edgevc)",
        )
        _check(bool(self.model), self, "model", "empty name")
        _check(bool(self.model_file) and "/" not in self.model_file, self, "model_file",
               f"got {self.model_file!r}", "a plain file name inside the artifact folder")
        _check(len(self.labels) >= 1, self, "labels", "no labels", "at least one label")
        _check(all(d >= 1 for d in self.input_shape), self, "input_shape", f"got {list(self.input_shape)}",
               "positive sizes")
        _check(len(self.input_shape) == 5, self, "input_shape", f"got {list(self.input_shape)}", "5 dims")
        _check(self.params >= 0, self, "params", f"got {self.params}", ">= 0")
        _check(self.macs_per_clip >= 0, self, "macs_per_clip", f"got {self.macs_per_clip}", ">= 0")
        _check(
            self.weights_sha256 is None or bool(_SHA256.match(self.weights_sha256)),
            self, "weights_sha256", f"got {self.weights_sha256!r}", "null or 64 lowercase hex digits",
        )
        for name, digest in self.files.items():
            _check(bool(_SHA256.match(digest)), self, f"files.{name}", f"got {digest!r}", "64 lowercase hex digits")
            parts = name.replace("\\", "/").split("/")
            _check(bool(name) and not name.startswith("/") and ".." not in parts and "" not in parts, self,
                   f"files.{name}", "must be a relative path inside the artifact folder", "e.g. 'model.onnx'")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def stateful(self) -> bool:
        return bool(self.state)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / META_FILENAME
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ArtifactMeta:
        path = Path(folder) / META_FILENAME
        if not path.is_file():
            raise SpecError(str(path), "artifact metadata not found",
                            f"a folder written by 'edgevc export' with {META_FILENAME}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise SpecError(str(path), f"not valid JSON: not UTF-8 text ({err.reason} at byte {err.start})") from None
        return cls.from_json(text)
