"""Write `examples/astronaut.mp4`, the bundled example: a generated 6 s clip (640x360, 25 fps, MPEG-4).

Source image: `skimage.data.astronaut()`, NASA's portrait of Eileen Collins, public domain. A virtual
camera pans and zooms over it; for the last second it looks away from the face (frames without a
face must still give rows, with success=0). Re-run with `python examples/make_example.py`.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

W, H, FPS, SECONDS = 640, 360, 25, 6


def frames() -> list[np.ndarray]:
    img = Image.fromarray(data.astronaut())  # 512x512 RGB
    out = []
    n = FPS * SECONDS
    for i in range(n):
        t = i / (n - 1)
        if i < FPS * 5:  # pan and zoom around the face (centre ~ (215, 105) in the 512 px image)
            zoom = 1.0 + 0.6 * np.sin(np.pi * t)
            cx, cy = 215 + 40 * np.sin(2 * np.pi * t), 130 - 20 * t
        else:  # look at the flag / suit: no face in view
            zoom, cx, cy = 2.2, 420, 420
        w, h = 360 / zoom * (W / H), 360 / zoom
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        out.append(np.asarray(img.transform((W, H), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)))
    return out


def main(path: Path = Path(__file__).with_name("astronaut.mp4")) -> None:
    # faststart puts the index first, so even a cut copy of the file still decodes up to the cut
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = 600_000
        for rgb in frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
