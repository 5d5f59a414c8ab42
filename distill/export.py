"""`libreface-distill export`: a trained student -> ONNX (fp32 and static-QDQ int8) in the runtime's model
contract, with its card in the ONNX metadata, the sha256 manifest and a Markdown model card.

Contract: input `faces` float32 [N, 3, S, S] (aligned by `libreface.align`, normalised as the card
says); outputs `au_intensity` [N, 12] on 0..5, `au_occurrence` [N, 12] probabilities, `expression`
[N, 8] probabilities, `features` [N, D]. int8 uses ONNX Runtime's static quantisation (QDQ,
per-channel weights) calibrated on training crops; dynamic quantisation is never used (it is
slower than fp32 for conv nets on these CPUs).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from libreface.align import ALIGN_VERSION
from libreface.models.registry import sha256_file

from ._torch import torch
from .data.records import EXPRESSIONS
from .metrics import OCCURRENCE_THRESHOLD
from .labels import au_set
from .onnx_card import card_of, set_onnx_card
from .paths import WEIGHTS
from .predict import NORM_MEAN, NORM_STD, to_input
from .runs import trained_on
from .train import finished, load_run, run_dir


class _Contract(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, faces: torch.Tensor):
        o = self.net(faces)
        return o["au_intensity"], torch.sigmoid(o["occ_logits"]), torch.softmax(o["expr_logits"], 1), o["features"]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_card(name: str, run: str, input_size: int, feature_dim: int, precision: str, extra: dict) -> dict:
    """The metadata card the runtime reads (`libreface.models.session.ModelCard`)."""
    _, cfg = load_run(run)
    aus = au_set(cfg.aus)
    return {
        "name": name, "version": name.rsplit(".", 1)[-1], "input_size": input_size,
        "mean": list(NORM_MEAN), "std": list(NORM_STD), "color": "gray", "align": ALIGN_VERSION,
        "au_intensity": list(aus.intensity_names), "au_occurrence": list(aus.occurrence_names), "occurrence_threshold": OCCURRENCE_THRESHOLD,
        "expressions": list(EXPRESSIONS), "feature_dim": feature_dim,
        "arch": cfg.arch, "run": run, "teachers": cfg.teachers, "precision": precision, "commit": git_commit(),
        "training_data": "FER+ (FER2013Train, 10-annotator votes) and CK+ (subjects not divisible by 5, FACS AU codes); "
                         "AU intensity from calibrated MediaPipe blendshapes (distill/labels.py)",
        "license": "weights: Apache-2.0; trained on FER2013/FER+ and CK+, whose images are research-only (see model card)",
        # kept with the weights: `recover` restores them
        "training": {"epochs": cfg.epochs, "wall_seconds": finished(run).get("wall_seconds"), "devices": trained_on(run)},
        **extra,
    }


def export_fp32(run: str, path: Path, input_size: int) -> int:
    """Export the run's best checkpoint to ONNX; returns the feature dimension."""
    model, _ = load_run(run)
    wrapper = _Contract(model).eval()
    x = torch.zeros(2, 3, input_size, input_size)
    with torch.no_grad():
        feat_dim = int(wrapper(x)[3].shape[1])
    torch.onnx.export(
        wrapper, (x,), str(path), input_names=["faces"],
        output_names=["au_intensity", "au_occurrence", "expression", "features"],
        dynamic_axes={"faces": {0: "N"}, "au_intensity": {0: "N"}, "au_occurrence": {0: "N"}, "expression": {0: "N"}, "features": {0: "N"}},
        opset_version=17, dynamo=False,
    )
    return feat_dim


