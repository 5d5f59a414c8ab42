"""Shared pytest fixtures. Each section belongs to the test module named in its header."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a model hub, in tests least of all

# --- sources fixtures ---
# Small media files generated with PyAV, Pillow and tifffile into one session folder (a few hundred ms in all).

VIDEO_W, VIDEO_H = 64, 48  # coded size of every generated video
VFR_PTS_MS = (0, 40, 50, 130, 300, 310, 420, 700, 705, 1000)  # irregular presentation times, milliseconds


def _marker_frame(i: int, w: int = VIDEO_W, h: int = VIDEO_H) -> np.ndarray:
    """(h, w, 3) uint8 RGB: grey background (brightness grows with i), red square top-left, blue square top-right."""
    rgb = np.full((h, w, 3), 60 + 4 * (i % 40), np.uint8)
    rgb[:16, :16] = (255, 0, 0)
    rgb[:16, -16:] = (0, 0, 255)
    return rgb


def _write_video(path: Path, n_frames: int = 20, rate: int = 10, pts_ms: tuple[int, ...] | None = None,
                 rotation_deg: float | None = None, hflip: bool = False, vflip: bool = False,
                 options: dict[str, str] | None = None, fmt: str | None = None) -> Path:
    """Encode marker frames with the mpeg4 encoder (built into every FFmpeg).

    rotation_deg/hflip/vflip go into the display matrix exactly as phones and ffmpeg's -display_rotation write it
    (rotation_deg counter-clockwise, as PyAV's VideoStream.set_display_rotation takes it).
    """
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = VIDEO_W, VIDEO_H, "yuv420p"
        stream.max_b_frames = 0  # frames come out in the order they go in
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            n_frames = len(pts_ms)
        if rotation_deg is not None or hflip or vflip:
            stream.set_display_rotation(rotation_deg or 0, hflip=hflip, vflip=vflip)
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(_marker_frame(i), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _write_audio(path: Path, codec: str) -> Path:
    """A 0.5 s silent mono audio file, no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8000)
        stream.layout = "mono"
        sample_format = "s16" if codec.startswith("pcm") else "fltp"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16 if sample_format == "s16" else np.float32),
                                               format=sample_format, layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _packet_spans(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of each video packet, in file order."""
    import av

    with av.open(str(path)) as container:
        return sorted((p.pos, p.size) for p in container.demux(video=0) if p.size)


def _write_png16_rgb(path: Path, rgb16: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16), which Pillow can read but not write."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Generated videos, images and broken files for tests/test_sources.py; paths as attributes."""
    from PIL import Image
    from skimage import data

    d = tmp_path_factory.mktemp("media")
    m = SimpleNamespace(dir=d, video_size=(VIDEO_W, VIDEO_H), vfr_pts_s=[t / 1000 for t in VFR_PTS_MS],
                        marker_frame=_marker_frame)

    # videos
    m.cfr = _write_video(d / "cfr.mp4", n_frames=20, rate=10)
    m.vfr = _write_video(d / "vfr.mp4", pts_ms=VFR_PTS_MS)
    m.raw_h264 = d / "raw.h264"  # an elementary stream: packets carry no PTS
    import av

    with av.open(str(m.raw_h264), "w", format="h264") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = VIDEO_W, VIDEO_H, "yuv420p"
        for i in range(6):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_marker_frame(i), format="rgb24")))
        container.mux(stream.encode())
    m.rotated = {}  # (ccw degrees, hflip, vflip) -> path
    for ccw, hflip, vflip in [(-90, False, False), (90, False, False), (180, False, False), (0, True, False),
                              (0, False, True), (90, True, False)]:
        name = f"rot{ccw}{'_h' if hflip else ''}{'_v' if vflip else ''}.mp4"
        m.rotated[ccw, hflip, vflip] = _write_video(d / name, n_frames=3, rotation_deg=ccw, hflip=hflip, vflip=vflip)

    # damaged videos: the index (moov) must come first, or a cut MP4 cannot even be opened
    full = _write_video(d / "full_faststart.mp4", n_frames=20, options={"movflags": "faststart"})
    data_bytes, spans = full.read_bytes(), _packet_spans(full)
    m.n_full_frames = 20
    m.truncated = d / "truncated.mp4"
    m.truncated.write_bytes(data_bytes[: int(len(data_bytes) * 0.6)])
    m.cut_at_packet = d / "cut_at_packet.mp4"  # cut exactly between two packets: FFmpeg itself reports nothing
    m.cut_at_packet.write_bytes(data_bytes[: spans[12][0]])
    m.cut_before_first_frame = d / "cut_before_first_frame.mp4"  # header only: not one frame can be decoded
    m.cut_before_first_frame.write_bytes(data_bytes[: spans[0][0]])
    m.n_cut_at_packet = 12
    corrupt = bytearray(data_bytes)  # one packet in the middle overwritten with noise
    pos, size = spans[8]
    corrupt[pos: pos + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    m.corrupt_middle = d / "corrupt_middle.mp4"
    m.corrupt_middle.write_bytes(bytes(corrupt))
    m.unknown_codec = d / "unknown_codec.avi"  # an AVI whose FourCC no decoder knows
    avi = _write_video(d / "ok.avi", n_frames=3).read_bytes()
    m.unknown_codec.write_bytes(avi.replace(b"FMP4", b"ZZZZ"))

    # broken or non-video inputs
    m.empty = d / "empty.mp4"
    m.empty.write_bytes(b"")
    m.text_mp4 = d / "notes.mp4"
    m.text_mp4.write_text("these are meeting notes, not a video\n")
    m.text_png = d / "notes.png"
    m.text_png.write_text("not an image either\n")
    m.audio_wav = _write_audio(d / "audio_only.wav", "pcm_s16le")
    m.audio_m4a = _write_audio(d / "audio_only.m4a", "aac")
    m.folder_mp4 = d / "folder.mp4"
    m.folder_mp4.mkdir()
    m.missing = d / "missing.mp4"

    # images
    m.astronaut = np.ascontiguousarray(data.astronaut()[:, :384])  # (512, 384, 3) uint8: not square on purpose
    m.jpeg_exif6 = d / "astronaut_exif6.jpg"  # pixels stored sideways, EXIF says "rotate 90 degrees clockwise"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(m.astronaut, k=1)).save(m.jpeg_exif6, quality=95, exif=exif)
    m.grey = m.astronaut[:, :, 1].copy()
    m.png_grey = d / "grey.png"
    Image.fromarray(m.grey, mode="L").save(m.png_grey)
    m.alpha = np.tile(np.linspace(0, 255, 384).round().astype(np.uint8), (512, 1))
    m.png_rgba = d / "rgba.png"
    Image.fromarray(np.dstack([m.astronaut, m.alpha]), mode="RGBA").save(m.png_rgba)
    m.png_palette = d / "palette.png"
    Image.fromarray(m.astronaut).quantize(64).save(m.png_palette)
    m.jpeg_cmyk = d / "cmyk.jpg"
    Image.fromarray(m.astronaut).convert("CMYK").save(m.jpeg_cmyk, quality=95)
    m.jpeg_truncated = d / "truncated.jpg"
    jpeg = (d / "_full.jpg")
    Image.fromarray(m.astronaut).save(jpeg, quality=95)
    m.jpeg_truncated.write_bytes(jpeg.read_bytes()[:3000])

    # 16-bit images: a ramp over the whole 0..65535 range, so that clipping instead of scaling would show
    m.grey16 = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21 % 65536).astype(np.uint16)
    m.rgb16 = np.dstack([m.grey16, 65535 - m.grey16, m.grey16 // 2])
    m.png_grey16 = d / "grey16.png"
    Image.fromarray(m.grey16).save(m.png_grey16)
    m.tif_grey16 = d / "grey16.tif"
    Image.fromarray(m.grey16).save(m.tif_grey16)
    m.tif_int32 = d / "int32.tif"  # Pillow mode "I"
    Image.fromarray(m.grey16.astype(np.int32)).save(m.tif_int32)
    m.png_rgb16 = _write_png16_rgb(d / "rgb16.png", m.rgb16)
    try:
        import tifffile
    except ImportError:  # scikit-image depends on it, so this is unusual
        m.tif_grey16_be = m.tif_rgb16 = None
    else:
        m.tif_grey16_be = d / "grey16_be.tif"  # Pillow mode "I;16B"
        tifffile.imwrite(m.tif_grey16_be, m.grey16, byteorder=">")
        m.tif_rgb16 = d / "rgb16.tif"
        tifffile.imwrite(m.tif_rgb16, m.rgb16, photometric="rgb")
    return m


# --- shared data and face fixtures ---

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_report_header(config) -> str:
    if SHARED_DATA.is_dir():
        return f"shared data: {SHARED_DATA}"
    return f"shared data: ABSENT ({SHARED_DATA}); tests marked 'data' are SKIPPED"


def pytest_collection_modifyitems(config, items) -> None:
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"../shared/data absent ({SHARED_DATA}): data-dependent test skipped")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not SHARED_DATA.is_dir():
        terminalreporter.write_sep("!", "../shared/data is ABSENT: every test marked 'data' was skipped", red=True)


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    path = SHARED_DATA / "videos"
    if not path.is_dir():
        pytest.skip(f"../shared/data absent: {path} not found")
    return path


@pytest.fixture(scope="session")
def face_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """skimage's astronaut (NASA, public domain) as a JPEG: one frontal face of about 110 px."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("faces") / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=92)
    return path


@pytest.fixture(scope="session")
def two_face_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two faces side by side: the astronaut's head twice, the right one mirrored."""
    from PIL import Image
    from skimage import data

    head = data.astronaut()[0:300, 80:360]
    both = np.concatenate([head, head[:, ::-1]], axis=1)
    path = tmp_path_factory.mktemp("faces") / "two_faces.png"
    Image.fromarray(both).save(path)
    return path


# --- gui fixtures ---
# For tests/test_gui.py: Qt runs offscreen unless a test asks for a real display; QSettings go to a temp folder.

import os as _os

_os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "xvfb: opens a real window under Xvfb (skipped when Xvfb is not installed)")


