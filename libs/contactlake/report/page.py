"""The run report page: sections of charts, tables and notes rendered into one
self-contained HTML file (styles, chart specs and the Plotly library inline; no URL is
fetched, so it opens from disk or as an e-mail attachment).

Charts are drawn by Plotly in the browser. Each chart container gets
``data-rendered="true"`` once drawn (``"error"`` and a message when it could not be),
script errors are collected in ``#report-errors`` (and ``body[data-js-errors]``), and
``body[data-draw-ms]`` says how long drawing took, so a headless browser can check the page.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime

import plotly.io as pio
from plotly.offline import get_plotlyjs

from contactlake.report.charts import Chart

PLOTLY_CONFIG = {
    "displaylogo": False,
    "displayModeBar": False,  # drag to zoom, double-click to reset (said in the footer)
    "responsive": True,
}


@dataclass(frozen=True)
class Note:
    """A short text in a section; ``kind="missing"`` for what is not available."""

    text: str
    kind: str = "info"  # info | missing | warning


@dataclass(frozen=True)
class Table:
    """A small table; cells are shown as text (escaped)."""

    columns: list[str]
    rows: list[list]
    title: str = ""
    caption: str = ""
    numeric: tuple[str, ...] = ()  # right-aligned columns


@dataclass(frozen=True)
class Tiles:
    """Headline numbers: (label, value, hint) triples; ``alert`` tiles are highlighted."""

    items: list[tuple[str, str, str]]
    alert: tuple[int, ...] = ()  # indexes of tiles to highlight


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    items: list = field(default_factory=list)

    def add(self, *items) -> Section:
        self.items.extend(items)
        return self

    @property
    def charts(self) -> list[Chart]:
        return [i for i in self.items if isinstance(i, Chart)]

    @property
    def available(self) -> bool:
        """False when the section holds nothing but notes of missing inputs."""
        return any(not (isinstance(i, Note) and i.kind == "missing") for i in self.items)


def missing(table: str) -> Note:
    """The note of a section whose input table does not exist (yet)."""
    return Note(f"not available: {table} missing", "missing")


CSS = """
:root { --ink:#1f2933; --muted:#6b7685; --line:#e3e7ed; --bg:#f5f7fa; --accent:#1f5fa8;
        --bad:#c62828; --warn:#b26a00; --good:#2e7d32; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.5 system-ui,-apple-system,"Segoe UI","DejaVu Sans",Roboto,Arial,sans-serif; }
header { background:#12324f; color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 6px; font-size:24px; font-weight:650; letter-spacing:.2px; }
header .meta { display:flex; flex-wrap:wrap; gap:6px 26px; font-size:13px; color:#c9d6e3; }
header .meta b { color:#fff; font-weight:600; }
main { max-width:1280px; margin:0 auto; padding:20px 28px 40px; }
nav.toc { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 18px;
          margin-bottom:18px; }
nav.toc h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted);
             margin:0 0 6px; }
nav.toc ol { margin:0; padding-left:20px; columns:2; column-gap:40px; }
nav.toc li { padding:1px 0; }
nav.toc a { color:var(--accent); text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
nav.toc .na { color:var(--muted); font-size:12px; margin-left:6px; }
section.report { background:#fff; border:1px solid var(--line); border-radius:10px;
                 padding:16px 20px 20px; margin-bottom:18px; }
section.report > h2 { margin:0 0 4px; font-size:19px; }
section.report > p.intro { margin:0 0 12px; color:var(--muted); max-width:900px; }
.grid { display:grid; grid-template-columns:repeat(2,minmax(0,1fr)); gap:14px; }
.grid > .wide { grid-column:1 / -1; }
figure.chart-box { margin:0; border:1px solid var(--line); border-radius:8px; padding:4px;
                   background:#fff; min-width:0; }
figure.chart-box figcaption { font-size:12px; color:var(--muted); padding:0 10px 6px; }
.chart { width:100%; min-height:200px; }
.chart[data-rendered="error"] { color:var(--bad); padding:20px; }
.note { padding:10px 14px; border-radius:8px; background:#f1f4f8; color:var(--muted);
        margin:6px 0; }
.note.missing { background:#fff6e5; color:var(--warn); border:1px solid #f3dfb4; }
.note.warning { background:#fdecea; color:var(--bad); border:1px solid #f5c6c1; }
.tiles { display:flex; flex-wrap:wrap; gap:12px; margin:4px 0 14px; }
.tile { flex:1 1 160px; border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile .v { font-size:22px; font-weight:650; }
.tile .l { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.tile .h { font-size:12px; color:var(--muted); }
.tile.alert { border-color:#f5c6c1; background:#fdf3f2; }
.tile.alert .v { color:var(--bad); }
.table-box { grid-column:1 / -1; overflow-x:auto; }
.table-box h3 { font-size:14px; margin:8px 0 6px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left;
         vertical-align:top; }
th { background:#f5f7fa; font-weight:600; position:sticky; top:0; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr:hover td { background:#fafbfd; }
.caption { font-size:12px; color:var(--muted); margin-top:4px; }
footer { color:var(--muted); font-size:12px; max-width:1280px; margin:0 auto; padding:0 28px 30px; }
footer code { font-size:11px; }
#report-errors { display:none; color:var(--bad); background:#fdecea; padding:10px 14px;
                 border-radius:8px; white-space:pre-wrap; }
#report-errors.shown { display:block; margin:0 0 14px; }
@media (max-width: 900px) { .grid { grid-template-columns:1fr; } nav.toc ol { columns:1; } }
@media print { body { background:#fff; } section.report { break-inside:avoid; } }
"""

# Collects script errors before anything else runs (load errors of the library included).
ERROR_HOOK = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e));
  var box = document.getElementById('report-errors');
  if (box) { box.textContent = window.__reportErrors.join('\\n'); box.className = 'shown'; }
  if (document.body) { document.body.setAttribute('data-js-errors', window.__reportErrors.length); }
});
"""

DRAW = """
(function () {
  var specs = JSON.parse(document.getElementById('chart-specs').textContent);
  var config = JSON.parse(document.getElementById('chart-config').textContent);
  var box = document.getElementById('report-errors');
  function fail(el, id, err) {
    window.__reportErrors.push(id + ': ' + err);
    el.setAttribute('data-rendered', 'error');
    el.textContent = 'This chart could not be drawn: ' + err;
    box.textContent = window.__reportErrors.join('\\n'); box.className = 'shown';
  }
  var started = performance.now();
  var drawn = Object.keys(specs).map(function (id) {
    var el = document.getElementById(id);
    try {
      return Plotly.newPlot(el, specs[id].data, specs[id].layout, config).then(
        function () { el.setAttribute('data-rendered', 'true'); },
        function (err) { fail(el, id, err); });
    } catch (err) { fail(el, id, err); return null; }
  });
  Promise.all(drawn).then(function () {
    document.body.setAttribute('data-draw-ms', Math.round(performance.now() - started));
  });
  document.body.setAttribute('data-js-errors', window.__reportErrors.length);
  document.body.setAttribute('data-charts', Object.keys(specs).length);
})();
"""


def _script_json(value: str) -> str:
    """JSON text safe inside a <script> element: every "<" (only ever inside JSON strings)
    as the escape \\u003c, so no "</script>" or "<!--" can end or confuse the element."""
    return value.replace("<", "\\u003c")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(t: Table) -> str:
    head = "".join(
        f'<th class="num">{html.escape(c)}</th>' if c in t.numeric else f"<th>{html.escape(c)}</th>"
        for c in t.columns
    )
    body = []
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{html.escape(_cell(v))}</td>'
            if c in t.numeric
            else f"<td>{html.escape(_cell(v))}</td>"
            for c, v in zip(t.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    title = f"<h3>{html.escape(t.title)}</h3>" if t.title else ""
    caption = f'<div class="caption">{html.escape(t.caption)}</div>' if t.caption else ""
    return (
        f'<div class="table-box">{title}<table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{caption}</div>"
    )


def _tiles(t: Tiles) -> str:
    out = []
    for i, (label, value, hint) in enumerate(t.items):
        cls = "tile alert" if i in t.alert else "tile"
        out.append(
            f'<div class="{cls}"><div class="l">{html.escape(label)}</div>'
            f'<div class="v">{html.escape(value)}</div><div class="h">{html.escape(hint)}</div></div>'
        )
    return f'<div class="tiles">{"".join(out)}</div>'


def _chart(c: Chart) -> str:
    height = int(c.figure.layout.height or 340)
    cls = "chart-box wide" if c.wide else "chart-box"
    caption = f"<figcaption>{html.escape(c.caption)}</figcaption>" if c.caption else ""
    return (
        f'<figure class="{cls}"><div class="chart" id="{html.escape(c.id)}" '
        f'style="height:{height}px" data-rendered="false"></div>{caption}</figure>'
    )


def _section(s: Section) -> str:
    parts, grid = [], []

    def flush():
        if grid:
            parts.append(f'<div class="grid">{"".join(grid)}</div>')
            grid.clear()

    for item in s.items:
        if isinstance(item, Chart):
            grid.append(_chart(item))
        elif isinstance(item, Table):
            grid.append(_table(item))
        else:
            flush()
            if isinstance(item, Note):
                parts.append(f'<div class="note {item.kind}">{html.escape(item.text)}</div>')
            elif isinstance(item, Tiles):
                parts.append(_tiles(item))
            else:
                raise TypeError(f"unknown report item {type(item).__name__}")
    flush()
    intro = f'<p class="intro">{html.escape(s.intro)}</p>' if s.intro else ""
    return (
        f'<section class="report" id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>'
        f"{intro}{''.join(parts)}</section>"
    )


def render(
    sections: list[Section],
    *,
    title: str,
    run_date: date,
    lake_root: str,
    env: str,
    generated_at: datetime,
    tables_read: dict[str, int],
    plotly_js: str | None = None,
) -> str:
    """The whole page as one HTML string.

    Args:
        plotly_js: the Plotly library source to inline (default: the installed plotly.py's
            bundle, ``plotly.offline.get_plotlyjs()``).
    """
    charts = [c for s in sections for c in s.charts]
    ids = [c.id for c in charts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"chart ids must be unique: {sorted(i for i in ids if ids.count(i) > 1)}")
    specs = ",".join(
        f"{json.dumps(c.id)}:{pio.to_json(c.figure, validate=False, pretty=False)}" for c in charts
    )
    toc = "".join(
        f'<li><a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>'
        + ("" if s.available else '<span class="na">not available</span>')
        + "</li>"
        for s in sections
    )
    read = ", ".join(f"{t}@v{v}" for t, v in sorted(tables_read.items())) or "none"
    e = html.escape
    js = get_plotlyjs() if plotly_js is None else plotly_js
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · {run_date.isoformat()}</title>
<style>{CSS}</style>
<script>{ERROR_HOOK}</script>
</head>
<body data-charts="{len(charts)}">
<header>
<h1>{e(title)} · {run_date.isoformat()}</h1>
<div class="meta">
<span>run date <b>{run_date.isoformat()}</b></span>
<span>lake <b>{e(lake_root)}</b></span>
<span>env <b>{e(env)}</b></span>
<span>generated <b>{generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")}</b></span>
</div>
</header>
<main>
<noscript><div class="note warning">The charts of this report are drawn with JavaScript:
open the file in a web browser.</div></noscript>
<div id="report-errors"></div>
<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>
{"".join(_section(s) for s in sections)}
</main>
<footer>Tables read (Delta versions): <code>{e(read)}</code>. Charts: Plotly (inline);
hover for values, drag to zoom, double-click to reset.</footer>
<script>{js}</script>
<script type="application/json" id="chart-config">{json.dumps(PLOTLY_CONFIG)}</script>
<script type="application/json" id="chart-specs">{_script_json("{" + specs + "}")}</script>
<script>{DRAW}</script>
</body>
</html>
"""
