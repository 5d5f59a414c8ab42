"""The card of a student's ONNX file: the `libreface.card` metadata the runtime reads (`libreface.models.session`).

One reader and one writer for every command that edits a shipped file in place or writes a changed copy (export,
recover, add-aus, au-sources, finetune-heads). Needs `onnx` only (no torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from libreface.models.session import CARD_KEY

if TYPE_CHECKING:
    from onnx import ModelProto


def card_of(m: ModelProto, source: Path | str) -> dict:
    """The card (`libreface.card` metadata) of a loaded ONNX model `m`; ValueError naming `source` when it has none."""
    props = {p.key: p.value for p in m.metadata_props}
    if CARD_KEY not in props:
        raise ValueError(f"{source}: no '{CARD_KEY}' metadata; not a libreface student")
    return json.loads(props[CARD_KEY])


def save_with_card(m: ModelProto, card: dict, path: Path) -> None:
    """Write the loaded ONNX model `m` to `path` with `card` as its only metadata (written beside `path`, then
    renamed: a reader never sees half a file)."""
    import onnx

    del m.metadata_props[:]
    m.metadata_props.add(key=CARD_KEY, value=json.dumps(card))
    m.producer_name = "libreface-distill"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    onnx.save(m, str(tmp))
    tmp.replace(path)


def set_onnx_card(path: Path, card: dict) -> None:
    """Make `card` the only metadata of the ONNX file `path`, in place; the graph is untouched."""
    import onnx

    save_with_card(onnx.load(str(path)), card, path)


def read_onnx_card(path: Path) -> dict:
    """The card (`libreface.card` metadata) of the ONNX file `path`; ValueError naming the file when it has none."""
    import onnx

    return card_of(onnx.load(str(path), load_external_data=False), path)
