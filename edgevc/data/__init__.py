"""Video data on the torch side: lists, clip datasets that sample through :mod:`edgevc.sampling`, and the
temporal benchmark of :mod:`edgevc.data.synth`.

The torch-free parts (``lists``, ``synth``, ``baselines``) import without torch;
``datasets`` needs it.
"""

from edgevc.data.lists import VideoList, VideoRecord, csv_list, folder_list, read_labels
from edgevc.data.synth import LABELS as BENCH_LABELS
from edgevc.data.synth import Bench, BenchConfig, make_bench

__all__ = ["BENCH_LABELS", "Bench", "BenchConfig", "VideoList", "VideoRecord", "csv_list", "folder_list",
           "make_bench", "read_labels"]