def quantize_int8(fp32: Path, out: Path, calib_images: np.ndarray, batch: int = 32) -> None:
    """Static QDQ int8 (per-channel weights, uint8 activations), calibrated on (M, S, S) uint8 grey crops."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter(range(0, len(calib_images), batch))

        def get_next(self):
            i = next(self.chunks, None)
            if i is None:
                return None
            return {"faces": to_input(torch.from_numpy(calib_images[i : i + batch])).numpy()}

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        # The trunk runs in int8; the pooled embedding and the heads stay float, so that probabilities,
        # intensities and features keep full resolution (an 8-bit softmax is off by up to 1/255).
        graph = onnx.load(str(pre)).graph
        head_ops = {"Gemm", "MatMul", "Softmax", "Sigmoid", "Mul", "ReduceMean", "GlobalAveragePool", "Flatten"}
        exclude = [n.name for n in graph.node if n.op_type in head_ops]
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)


def update_manifest(entries: list[dict], weights_dir: Path = WEIGHTS) -> None:
    """Add or replace `entries` ({name, file, kind}) in `manifest.json`, with their sha256."""
    path = weights_dir / "manifest.json"
    data = json.loads(path.read_text()) if path.exists() else {"models": []}
    models = {m["name"]: m for m in data["models"]}
    for e in entries:
        models[e["name"]] = {**e, "sha256": sha256_file(weights_dir / e["file"])}
    data["models"] = sorted(models.values(), key=lambda m: m["name"])
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def export(run: str, name: str, weights_dir: Path = WEIGHTS, calib: int = 1024, seed: int = 0,
           metrics: dict | None = None) -> list[Path]:
    """Export run `run` as `<name>` (fp32) and `<stem>_int8.<version>` into `weights_dir`; update the manifest.

    Returns the written ONNX paths.
    """
    from .dataset import build_tables

    _, cfg = load_run(run)
    from .train import prepared_dir

    tables, cal = build_tables(prepared_dir(cfg), au_sources=cfg.au_sources or None, aus=cfg.aus)
    size = int(tables["train"].images.shape[1])
    stem, version = name.rsplit(".", 1)
    int8_name = f"{stem}_int8.{version}"
    weights_dir.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = weights_dir / f"{name}.onnx", weights_dir / f"{int8_name}.onnx"
    extra = {"calibration": json.loads(cal.to_json()), "metrics": metrics or {}}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        feat_dim = export_fp32(run, raw, size)
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(tables["train"]), size=min(calib, len(tables["train"])), replace=False)
        q = Path(tmp) / "int8.onnx"
        quantize_int8(raw, q, tables["train"].images[np.sort(idx)])
        for src, dst, nm, prec in ((raw, fp32_path, name, "fp32"), (q, int8_path, int8_name, "int8-qdq")):
            set_onnx_card(src, make_card(nm, run, size, feat_dim, prec, extra))
            tmp_dst = dst.with_suffix(".onnx.partial")
            tmp_dst.write_bytes(src.read_bytes())
            tmp_dst.replace(dst)
    update_manifest([{"name": name, "file": fp32_path.name, "kind": "student"},
                     {"name": int8_name, "file": int8_path.name, "kind": "student"}], weights_dir)
    (run_dir(run) / "exported.json").write_text(json.dumps({"fp32": str(fp32_path), "int8": str(int8_path)}))
    return [fp32_path, int8_path]


def recover_run(onnx_path: Path, config: Path, atol: float = 1e-3) -> Path:
    """Rebuild a student's training run from its exported fp32 ONNX file, so that it can teach again.

    Checkpoints live in the cache outside git and are gone on a new machine; the shipped fp32 ONNX file holds the
    same weights with each batch norm folded into the convolution before it. Here every ONNX convolution (in graph
    order) goes back into the student's Conv2d modules (in module order), each following BatchNorm2d becomes the
    identity carrying the folded bias, and the heads are copied by name. The rebuilt network's four contract outputs
    are checked against ONNX Runtime on random input (within `atol`; the stage maps, which the ONNX file does not
    carry, follow from the same convolutions) before `<cache>/runs/<name>/` is
    written (`config.yaml`, `best.pt`, `last.pt` and a `done.json` that says where it came from). The result is for
    inference and teaching; training it further would start from folded batch norms.

    Args:
        onnx_path: fp32 ONNX file written by `export` (int8 files are refused).
        config: the YAML config the run was trained with (its `name` must be the model's run).

    Returns:
        The run folder.
    """
    import onnx
    import onnxruntime as ort
    import yaml
    from onnx import numpy_helper

    from .train import TrainConfig, build_model

    m = onnx.load(str(onnx_path))
    card = card_of(m, onnx_path)
    if card.get("precision") != "fp32":
        raise ValueError(f"{onnx_path}: a {card.get('precision')} model; recover from the fp32 twin")
    cfg = TrainConfig.from_yaml(config)
    if cfg.name != card["run"]:
        raise ValueError(f"{config}: run {cfg.name!r}, but {onnx_path} was exported from {card['run']!r}")
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    model = build_model(cfg).eval()
    pairs, pending = [], None  # (Conv2d, the BatchNorm2d after it), in module order
    for mod in model.trunk.modules():
        if isinstance(mod, torch.nn.Conv2d):
            if pending is not None:
                pairs.append((pending, None))
            pending = mod
        elif isinstance(mod, torch.nn.BatchNorm2d) and pending is not None:
            pairs.append((pending, mod))
            pending = None
    if pending is not None:
        pairs.append((pending, None))
    if len(pairs) != len(convs):
        raise ValueError(f"{onnx_path}: {len(convs)} convolutions, but {cfg.arch} has {len(pairs)}")
    with torch.no_grad():
        for (conv, bn), node in zip(pairs, convs):
            w = torch.from_numpy(init[node.input[1]].copy())
            b = torch.from_numpy(init[node.input[2]].copy()) if len(node.input) > 2 else torch.zeros(w.shape[0])
            if conv.weight.shape != w.shape or bn is None:
                raise ValueError(f"{onnx_path}: convolution {node.name} {tuple(w.shape)} does not fit {cfg.arch}")
            conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        state = model.state_dict()
        for key, value in init.items():
            if key.startswith("net.") and key[4:] in state:
                state[key[4:]].copy_(torch.from_numpy(value.copy()))
    x = np.random.default_rng(0).normal(size=(4, 3, card["input_size"], card["input_size"])).astype(np.float32)
    ref = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"faces": x})
    with torch.no_grad():
        got = [t.numpy() for t in _Contract(model)(torch.from_numpy(x))]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    if worst > atol:
        raise ValueError(f"{onnx_path}: the rebuilt {cfg.arch} differs from the ONNX model by {worst:.2e}")
    out = run_dir(cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    ckpt = {"model": model.state_dict(), "epoch": cfg.epochs - 1, "score": None}
    torch.save(ckpt, out / "best.pt")
    torch.save(ckpt, out / "last.pt")
    done = {"recovered_from": str(onnx_path), "sha256": sha256_file(onnx_path), "max_abs_diff": worst}
    training = card.get("training") or {}
    if training.get("wall_seconds") is not None:  # exported after training on the original machine: the card carries its wall time
        done["wall_seconds"] = training["wall_seconds"]
    if training.get("devices"):
        done["devices"] = training["devices"]
    (out / "done.json").write_text(json.dumps(done, indent=1))
    return out
