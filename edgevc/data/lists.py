"""Video lists: which files, which labels. A folder per class (UCF101) or a CSV (Kinetics).

Torch-free: a device-side evaluation script can use these lists too.

Folder layout (UCF101, HMDB51, the benchmark's ``train/`` and ``test/``)::

    root/<label>/<video>.mp4        classes = the sub-folders, sorted

CSV layouts, told apart by the header:

- ``path,label``: a path (relative to ``root``, default the CSV's folder)
  and a class name per row;
- Kinetics annotations ``label,youtube_id,time_start,time_end[,split,...]``:
  the file is ``<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>``, looked
  for in ``root/<label>/``, ``root/<label with underscores>/``, ``root/<split>/<label>/``,
  ``root/<split>/`` and ``root/``. Kinetics always has videos that could not be downloaded:
  ``missing="skip"`` drops them (they are counted in ``VideoList.missing``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgevc.errors import EdgevcError, UnknownNameError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
Missing = Literal["error", "skip"]


@dataclass(frozen=True)
class VideoRecord:
    path: Path
    label: int


@dataclass(frozen=True)
class VideoList:
    """Videos with class indices into ``labels``; ``missing`` lists rows whose file was not found."""

    records: tuple[VideoRecord, ...]
    labels: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.labels, 0)
        for r in self.records:
            out[self.labels[r.label]] += 1
        return out


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names, one per line (blank lines ignored)."""
    return tuple(line.strip() for line in Path(path).read_text().splitlines() if line.strip())


def _label_index(labels: tuple[str, ...]) -> dict[str, int]:
    if len(set(labels)) != len(labels):
        raise EdgevcError("the label list has duplicates", hint="each class name once, in model output order")
    return {name: i for i, name in enumerate(labels)}


def _lookup(index: dict[str, int], name: str, where: str) -> int:
    if name not in index:
        err = UnknownNameError("label", name, index)
        raise EdgevcError(f"{where}: {err.message}", hint=err.hint)
    return index[name]


def folder_list(root: str | Path, labels: tuple[str, ...] | None = None) -> VideoList:
    """Every video under ``root/<label>/``; ``labels`` fixes the class order (default: sorted folders)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgevcError(f"video folder not found: '{root}'", hint="expected root/<class name>/<video files>")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    labels = tuple(labels) if labels is not None else tuple(folders)
    index = _label_index(labels)
    records = []
    for name in folders:
        label = _lookup(index, name, f"folder '{root / name}'")
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file():
                records.append(VideoRecord(f, label))
    if not records:
        raise EdgevcError(f"no videos found under '{root}'",
                          hint=f"expected root/<class name>/<video>{{{','.join(VIDEO_EXTENSIONS)}}}")
    return VideoList(tuple(records), labels)


def csv_list(path: str | Path, root: str | Path | None = None, labels: tuple[str, ...] | None = None,
             missing: Missing = "error") -> VideoList:
    """Videos listed in a CSV (``path,label`` or Kinetics annotation columns), see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise EdgevcError(f"CSV list not found: '{path}'")
    root = Path(root) if root is not None else path.parent
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = set(rows[0]) if rows else set()
    kinetics = {"label", "youtube_id", "time_start", "time_end"} <= header
    if not kinetics and not {"path", "label"} <= header:
        raise EdgevcError(f"'{path}': unrecognised CSV header {sorted(header)}",
                          hint="use columns 'path,label', or Kinetics' 'label,youtube_id,time_start,time_end'")
    labels = tuple(labels) if labels is not None else tuple(sorted({r["label"] for r in rows}))
    index = _label_index(labels)
    records, lost = [], []
    for line, row in enumerate(rows, start=2):
        label = _lookup(index, row["label"], f"'{path}' line {line}")
        found = _kinetics_file(root, row) if kinetics else _plain_file(root, row["path"])
        if found is None:
            lost.append(row.get("path") or row["youtube_id"])
            continue
        records.append(VideoRecord(found, label))
    if lost and missing == "error":
        raise EdgevcError(f"'{path}': {len(lost)} of {len(rows)} listed videos not found under '{root}' "
                          f"(first: {lost[0]})", hint="fix the root folder, or set missing: skip to drop them")
    if not records:
        raise EdgevcError(f"'{path}': none of the listed videos was found under '{root}'")
    return VideoList(tuple(records), labels, tuple(lost))


def _plain_file(root: Path, rel: str) -> Path | None:
    p = Path(rel) if Path(rel).is_absolute() else root / rel
    return p if p.is_file() else None


def _kinetics_file(root: Path, row: dict[str, str]) -> Path | None:
    stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
    label, split = row["label"], row.get("split") or ""
    folders = [root / label, root / label.replace(" ", "_"), root]
    if split:
        folders[2:2] = [root / split / label, root / split / label.replace(" ", "_"), root / split]
    for folder in folders:
        for ext in VIDEO_EXTENSIONS:
            p = folder / f"{stem}{ext}"
            if p.is_file():
                return p
    return None