@pytest.fixture(scope="session")
def shipped_model() -> str:
    """Name of the default model after its weights verify against the manifest (the model ships in weights/:
    a missing or damaged file is a failure, not a skip). `$LIBREFACE_WEIGHTS` selects another weights folder."""
    from libreface.models.registry import DEFAULT_MODEL, verify

    verify(DEFAULT_MODEL)
    return DEFAULT_MODEL


@pytest.fixture
def gui_settings(tmp_path: Path) -> Path:
    """Point every QSettings of the app (INI, user scope) at a fresh temporary folder."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


# --- identity fixtures ---
# Public-domain faces that ship inside installed packages (nothing is downloaded), and the dlib embedder.


@pytest.fixture(scope="session")
def dlib_embedder():
    """`libreface.identity.DlibEmbedder`; the test is skipped when the identity extra is not installed."""
    pytest.importorskip("dlib", reason="needs the identity extra: pip install 'libreface-cpu[identity]'")
    from libreface.identity import DlibEmbedder

    try:
        return DlibEmbedder()
    except ImportError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def pd_faces() -> SimpleNamespace:
    """(H, W, 3) uint8 RGB public-domain faces: `astronaut` (Eileen Collins, NASA, skimage) and, when matplotlib is
    installed, `hopper` (Grace Hopper, US Navy, matplotlib's sample data; else None)."""
    from skimage import data

    hopper = None
    try:
        import matplotlib
        from PIL import Image

        path = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if path.is_file():
            hopper = np.asarray(Image.open(path).convert("RGB"))
    except ImportError:
        pass
    return SimpleNamespace(astronaut=data.astronaut(), hopper=hopper)


@pytest.fixture(scope="session")
def image_front_end():
    """One MediaPipe front end in IMAGE mode (up to 4 faces) shared by the identity and crop tests."""
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions

    fe = FaceFrontEnd(FrontEndOptions(max_faces=4, video=False))
    yield fe
    fe.close()


# --- training fixtures (test_distill, test_keep) ---


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """The whole training chain on generated fixtures (`distill smoke`, ~1-2 min): its evaluation result, with
    `root` (its folder: cache/, weights/), `runs` (config file -> run name) and `weights` (exported ONNX files)."""
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from distill.smoke import run

    return run(tmp_path_factory.mktemp("smoke"))
