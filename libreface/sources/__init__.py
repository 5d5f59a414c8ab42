"""Frame sources: video files (PyAV), still images (Pillow), webcams (OpenCV) -> `Frame(index, timestamp_s, rgb)`.

Every source yields (H, W, 3) uint8 RGB frames, already turned upright (video display matrix, EXIF orientation),
with timestamps in seconds. Videos are decoded as a stream: memory stays flat whatever the length of the file.

    with open_source("interview.mp4") as source:
        print(source.info.width, source.info.height, source.info.fps)
        for frame in source:
            ...
        if source.error:                  # the file was damaged; the frames before the damage were still yielded
            print(source.error)

Heavy imports (av, PIL, and cv2 for cameras when installed) happen inside the functions that need them, so `import libreface` stays fast.
"""

from .base import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Frame, Source, SourceInfo
from .dispatch import open_source
from .folder import LIST_SUFFIX, iter_inputs  # noqa: F401  (LIST_SUFFIX: public constant, kept importable)
from .image import ImageSource
from .video import VideoSource
from .webcam import CAMERA_INPUT_FORMATS, WebcamSource  # noqa: F401  (CAMERA_INPUT_FORMATS: idem)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "ImageSource",
    "Source",
    "SourceInfo",
    "VideoSource",
    "WebcamSource",
    "iter_inputs",
    "open_source",
]
