"""Report step 4: what produced a results CSV (model + sha256, options, versions), from every source at hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..outputs.reader import Results


def summary_json_paths(csv_path: Path) -> list[Path]:
    """Where the identity summary of `csv_path` may be: `<stem>.summary.json` (what the analyze command writes)
    and `<name>.summary.json`."""
    return [csv_path.with_suffix(".summary.json"), csv_path.with_name(csv_path.name + ".summary.json")]


def read_sidecar(csv_path: Path) -> dict | None:
    """The JSON summary written next to the CSV (with `--identity`), or None."""
    for p in summary_json_paths(csv_path):
        if p.is_file():
            try:
                return json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


def batch_ledger_row(csv_path: Path) -> dict | None:
    """The `ledger.csv` row of a CSV that lives in a batch folder (`OUTDIR/csv/<recording>.csv`), or None."""
    csv_path = csv_path.resolve()
    if csv_path.parent.name != "csv":
        return None
    ledger = csv_path.parent.parent / "ledger.csv"
    if not ledger.is_file():
        return None
    try:
        with open(ledger, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("recording") == csv_path.stem:
                    return row
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    return None


def model_sha256(model: str) -> str | None:
    """sha256 of a registered model name (from the weights manifest) or of an .onnx file; None when unknown."""
    try:
        from ..weights import get_entry, sha256_file

        if model.endswith(".onnx") and Path(model).is_file():
            return sha256_file(Path(model))
        return get_entry(model).sha256
    except Exception:  # noqa: BLE001 - provenance is best effort: an unknown model stays unknown
        return None


def collect(res: Results, given: dict | None = None) -> dict:
    """Provenance of a report, as {field: value} in display order; unknown fields say where they were not found.

    Sources, later ones filling what earlier ones lack: `given` (what the analyze / batch command knows: `model`,
    `model_sha256`, `source`, `options`), the batch `ledger.csv` row, the `<csv>.summary.json` sidecar, and the
    CSV itself (layout, AU and expression columns).
    """
    from .. import __version__

    given = dict(given or {})
    ledger = batch_ledger_row(res.path) or {}
    sidecar = read_sidecar(res.path)
    model = given.get("model") or ledger.get("model")
    sha = given.get("model_sha256") or ledger.get("model_sha256") or (model_sha256(model) if model else None)
    out: dict[str, object] = {
        "results CSV": str(res.path),
        "recording": given.get("source") or ledger.get("path") or "not recorded in the CSV",
        "CSV layout": res.fmt,
        "model": model or "not recorded in the CSV (use --report on the analyze or batch command to record it)",
        "model sha256": sha or "unknown",
    }
    if ledger.get("landmarker_sha256"):
        out["landmarker sha256"] = ledger["landmarker_sha256"]
    if given.get("landmarker_sha256"):
        out["landmarker sha256"] = given["landmarker_sha256"]
    options = given.get("options") or {}
    if not options and ledger:
        options = {k: ledger[k] for k in ("settings", "started_at", "finished_at", "worker") if ledger.get(k)}
    if options:
        out["options"] = ", ".join(f"{k}={v}" for k, v in options.items())
    out["analysed by libreface"] = given.get("libreface_version") or "not recorded in the CSV"
    out["report made by libreface"] = __version__
    out["AUs (intensity)"] = ", ".join(res.au_intensity) or "none"
    out["AUs (occurrence)"] = ", ".join(res.au_presence) or "none"
    out["expression classes"] = ", ".join(res.expressions) or (
        "none (the OpenFace layout has no expression columns)" if res.fmt == "openface" else "none")
    if sidecar:
        ident = sidecar.get("identity") or {}
        out["identity summary"] = next(p for p in summary_json_paths(res.path) if p.is_file()).name
        if isinstance(ident, dict):
            for k in ("embedder", "eps", "shots"):
                if k in ident:
                    out[f"identity {k}"] = ident[k]
            if isinstance(ident.get("persons"), list):
                out["identity persons"] = len(ident["persons"])
    return out
