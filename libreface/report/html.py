"""Report step 5: HTML rendering: one self-contained page (inline CSS and SVG; no scripts, fonts or links)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;color:#222;
background:#fafafa;line-height:1.4}
main{max-width:1120px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:1.5em;margin:.3em 0 .1em}h2{font-size:1.2em;margin:1.6em 0 .4em;padding-top:.4em;
border-top:2px solid #ddd}h3{font-size:1.02em;margin:1.1em 0 .3em}
.sub{color:#666;margin:0 0 .8em}.note{color:#555;font-size:.88em;max-width:80em}
table{border-collapse:collapse;font-size:.86em;margin:.3em 0 .8em}
th,td{padding:2px 10px 2px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3;font-weight:600}
table.kv td:first-child{color:#555;white-space:nowrap}table.kv td{overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:.4em 0 .8em}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:6px 12px;min-width:100px;flex:1 1 0}
.card b{display:block;font-size:1.25em}.card span{color:#666;font-size:.82em}
.cols{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
svg.fig{width:100%;height:auto;display:block}nav a{margin-right:12px}
.bar{display:inline-block;height:.7em;background:#6baed6;vertical-align:middle;margin-right:4px}
@media print{h2{break-before:page}}
"""


def esc(x: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(x), quote=True)


def num(x: object, digits: int = 2, suffix: str = "") -> str:
    """A number for a table cell ("–" for None / NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}{suffix}"
    return f"{float(x):,.{digits}f}{suffix}"


def kv_table(items: dict) -> str:
    """A two-column key/value table."""
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] | None = None,
          raw: bool = False) -> str:
    """A table; cells are escaped unless `raw` (then they are trusted HTML made by this module's callers)."""
    numeric = list(numeric or [False] * len(header))
    cls = [' class="n"' if n else "" for n in numeric]
    head = "".join(f"<th{c}>{esc(h)}</th>" for h, c in zip(header, cls))
    body = "".join("<tr>" + "".join(f"<td{c}>{v if raw else esc(v)}</td>" for v, c in zip(r, cls)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar(pct: float, width_px: int = 80) -> str:
    """A small inline bar for a 0..100 share, followed by its value."""
    if pct is None or (isinstance(pct, float) and math.isnan(pct)):
        return "–"
    w = max(0, min(width_px, round(width_px * pct / 100)))
    return f'<span class="bar" style="width:{w}px"></span>{pct:.1f}%'


def cards(items: dict[str, str]) -> str:
    """A row of headline numbers: {label: value}."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items.items()) + "</div>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, nav: dict[str, str], sections: Sequence[str]) -> str:
    """The whole document: `nav` is {anchor: title}, `sections` are HTML fragments."""
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav.items())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p><nav>{links}</nav>"
            + "".join(sections) + "</main></body></html>\n")
