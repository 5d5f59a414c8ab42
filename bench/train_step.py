"""Wall time of one training step of the teachers on this CPU: fused vs math attention, float32 vs bfloat16.

    python bench/train_step.py [--threads 2] [--repeats 5] [--out reports/bench_train_step.md]

Times, per model and step kind, one optimiser step (forward, backward, AdamW) on random inputs of the training shapes:

* `mae_vit` MAE pretraining step (batch 256, 75 % of the 64 patches masked: 16 tokens in the encoder, 64 in the decoder);
* `mae_vit` fine-tune step (batch 128, all 64 tokens, the teacher's heads);
* the same two steps for a wider ViT (width 384, depth 12, 6 heads: ViT-S sized), what a wider teacher would cost;
* `swin` training step (batch 128, 64 px, window 4);

each with timm's fused attention (`torch.nn.functional.scaled_dot_product_attention`) and with the plain matrix
products that training uses on the CPU (`distill.teachers.math_attention`), under float32 and under bfloat16 autocast.
Also prints the largest difference between the two attention paths' float32 outputs (they compute the same thing),
and the CPU's bf16 matrix units as `lscpu` names them. Swin's window attention already runs as matrix products by
timm's default (0 layers switched by `math_attention`); its "fused" columns force the fused kernel for comparison.
Compare ratios within one run; absolute times differ between machines. Run it on an idle machine (no training in the
background).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_flags() -> str:
    """The bf16 / AMX flags of this CPU (Linux `lscpu`), e.g. 'avx512_bf16 amx_bf16'."""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    found = sorted({f for f in flags.split() if f in ("avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")})
    return " ".join(found) or "none"


def step_seconds(model, kind: str, batch: int, bf16: bool, repeats: int) -> dict[bool, float]:
    """{fused: median wall seconds of one optimiser step} of `kind` ('mae' or 'train') on a (batch, 3, 64, 64)
    input, for the fused (True) and the math (False) attention, timed in alternation (a drift of the machine or a
    slow first case then falls on both)."""
    from distill._torch import torch
    from distill.teachers import set_fused_attention

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 64, 64, generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if kind == "mae":
                loss = model.mae_loss(x, 0.75, generator=g)
            else:
                out = model(x)
                loss = out["expr_logits"].float().logsumexp(-1).mean() + out["features"].float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()

    times: dict[bool, list[float]] = {True: [], False: []}
    for fused in (True, False):  # warm-up: allocations, kernel choice
        set_fused_attention(model, fused)
        step()
    for _ in range(repeats):
        for fused in (True, False):
            set_fused_attention(model, fused)
            t0 = time.perf_counter()
            step()
            times[fused].append(time.perf_counter() - t0)
    return {fused: sorted(t)[len(t) // 2] for fused, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    a = ap.parse_args(argv)

    from distill._torch import torch
    from distill.teachers import create_teacher, math_attention

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vit_s = {"width": 384, "depth": 12, "n_heads": 6}  # a wider ViT (ViT-S sized): what "a wider teacher" would cost
    cases = [("mae_vit", "mae", 256, {}), ("mae_vit", "train", 128, {}), ("mae_vit", "mae", 256, vit_s),
             ("mae_vit", "train", 128, vit_s), ("swin", "train", 128, {})]
    lines = [f"# One teacher training step on this CPU ({platform.processor() or platform.machine()}; bf16 units: "
             f"{cpu_flags()}; {a.threads} threads; torch {torch.__version__})", "",
             "`python bench/train_step.py`: seconds per optimiser step (forward + backward + AdamW), median of "
             f"{a.repeats} steps of each attention path, timed in alternation after a warm-up step.", "",
             "| model | encoder M params | step | batch | fused fp32 | math fp32 | fused bf16 | math bf16 | "
             "fused bf16 / math bf16 | layers switched | fp32 max diff |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arch, kind, batch, size in cases:
        model = create_teacher(arch, **size)
        n_params = sum(p.numel() for p in model.trunk.parameters()) / 1e6
        x = torch.randn(4, 3, 64, 64)
        model.eval()
        with torch.no_grad():
            ref = model(x)["expr_logits"]
            n_layers = math_attention(model)
            diff = (model(x)["expr_logits"] - ref).abs().max().item()
        row = {}
        for bf16 in (False, True):
            for fused, seconds in step_seconds(model, kind, batch, bf16, a.repeats).items():
                row[(fused, bf16)] = seconds
        name = f"{arch} {size}" if size else arch
        lines.append(f"| {name} | {n_params:.1f} | {kind} | {batch} | {row[(True, False)]:.2f} | {row[(False, False)]:.2f} | "
                     f"{row[(True, True)]:.2f} | {row[(False, True)]:.2f} | {row[(True, True)] / row[(False, True)]:.2f}x | "
                     f"{n_layers} | {diff:.1e} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
