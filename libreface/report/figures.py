"""Report step 3: the figures of a report (matplotlib, no pyplot state), each returned as inline SVG text."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np

from ..extras import require

MAX_POINTS = 2000
"""Most points per curve of a full-width plot; an AU lane gets `LANE_POINTS` (about one per pixel)."""
LANE_POINTS = 900
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600)
EXPRESSION_COLORS = {
    "neutral": "#9e9e9e", "happiness": "#f2b600", "surprise": "#ff7f0e", "sadness": "#1f77b4",
    "anger": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "contempt": "#8c564b",
}


def require_matplotlib(what: str = "the HTML report") -> None:
    """Raise `extras.MissingExtra` (an ImportError) with the one-line install hint when matplotlib (the `report`
    extra) is missing; `what` is the feature asking, as the user typed it (default: "the HTML report")."""
    require("matplotlib", "report", what)


def clock(seconds: float, _pos=None) -> str:
    """A time axis label: "m:ss" under an hour, "h:mm:ss" from an hour on (negative times get a "-")."""
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(float(seconds))))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


def tick_step(span_s: float, max_ticks: int = 8) -> float:
    """A round tick step in seconds (1 s .. 6 h) that puts at most `max_ticks` ticks on `span_s` seconds."""
    for step in _STEPS_S:
        if span_s / step <= max_ticks:
            return float(step)
    return float(_STEPS_S[-1])


def decimate(t: np.ndarray, values: np.ndarray, t0: float, t1: float, bins: int = MAX_POINTS,
             gap_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin a time series to at most `bins` points for plotting.

    Args:
        t: (N,) seconds; values: (N,) or (N, K), NaN = missing; t0, t1: the time range to cover, seconds.
        bins: most equal-width time bins; never narrower than the sampling step, so that a regular series leaves
            no bin empty.
        gap_s: a bin left empty between two samples closer than this holds the previous bin's values (jitter,
            not a gap); default 3 sampling steps (the median step between distinct times).

    Returns:
        (centers (B,) seconds, mean (B, K), max (B, K)); bins in a real gap are NaN, so lines break there.
    """
    t = np.asarray(t, np.float64)
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[:, None]
    span = max(t1 - t0, 1e-9)
    times = np.unique(t[~np.isnan(t)])
    step = float(np.median(np.diff(times))) if len(times) > 1 else span
    n_bins = int(max(1, min(bins, span / (1.05 * step) if step > 0 else bins)))
    idx = np.clip(((t - t0) / span * n_bins).astype(np.int64), 0, n_bins - 1)
    centers = t0 + (np.arange(n_bins) + 0.5) * span / n_bins
    order = np.argsort(idx, kind="stable")  # already sorted for rows in time order: cheap
    idx, v = idx[order], v[order]
    ok = ~np.isnan(v)
    starts = np.searchsorted(idx, np.arange(n_bins))
    present = np.zeros(n_bins, bool)
    present[np.unique(idx)] = True
    cnt = np.add.reduceat(ok, starts[present], axis=0) if len(v) else np.zeros((0, v.shape[1]))
    tot = np.add.reduceat(np.where(ok, v, 0.0), starts[present], axis=0) if len(v) else cnt
    top = np.maximum.reduceat(np.where(ok, v, -np.inf), starts[present], axis=0) if len(v) else cnt
    mean = np.full((n_bins, v.shape[1]), np.nan)
    mx = np.full((n_bins, v.shape[1]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean[present] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    mx[present] = np.where(np.isinf(top), np.nan, top)
    empty = np.flatnonzero(~present)
    if len(empty) and len(times) > 1:  # an empty bin between two close samples: hold the previous bin
        gap = 3 * step if gap_s is None else gap_s
        nxt = np.searchsorted(times, centers[empty])
        inside = (nxt > 0) & (nxt < len(times))
        close = np.zeros(len(empty), bool)
        close[inside] = times[nxt[inside]] - times[nxt[inside] - 1] <= gap
        last = np.maximum.accumulate(np.where(present, np.arange(n_bins), -1))
        fill = empty[close & (last[empty] >= 0)]
        mean[fill], mx[fill] = mean[last[fill]], mx[last[fill]]
    return centers, mean, mx


def _figure(width_in: float, height_in: float, margins: bool = True):
    """A figure without pyplot; `margins`: the fixed margins of a full-width plot with its legend on the right
    (fixed rather than `tight_layout`, which costs more than drawing)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    if margins:
        fig.subplots_adjust(left=0.065, right=0.84, top=1 - 0.12 / height_in, bottom=0.5 / height_in)
    return fig


def _time_axis(ax, t0: float, t1: float, label: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    ax.set_xlim(t0, t1 if t1 > t0 else t0 + 1)
    step = tick_step(max(t1 - t0, 1.0), 6)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(clock))
    if label:
        ax.set_xlabel("time (m:ss)" if t1 < 3600 else "time (h:mm:ss)")


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def to_svg(fig, name: str) -> str:
    """The figure as an `<svg>` element (no XML prolog), text kept as text, deterministic ids."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    return re.sub(r'<svg ([^>]*?)width="[\d.]+pt" height="[\d.]+pt"', r'<svg \1class="fig"', svg, count=1)


def au_timelines(t: np.ndarray, intensity: dict[str, np.ndarray], t0: float, t1: float,
                 names: dict[str, str] | None = None, name: str = "au") -> str:
    """Small multiples on one shared time axis: one lane per AU (top to bottom in the given order), each drawing the
    per-bin mean intensity (line) and per-bin max (light band) on the 0..5 scale.

    One axes with stacked lanes rather than one axes per AU: the lanes line up in time, and matplotlib draws one
    set of ticks instead of one per AU (a 12-AU report renders in a fraction of a second).

    Args:
        t: (N,) seconds; intensity: AU -> (N,) intensity (NaN where not analysed); t0, t1: the recording's range.
        names: AU -> short FACS name for the lane labels.
    """
    aus = list(intensity)
    n = max(1, len(aus))
    lane_in = 0.5
    fig = _figure(11.0, lane_in * n + 0.55, margins=False)
    bottom = 0.42 / (lane_in * n + 0.55)
    fig.subplots_adjust(left=0.17, right=0.985, top=1 - 0.1 / (lane_in * n + 0.55), bottom=bottom)
    ax = fig.subplots()
    scale = 0.85 / 5.0  # a lane is 1 unit high; intensity 5 reaches 85% of it
    if aus:
        c, mean, mx = decimate(t, np.column_stack([intensity[a] for a in aus]), t0, t1, LANE_POINTS)
    for i, au in enumerate(aus):
        base = n - 1 - i
        ax.axhspan(base, base + 1, color="#f7f7f7" if i % 2 else "#ffffff", linewidth=0, zorder=0)
        ax.axhline(base, color="#d9d9d9", linewidth=0.5, zorder=1)
        ax.fill_between(c, base + mean[:, i] * scale, base + mx[:, i] * scale, color="#9ecae1", linewidth=0,
                        zorder=2)
        ax.plot(c, base + mean[:, i] * scale, color="#08519c", linewidth=0.7, zorder=3)
    ax.set_ylim(0, n)
    ax.set_yticks([n - 1 - i + 0.4 for i in range(len(aus))])
    ax.set_yticklabels([au + (f" {names[au]}" if names and au in names else "") for au in aus], fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    _time_axis(ax, t0, t1)
    return to_svg(fig, name)


def expressions_over_time(t: np.ndarray, probs: np.ndarray, classes: Sequence[str], t0: float, t1: float,
                          name: str = "expr") -> str:
    """Stacked areas of the per-bin mean expression probabilities (0..1, each bin sums to 1 where a face is).

    Args:
        t: (N,) seconds; probs: (N, C) probabilities in `classes` order, NaN where not analysed.
    """
    c, mean, _ = decimate(t, probs, t0, t1, MAX_POINTS)
    fig = _figure(11.0, 2.4)
    ax = fig.subplots()
    base = np.zeros(len(c))
    for k, cls in enumerate(classes):
        top = base + mean[:, k]
        ax.fill_between(c, base, top, color=EXPRESSION_COLORS.get(cls, f"C{k}"), linewidth=0, label=cls)
        base = top
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    _style(ax)
    _time_axis(ax, t0, t1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False, reverse=True)
    return to_svg(fig, name)


def head_pose(t: np.ndarray, pose: dict[str, np.ndarray], t0: float, t1: float, threshold_deg: float,
              segments: Sequence[tuple[float, float]] = (), name: str = "pose") -> str:
    """Per-bin mean yaw / pitch / roll (degrees) over time, the ±threshold lines and the extreme segments shaded."""
    fig = _figure(11.0, 2.0)
    ax = fig.subplots()
    if len(segments):  # one collection, however many segments
        ax.broken_barh([(a, b - a) for a, b in segments], (0, 1), transform=ax.get_xaxis_transform(),
                       color="#fdd0a2", linewidth=0)
    colors = {"yaw": "#d94801", "pitch": "#2171b5", "roll": "#969696"}
    for k, (label, values) in enumerate(pose.items()):
        c, mean, _ = decimate(t, values, t0, t1, MAX_POINTS)
        ax.plot(c, mean[:, 0], linewidth=0.8, color=colors.get(label, f"C{k}"), label=label)
    for y in (-threshold_deg, threshold_deg):
        ax.axhline(y, color="#7f2704", linewidth=0.6, linestyle="--")
    ax.set_ylabel("degrees")
    _style(ax)
    _time_axis(ax, t0, t1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False)
    return to_svg(fig, name)


def detection_over_time(t_frames: np.ndarray, has_face: np.ndarray, t_rows: np.ndarray, confidence: np.ndarray,
                        t0: float, t1: float, name: str = "det") -> str:
    """Detector confidence (per-bin mean and min band, 0..1) and the share of frames with a face, over time.

    Args:
        t_frames: (F,) seconds of every analysed frame; has_face: (F,) 0/1.
        t_rows: (N,) seconds of the face rows; confidence: (N,) detector score.
    """
    fig = _figure(11.0, 2.0)
    ax = fig.subplots()
    c, share, _ = decimate(t_frames, has_face.astype(np.float64), t0, t1, MAX_POINTS)
    ax.fill_between(c, 0, share[:, 0], color="#c7e9c0", linewidth=0, step="mid", label="frames with a face")
    if len(t_rows):
        cc, mean, _ = decimate(t_rows, confidence, t0, t1, MAX_POINTS)
        _, _, lowest = decimate(t_rows, -confidence, t0, t1, MAX_POINTS)  # max of -x = -(min of x)
        ax.fill_between(cc, -lowest[:, 0], mean[:, 0], color="#bcbddc", linewidth=0, label="lowest confidence")
        ax.plot(cc, mean[:, 0], color="#54278f", linewidth=0.8, label="mean confidence")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("score / share")
    _style(ax)
    _time_axis(ax, t0, t1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False)
    return to_svg(fig, name)
