"""The scaling study's report (`libreface-distill scaling`): `<out>/scaling.json`, `scaling.md` and `scaling.png`
from `distill.scaling.study`'s result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .scaling import saturating

__all__ = ["markdown", "plot", "write_report"]


def markdown(result: dict) -> str:
    bar, target = result["bar"], result["target"]
    lines = ["# Scaling study: FER+ validation accuracy against training epochs and wall time", "",
             f"Bar: the best student, `{bar['model']}`, {bar['valid_accuracy'] * 100:.1f} % FER+ valid "
             f"(`{bar['source']}`); target: bar + 2 = {target * 100:.1f} %. Wall time on this machine's 2 CPU cores "
             "(shared: a niced background run's wall time includes waiting; its CPU hours / 2 is about what it would "
             "take alone).", ""]
    for c in result["curves"]:
        lines += [f"## {c['name']} — {c['probe']}", "", "| epochs | wall h | CPU h | FER+ valid % | source |",
                  "|---:|---:|---:|---:|---|"]
        lines += [f"| {p['epochs']} | {p['wall_seconds'] / 3600:.2f} | "
                  f"{'–' if p['cpu_seconds'] is None else format(p['cpu_seconds'] / 3600, '.2f')} | "
                  f"{p['valid_accuracy'] * 100:.1f} | {p['source']} |" for p in c["points"]]
        f = c["fit"]

        def at(x: dict | None) -> str:
            return f"~{x['epochs']:.0f} epochs (~{x['wall_hours']} h)" if x else "never (asymptote below)"

        lines += ["", f"Fit: {f['form']}, a = {f['a']}, b = {f['b']}, c = {f['c']}, "
                  f"{'exact through 3 points (no residual: an indication)' if f.get('exact') else 'rmse = ' + str(f['rmse'])}"
                  f"{' (a parameter at its bound)' if f['at_bound'] else ''}; crosses the bar at {at(f['bar'])}, the "
                  f"target at {at(f['target'])}." if f else
                  "Fit: unconstrained (too few points).", "", f"**Verdict:** {c['verdict']}", ""]
        lines += [f"Note: {n}" for n in c["notes"]] + ([""] if c["notes"] else [])
    lines += [f"- {m}" for m in result.get("pending", [])]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Accuracy against epochs (log) and wall hours, with the bar, the target and each fit; a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - matplotlib.ticker.ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), dpi=80)
    for c in result["curves"]:
        e = np.array([p["epochs"] for p in c["points"]], float)
        y = np.array([p["valid_accuracy"] for p in c["points"]]) * 100
        h = np.array([p["wall_seconds"] for p in c["points"]]) / 3600
        line, = axes[0].plot(e, y, "o-", ms=3, label=f"{c['name']}: {c['probe']}")
        axes[1].plot(h, y, "o-", ms=3, color=line.get_color())
        if c["fit"] and not c["fit"]["at_bound"]:  # a fit pinned at a bound is reported, not drawn
            ee = np.geomspace(max(1, e.min()), max(e.max() * 4, 200), 100)
            axes[0].plot(ee, saturating(ee, c["fit"]["a"], c["fit"]["b"], c["fit"]["c"]) * 100, "--", color=line.get_color(), lw=1)
    for ax in axes:
        ax.axhline(result["bar"]["valid_accuracy"] * 100, color="k", lw=1, label=f"bar: {result['bar']['model']}")
        ax.axhline(result["target"] * 100, color="k", lw=1, ls=":", label="target: bar + 2")
        ax.set_ylabel("FER+ valid accuracy %")
        ax.grid(alpha=0.3)
    epochs = [p["epochs"] for c in result["curves"] for p in c["points"]]
    if epochs and max(epochs) > 10 * max(1, min(epochs)):  # log epochs only over more than a decade
        axes[0].set_xscale("log")
        axes[0].xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[0].set_xlabel("epochs (of pretraining for a probed snapshot; else the run's own)")
    axes[1].set_xlabel("wall hours (2 CPU cores)")
    handles, labels = axes[0].get_legend_handles_labels()  # below the plots, never over a curve
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.032 * ((len(labels) + 1) // 2), 1, 1))
    fig.savefig(path)
    plt.close(fig)


def write_report(result: dict, out: Path) -> list[Path]:
    """`<out>/scaling.json`, `scaling.md`, `scaling.png`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scaling.json", out / "scaling.md", out / "scaling.png"]
    paths[0].write_text(json.dumps(result, indent=1))
    paths[1].write_text(markdown(result) + "\n")
    plot(result, paths[2])
    return paths
