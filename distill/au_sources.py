"""Which source a student's blink (AU45) and lip-suck (AU28) outputs come from: its own heads or the calibrated
blendshape mapping of an earlier model, chosen by the same rule `distill add-aus` uses.

A student trained with OpenFace's AUs as heads of its own (`aus: openface`) learns AU45 and AU28 from the calibrated
MediaPipe blendshape signal, so its heads imitate the mapping. The rule: AU45 takes whichever of head and mapping
scores the higher AUC against the eye-aspect-ratio "closed" reference on real videos (`distill.blink_check`);
AU28 has no reference here, so the mapping is kept (the head only imitates it). Where the mapping is chosen, the
earlier model's card entry (blendshapes, calibration anchors, probability map; `libreface.models.blendshape_aus`)
is copied into the student's card, so the runtime computes those AUs exactly as it did for that model, and the blink
events threshold chosen on it (`libreface/blinks.py`) still applies. Only the ONNX metadata changes, never the graph.
"""

from __future__ import annotations

from pathlib import Path

from .blink_check import blink_reference
from .onnx_card import read_onnx_card, set_onnx_card

MAPPED_AUS = ("AU28", "AU45")


def choose_sources(model: Path, donor: Path, videos: list[Path], threads: int = 2) -> dict:
    """Measure and choose the source of `model`'s AU45 and AU28; returns the decision (nothing is written).

    Args:
        model: the student's .onnx file (its card must hold no `blendshape_aus` entry yet).
        donor: an .onnx file whose card holds the calibrated mapping of `MAPPED_AUS` (e.g. au_r10t_int8.v7).
        videos: face videos for AU45's eye-aspect-ratio reference.
    Returns:
        {"AU45": {"source", "auc_head", "auc_blendshapes", ...}, "AU28": {"source", ...}, "entries": {au: card entry
        to copy}, "donor": name}.
    """
    from libreface.models.blendshape_aus import CARD_ENTRY

    try:
        donor_card, model_card = read_onnx_card(donor), read_onnx_card(model)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if CARD_ENTRY in model_card:
        raise SystemExit(f"{model}: its card already has '{CARD_ENTRY}'; measure the heads of a file without it")
    missing = [a for a in MAPPED_AUS if a not in donor_card.get(CARD_ENTRY, {})]
    if missing:
        raise SystemExit(f"{donor}: its card has no blendshape mapping for {', '.join(missing)}")
    blink = blink_reference(model, videos, threads=threads) if videos else {"frames": 0}
    result: dict = {"donor": donor_card["name"], "model": model_card["name"], "blink_reference": blink}
    if blink.get("frames"):
        head, shapes = blink["auc_head"], blink["auc_blendshapes"]
        result["AU45"] = {"source": "head" if head > shapes else "blendshapes", "auc_head": head,
                          "auc_blendshapes": shapes, "measured_against": blink["reference"]}
    else:
        result["AU45"] = {"source": "blendshapes", "measured_against": "unmeasured: no videos given; the mapping is kept"}
    result["AU28"] = {"source": "blendshapes",
                      "measured_against": "unmeasured: no human codes here; the mapping is kept (the head only imitates it)"}
    result["entries"] = {a: donor_card[CARD_ENTRY][a] for a in MAPPED_AUS if result[a]["source"] == "blendshapes"}
    return result


def apply_sources(model: Path, decision: dict) -> None:
    """Write `decision["entries"]` into `model`'s card (the ONNX metadata; the graph is untouched), in place."""
    from libreface.models.blendshape_aus import CARD_ENTRY

    if not decision["entries"]:
        return
    card = read_onnx_card(model)
    card[CARD_ENTRY] = decision["entries"]
    card["blendshape_aus_source"] = {"from": decision["donor"], "chosen": {a: dict(decision[a]) for a in MAPPED_AUS}}
    set_onnx_card(model, card)


def markdown(decision: dict) -> str:
    """The decision as a short Markdown report."""
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [f"# Sources of AU45 and AU28 for {decision['model']}", "",
             f"Mapping donor: `{decision['donor']}` (its calibrated blendshape mapping, copied where chosen).", "",
             "| AU | head AUC % | blendshape AUC % | chosen | measured against |", "|---|---:|---:|---|---|"]
    for a in ("AU45", "AU28"):
        d = decision[a]
        lines.append(f"| {a} | {pct(d.get('auc_head'))} | {pct(d.get('auc_blendshapes'))} | **{d['source']}** | "
                     f"{d['measured_against']} |")
    b = decision["blink_reference"]
    if b.get("frames"):
        lines += ["", f"Videos: {', '.join(b['videos'])}; {b['frames']} frames, {b['closed_frames']} 'closed'."]
    return "\n".join(lines) + "\n"

