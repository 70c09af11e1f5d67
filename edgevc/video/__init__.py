"""Video input: files, cameras and stream URLs as RGB frames with presentation timestamps.

PyAV is the default decoder; OpenCV is the fallback and serves cameras.
Both apply rotation metadata the same way. Torch-free.
"""

from edgevc.video.decoders import Frame, OpenCVReader, PyAVReader, rotate_upright
from edgevc.video.source import (
    Video,
    VideoInfo,
    check_file,
    classify_source,
    open_source,
    probe,
    read_video,
    resample,
)

__all__ = [
    "Frame", "OpenCVReader", "PyAVReader", "Video", "VideoInfo", "check_file", "classify_source",
    "open_source", "probe", "read_video", "resample", "rotate_upright",
]
