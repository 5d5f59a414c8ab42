"""Face-aware crops: a focal point from every face in the picture, and a crop of the requested size around it.

```
image --(copy capped at 1024 px on its longest side)--> MediaPipe faces (at most max_faces) --boxes x 1/scale-->
  union of the face boxes --centre = focal point, side = union / zoom, output aspect--> window clamped in the image
  --> resized to size (W, H)
```

`crop_box` is the geometry alone (no MediaPipe), `focal_crop` adds detection and resizing and returns arrays: the
GUI makes its person thumbnails with it in memory. Only `libreface crop` (`crop_main`) writes files.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError, LibrefaceError, OutputError
from .imaging import resize

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels, x1 and y1 exclusive."""

DEFAULT_DETECT_MAX_SIDE_PX = 1024
DEFAULT_MAX_FACES = 10


@dataclass(frozen=True)
class CropResult:
    """A focal-point crop.

    Attributes:
        image: (H, W, 3) uint8 RGB, exactly the requested size (W, H).
        box_px: (x0, y0, x1, y1) int window taken from the source image (x1, y1 exclusive), before resizing.
        faces_px: face boxes found, (x0, y0, x1, y1) float in source pixels; [] when none (then a centre crop).
        focal_px: (x, y) focal point in source pixels: the centre of the union of the faces, or the image centre.
    """

    image: np.ndarray
    box_px: tuple[int, int, int, int]
    faces_px: list[Box]
    focal_px: tuple[float, float]

    @property
    def centred(self) -> bool:
        """True when no face was found and the crop is the image's centre."""
        return not self.faces_px


def _check_zoom(zoom: float) -> None:
    if not (isinstance(zoom, (int, float)) and 0 < zoom <= 1 and math.isfinite(zoom)):
        raise ValueError(f"zoom must be in (0, 1] (1 = tight around the faces, 0.5 = twice their size), got {zoom!r}")


def _check_size(out_wh: tuple[int, int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in out_wh)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in pixels, got {out_wh!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be at least 1 x 1 pixels, got {w} x {h}")
    return w, h


def crop_box(image_wh: tuple[int, int], face_boxes: Sequence[Box], zoom: float, out_wh: tuple[int, int]
             ) -> tuple[int, int, int, int]:
    """The crop window: pure geometry, no image needed.

    Args:
        image_wh: (width, height) of the source image in pixels.
        face_boxes: (x0, y0, x1, y1) face boxes in source pixels; may be empty.
        zoom: in (0, 1]. The window contains the union of the faces grown by 1 / zoom around its centre: 1 is tight
            around the union, 0.5 twice its width and height. Applies only when there is a face.
        out_wh: (width, height) of the output; the window has this aspect ratio.

    Returns:
        (x0, y0, x1, y1) ints, x1 and y1 exclusive, inside the image. The window is centred on the focal point (the
        centre of the union of the face boxes) and shifted, not shrunk, when it would cross the border; it is shrunk
        (aspect kept, centre kept as far as possible) only when it is larger than the image. With no face it is the
        largest window of the output aspect centred in the image (zoom is ignored: there is nothing to zoom on).
    """
    _check_zoom(zoom)
    ow, oh = _check_size(out_wh)
    W, H = int(image_wh[0]), int(image_wh[1])
    if W < 1 or H < 1:
        raise ValueError(f"image_wh must be at least 1 x 1 pixels, got {image_wh!r}")
    aspect = ow / oh
    boxes = [tuple(map(float, b)) for b in face_boxes]
    if boxes:
        ux0, uy0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        ux1, uy1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        cx, cy = (ux0 + ux1) / 2, (uy0 + uy1) / 2
        need_w, need_h = max(ux1 - ux0, 1.0) / zoom, max(uy1 - uy0, 1.0) / zoom
        w, h = (need_h * aspect, need_h) if need_w / need_h < aspect else (need_w, need_w / aspect)
        if w > W or h > H:  # larger than the image: shrink, keeping the aspect
            s = min(W / w, H / h)
            w, h = w * s, h * s
    else:  # no face: the largest centred window of the output aspect
        cx, cy = W / 2, H / 2
        w, h = (W, W / aspect) if W / aspect <= H else (H * aspect, H)
    iw = min(W, max(1, int(round(w))))
    ih = min(H, max(1, int(round(h))))
    x0 = int(round(cx - iw / 2))
    y0 = int(round(cy - ih / 2))
    x0 = min(max(x0, 0), W - iw)  # shift inside the image
    y0 = min(max(y0, 0), H - ih)
    return (x0, y0, x0 + iw, y0 + ih)


def capped_size(image_wh: tuple[int, int], max_side_px: int = DEFAULT_DETECT_MAX_SIDE_PX
                ) -> tuple[tuple[int, int], float]:
    """Size of the detection copy and its scale: ((w, h), scale) with scale = min(1, max_side_px / longest side).

    The copy keeps the aspect ratio (each side rounded to whole pixels, at least 1); boxes found on it are divided
    by the exact per-axis factors (`w / W`, `h / H`) to map back to the source.
    """
    W, H = int(image_wh[0]), int(image_wh[1])
    if max_side_px < 1:
        raise ValueError(f"max_side_px must be >= 1, got {max_side_px}")
    scale = min(1.0, max_side_px / max(W, H))
    return (max(1, int(round(W * scale))), max(1, int(round(H * scale)))), scale


def detect_faces_capped(image: np.ndarray, max_side_px: int = DEFAULT_DETECT_MAX_SIDE_PX,
                        max_faces: int = DEFAULT_MAX_FACES, front_end=None) -> list[Box]:
    """Face boxes of a still image, found on a copy capped at `max_side_px` and mapped back to full resolution.

    Args:
        image: (H, W, 3) uint8 RGB.
        max_side_px: the detection copy's longest side (aspect kept); smaller images are used as they are.
        max_faces: candidate cap: at most this many faces are looked for and returned (bounds the time).
        front_end: an open `libreface.landmarks.FaceFrontEnd` in IMAGE mode to reuse (anything with
            `detect(rgb) -> [face with box_px]`); default: one is opened and closed here, with
            `max_faces=max_faces`.

    Returns:
        (x0, y0, x1, y1) float boxes in `image` pixels (MediaPipe landmark boxes), left to right; [] when none.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    H, W = image.shape[:2]
    (w, h), scale = capped_size((W, H), max_side_px)
    small = image if scale >= 1.0 else resize(image, (w, h))
    sx, sy = w / W, h / H
    own = front_end is None
    if own:
        from .landmarks import FaceFrontEnd, FrontEndOptions

        front_end = FaceFrontEnd(FrontEndOptions(max_faces=max_faces, video=False))
    try:
        faces = front_end.detect(np.ascontiguousarray(small))
    finally:
        if own:
            front_end.close()
    faces = sorted(faces, key=lambda f: -getattr(f, "confidence", 0.0))[:max_faces]
    boxes = [(f.box_px[0] / sx, f.box_px[1] / sy, f.box_px[2] / sx, f.box_px[3] / sy) for f in faces]
    return sorted(boxes, key=lambda b: b[0])


def focal_crop(image: np.ndarray, boxes: Sequence[Box] | None = None, zoom: float = 0.5,
               size: tuple[int, int] = (512, 512), *, max_side_px: int = DEFAULT_DETECT_MAX_SIDE_PX,
               max_faces: int = DEFAULT_MAX_FACES, front_end=None) -> CropResult:
    """Crop an image around all its faces (focal point = centre of their union), resized to `size`.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: face boxes (x0, y0, x1, y1) in `image` pixels when already known (e.g. from the pipeline); None:
            detect them with `detect_faces_capped(image, max_side_px, max_faces, front_end)`.
        zoom: (0, 1], see `crop_box`.
        size: (width, height) of the output in pixels.

    Returns:
        CropResult; with no face, the largest centred window of the output's aspect (`centred` is True).
        Nothing is written to disk.
    """
    _check_zoom(zoom)
    ow, oh = _check_size(size)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if boxes is None:
        boxes = detect_faces_capped(image, max_side_px, max_faces, front_end)
    boxes = [tuple(map(float, b)) for b in boxes]
    H, W = image.shape[:2]
    x0, y0, x1, y1 = crop_box((W, H), boxes, zoom, (ow, oh))
    window = np.ascontiguousarray(image[y0:y1, x0:x1])
    out = resize(window, (ow, oh))
    if boxes:
        focal = ((min(b[0] for b in boxes) + max(b[2] for b in boxes)) / 2,
                 (min(b[1] for b in boxes) + max(b[3] for b in boxes)) / 2)
    else:
        focal = (W / 2, H / 2)
    return CropResult(out, (x0, y0, x1, y1), boxes, focal)


# ---------------------------------------------------------------------------------------------
# libreface crop IMAGE... --zoom Z --size WxH -o DIR
# ---------------------------------------------------------------------------------------------

_WRITE_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                   ".tiff": "TIFF"}


def _size_arg(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT in pixels, e.g. 512x512 or 1080x1920; "
                                         f"got {text!r}") from None
    return w, h


def _zoom_arg(text: str) -> float:
    try:
        z = float(text)
        _check_zoom(z)
    except ValueError:
        raise argparse.ArgumentTypeError(f"zoom must be a number in (0, 1], e.g. 1 (tight) or 0.5; got {text!r}"
                                         ) from None
    return z


def build_crop_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="libreface crop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Crop images around their faces: the focal point is the centre of all faces (found on a copy "
        "capped at --detect-max-side pixels); the crop is the faces' union divided by --zoom, at the aspect of "
        "--size, kept inside the image. An image without a face gets a centre crop.",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders of images")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the crops (created if missing)")
    p.add_argument("--zoom", type=_zoom_arg, default=0.5, help="1 = tight around the faces, 0.5 = twice their size")
    p.add_argument("--size", type=_size_arg, default=(512, 512), help="output WIDTHxHEIGHT in pixels")
    p.add_argument("--max-faces", type=int, default=DEFAULT_MAX_FACES, help="most faces looked for per image")
    p.add_argument("--detect-max-side", type=int, default=DEFAULT_DETECT_MAX_SIDE_PX,
                   help="faces are looked for on a copy this many pixels on its longest side")
    p.add_argument("--quiet", action="store_true", help="no line per image on stderr")
    return p


def _images_in(inputs: Sequence[Path]) -> tuple[list[Path], list[str]]:
    from .sources import IMAGE_SUFFIXES

    files, errors = [], []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append(f"{path}: no image in this folder; expected {', '.join(sorted(IMAGE_SUFFIXES))}")
            files.extend(found)
        else:
            files.append(path)
    return files, errors


def _crop_one(path: Path, out_dir: Path, args, front_end, written: set[Path]) -> tuple[CropResult, Path]:
    from PIL import Image

    from .sources import open_source

    with open_source(path) as src:
        if src.info.kind != "image":
            raise InputError(f"{path}: not an image (it opens as a {src.info.kind}); expected a JPEG, PNG, BMP, TIFF "
                             "or WebP file")
        rgb = next(iter(src)).rgb
    result = focal_crop(rgb, None, args.zoom, args.size, max_side_px=args.detect_max_side,
                        max_faces=args.max_faces, front_end=front_end)
    suffix = path.suffix.lower() if path.suffix.lower() in _WRITE_SUFFIXES else ".png"
    target = out_dir / (path.stem + suffix)
    if target.resolve() == path.resolve():
        raise OutputError(f"{path}: the crop would overwrite the input; choose another -o folder")
    if target.resolve() in written:
        raise OutputError(f"{path}: {target} was already written by this run (two inputs named {path.stem}); "
                          "crop them into separate folders")
    tmp = target.with_name(target.name + ".partial")
    try:
        fmt = _WRITE_SUFFIXES[suffix]
        Image.fromarray(result.image).save(tmp, format=fmt, **({"quality": 92} if fmt in ("JPEG", "WEBP") else {}))
        tmp.replace(target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write ({e.strerror or e}); check the folder and free space") from None
    written.add(target.resolve())
    return result, target


def crop_main(argv: list[str] | None = None) -> int:
    """`libreface crop IMAGE... --zoom Z --size WxH -o DIR`: write one focal-point crop per image.

    Each image fails on its own with one line on stderr naming it; returns 0 when every image was cropped, 1 when
    any failed (argparse exits with 2 for bad arguments).
    """
    args = build_crop_parser().parse_args(argv)
    if args.max_faces < 1:
        build_crop_parser().error(f"--max-faces must be >= 1, got {args.max_faces}")
    if args.detect_max_side < 32:
        build_crop_parser().error(f"--detect-max-side must be >= 32 pixels, got {args.detect_max_side}")
    files, errors = _images_in(args.inputs)
    for e in errors:
        print(f"libreface: {e}", file=sys.stderr)
    failed = len(errors)
    if not files:
        return 1
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"libreface: {args.output}: cannot create the output folder ({e.strerror or e})", file=sys.stderr)
        return 1
    from .landmarks import FaceFrontEnd, FrontEndOptions

    written: set[Path] = set()
    with FaceFrontEnd(FrontEndOptions(max_faces=args.max_faces, video=False)) as front_end:
        for path in files:
            try:
                r, target = _crop_one(path, args.output, args, front_end, written)
            except LibrefaceError as e:
                print(f"libreface: {e}", file=sys.stderr)
                failed += 1
                continue
            if not args.quiet:
                what = f"{len(r.faces_px)} face(s)" if r.faces_px else "no face, centre crop"
                print(f"{path}: {what} -> {target}", file=sys.stderr)
    return 1 if failed else 0
