"""Chart specs of the run report: small pandas tables in, Plotly figures out (no I/O, no Spark).

Every chart function returns a :class:`Chart` (a DOM id, a ``plotly.graph_objects.Figure``
and an optional caption); :mod:`contactlake.report.page` serialises the figures into one
self-contained page. The data shaping behind the charts (Lorenz points, Gini, exclusion
matrix, ROC/PR points from a lift table, the latest job attempts...) are separate pure
functions so they can be checked against hand-worked values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Roboto, Arial, sans-serif"
INK = "#1f2933"
GRID = "#e6e9ee"
MUTED = "#8a94a3"
VALUE = "#1f5fa8"
TARGET = "#6b7280"
BREACH = "#d62728"
ANOMALY = "#f28e2b"
GOOD = "#2ca02c"
# Okabe-Ito, colour-blind safe; channels, jobs and series take colours in this order.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
]
# Heat map colours saturate at this many standard deviations (the cells still show the value).
Z_CAP = 3.0
# How a KPI unit (conf/kpis/*.yaml `unit`) is shown: axis tick format and value suffix.
UNIT_FORMAT = {
    "ratio": (".0%", ""),
    "seconds": (",.0f", " s"),
    "points": (",.0f", ""),
    "per_1000_contacts": (".1f", " ‰"),
}


@dataclass(frozen=True)
class Chart:
    """One chart of the page: ``id`` is its DOM id (unique in the page)."""

    id: str
    figure: go.Figure
    caption: str = ""
    wide: bool = False  # spans the whole width of the section instead of half


@dataclass(frozen=True)
class KpiInfo:
    """What the report shows of a KPI definition (conf/kpis/<id>.yaml)."""

    id: str
    name: str
    unit: str
    direction: str  # higher | lower (better)
    threshold: float | None = None
    description: str = ""


# ---------------------------------------------------------------------------- formatting
def format_value(value: float | None, unit: str) -> str:
    """A KPI value as people read it: 0.273 ratio -> "27.3%", 412.4 seconds -> "412 s"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "seconds":
        return f"{value:,.0f} s"
    if unit == "points":
        return f"{value:+.1f}"
    if unit == "per_1000_contacts":
        return f"{value:.2f} ‰"
    return f"{value:,.4g}"


def target_text(kpi: KpiInfo) -> str:
    if kpi.threshold is None:
        return "no target"
    sign = "≥" if kpi.direction == "higher" else "≤"
    return f"target {sign} {format_value(kpi.threshold, kpi.unit)}"


def _figure(
    title: str,
    subtitle: str = "",
    *,
    x_title: str = "",
    y_title: str = "",
    height: int = 340,
    legend: bool = True,
) -> go.Figure:
    """An empty figure in the report's style (no embedded Plotly template)."""
    fig = go.Figure()
    top = 72 if subtitle else 52
    # The legend sits under the x axis (and its title): its offset in pixels, as a share of
    # the plot area's height (Plotly places legends in plot-area units).
    below = 62 if x_title else 38
    fig.update_layout(
        template=go.layout.Template(),
        title={
            "text": f"<b>{title}</b>",
            "subtitle": {"text": subtitle, "font": {"size": 12, "color": MUTED}},
            "x": 0.01,
            "xanchor": "left",
            "y": 0.97,
            "yanchor": "top",
            "font": {"size": 15, "color": INK},
        },
        height=height,
        margin={"l": 64, "r": 24, "t": top, "b": below + 24 if legend else below},
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": FONT, "size": 12, "color": INK},
        showlegend=legend,
        legend={
            "orientation": "h",
            "x": 0,
            "y": -below / max(height - top - below - 24, 60),
            "yanchor": "top",
            "font": {"size": 11},
            "traceorder": "normal",
        },
        hoverlabel={"font": {"family": FONT}},
        colorway=PALETTE,
    )
    axis = {
        "showgrid": True,
        "gridcolor": GRID,
        "linecolor": "#b8c0cc",
        "zeroline": False,
        "ticks": "outside",
        "tickcolor": "#b8c0cc",
        "automargin": True,
    }
    fig.update_xaxes(title={"text": x_title, "standoff": 8}, **axis)
    fig.update_yaxes(title={"text": y_title, "standoff": 8}, **axis)
    return fig


def _reference_line(x: list, y: list, name: str) -> go.Scatter:
    """A thin dotted line to compare against (equality, random, base rate, perfect)."""
    return go.Scatter(
        x=x,
        y=y,
        name=name,
        mode="lines",
        line={"color": TARGET, "dash": "dot", "width": 1},
        hoverinfo="skip",
    )


def _date_axis(fig: go.Figure) -> None:
    fig.update_xaxes(type="date", tickformat="%b %d", hoverformat="%Y-%m-%d")


def _dates(values) -> list[str]:
    return [pd.Timestamp(v).date().isoformat() for v in values]


def _none_if_nan(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


# ---------------------------------------------------------------------------- KPI trends
def kpi_trend(kpi: KpiInfo, rows: pd.DataFrame, alerts: pd.DataFrame, chart_id: str) -> Chart:
    """A KPI's daily value against its target, alerts marked.

    Args:
        rows: ``kpi_date, value, target, complete`` of the KPI (one dimension value).
        alerts: ``kpi_date, kind (target_breach | anomaly), value, detail`` of the same rows.
    """
    rows = rows.sort_values("kpi_date")
    tick, suffix = UNIT_FORMAT.get(kpi.unit, ("", ""))
    latest = rows.dropna(subset=["value"]).tail(1)
    subtitle = target_text(kpi)
    if len(latest):
        last = latest.iloc[0]
        provisional = "" if bool(last["complete"]) else ", provisional"
        subtitle = (
            f"{format_value(float(last['value']), kpi.unit)} on "
            f"{_dates([last['kpi_date']])[0]}{provisional} · {subtitle}"
        )
    fig = _figure(kpi.name, subtitle, y_title=kpi.unit.replace("_", " "), height=300)
    complete = [bool(c) for c in rows["complete"]]
    fig.add_trace(
        go.Scatter(
            x=_dates(rows["kpi_date"]),
            y=_none_if_nan(rows["value"].tolist()),
            name="value",
            mode="lines+markers",
            line={"color": VALUE, "width": 2},
            marker={
                "color": VALUE,
                "size": 6,
                "symbol": ["circle" if c else "circle-open" for c in complete],
            },
            customdata=["" if c else " (provisional)" for c in complete],
            hovertemplate=f"%{{x}}: %{{y:{tick}}}{suffix}%{{customdata}}<extra></extra>",
        )
    )
    targets = rows.dropna(subset=["target"])
    if len(targets):
        fig.add_trace(
            go.Scatter(
                x=_dates(targets["kpi_date"]),
                y=targets["target"].tolist(),
                name="target",
                mode="lines",
                line={"color": TARGET, "dash": "dash", "width": 1.5, "shape": "hv"},
                hovertemplate=f"target %{{y:{tick}}}{suffix}<extra></extra>",
            )
        )
    for kind, label, color, symbol, size in (
        ("target_breach", "target breach", BREACH, "x", 10),
        ("anomaly", "anomaly", ANOMALY, "diamond-open", 14),
    ):
        found = alerts[alerts["kind"] == kind] if len(alerts) else alerts
        if len(found):
            fig.add_trace(
                go.Scatter(
                    x=_dates(found["kpi_date"]),
                    y=found["value"].tolist(),
                    name=label,
                    mode="markers",
                    marker={"color": color, "symbol": symbol, "size": size, "line": {"width": 2}},
                    text=found["detail"].tolist(),
                    hovertemplate=f"{label}: %{{text}}<extra></extra>",
                )
            )
    fig.update_yaxes(tickformat=tick, ticksuffix=suffix.strip() and suffix)
    _date_axis(fig)
    return Chart(chart_id, fig, kpi.description)


def alert_counts_chart(alerts: pd.DataFrame, chart_id: str) -> Chart:
    """Alerts per day by kind (stacked bars). ``alerts``: ``kpi_date, kind``."""
    fig = _figure(
        "Alerts per day",
        "target breaches and anomalies over every KPI and dimension",
        y_title="alerts",
        height=300,
    )
    counts = alerts.groupby(["kpi_date", "kind"]).size().rename("n").reset_index()
    for kind, color in (("target_breach", BREACH), ("anomaly", ANOMALY)):
        part = counts[counts["kind"] == kind]
        fig.add_trace(
            go.Bar(
                x=_dates(part["kpi_date"]),
                y=part["n"].tolist(),
                name=kind.replace("_", " "),
                marker_color=color,
                hovertemplate="%{x}: %{y} " + kind.replace("_", " ") + "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    _date_axis(fig)
    return Chart(chart_id, fig)


# ---------------------------------------------------------------------------- concentration
def lorenz_points(rows: pd.DataFrame) -> pd.DataFrame:
    """The Lorenz curve from ``kpi_daily`` rows of one day (dimension ``lorenz``).

    Args:
        rows: ``dimension_value`` (share of customers p as text, e.g. "0.1") and ``value``
            (share of contacts made by the least active p of customers).

    Returns:
        ``x`` (share of customers), ``y`` (share of contacts), from (0, 0), sorted by x.
    """
    points = pd.DataFrame(
        {"x": rows["dimension_value"].astype(float), "y": rows["value"].astype(float)}
    )
    points = pd.concat([pd.DataFrame({"x": [0.0], "y": [0.0]}), points[points["x"] > 0]])
    return points.sort_values("x").reset_index(drop=True)


def gini(points: pd.DataFrame) -> float:
    """Gini coefficient of a Lorenz curve (``x``, ``y`` from (0, 0)): 1 - 2 x area under it
    (trapezoids between the points)."""
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    area = float(((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2).sum())
    return 1.0 - 2.0 * area


def top_share_text(top_shares: pd.DataFrame) -> str:
    """ "top 5% → 13%, top 14% → 28%" from top-share rows (``dimension_value``, ``value``)."""
    pairs = sorted(
        zip(top_shares["dimension_value"].astype(float), top_shares["value"], strict=True)
    )
    return ", ".join(f"top {x:.0%} → {v:.0%}" for x, v in pairs)


def lorenz_chart(
    curves: list[tuple[str, pd.DataFrame]],
    top_shares: pd.DataFrame,
    chart_id: str,
    subtitle: str,
) -> Chart:
    """Lorenz curves (the first is the run date's, later ones for comparison) and the
    top-share points ("top 14% of customers make 51% of calls").

    Args:
        curves: (label, :func:`lorenz_points`) pairs.
        top_shares: ``dimension_value`` (top share x as text) and ``value`` of the first
            curve's day; drawn at (1 - x, 1 - value).
    """
    first = curves[0][1]
    if len(top_shares):
        subtitle = f"{subtitle}<br>{top_share_text(top_shares)} of contacts"
    fig = _figure(
        f"Contact concentration (Gini {gini(first):.2f})",
        subtitle,
        x_title="share of customers, least active first",
        y_title="share of contacts",
        height=420,
    )
    fig.add_trace(_reference_line([0, 1], [0, 1], "equal contacts per customer"))
    for i, (label, points) in enumerate(curves):
        fig.add_trace(
            go.Scatter(
                x=points["x"].tolist(),
                y=points["y"].tolist(),
                name=f"{label} (Gini {gini(points):.2f})",
                mode="lines+markers",
                line={
                    "color": VALUE if i == 0 else PALETTE[1 + i],
                    "width": 2.5 if i == 0 else 1.5,
                },
                marker={"size": 5},
                fill="tonexty" if i == 0 else None,
                fillcolor="rgba(31, 95, 168, 0.10)",
                hovertemplate="least active %{x:.0%} of customers make %{y:.1%} of contacts"
                "<extra></extra>",
            )
        )
    if len(top_shares):
        x = top_shares["dimension_value"].astype(float)
        v = top_shares["value"].astype(float)
        fig.add_trace(
            go.Scatter(
                x=(1 - x).tolist(),
                y=(1 - v).tolist(),
                name="top shares of customers",
                mode="markers",
                marker={"color": BREACH, "size": 9, "symbol": "circle"},
                text=[f"top {a:.0%} → {b:.1%}" for a, b in zip(x, v, strict=True)],
                hovertemplate="%{text} of contacts<extra></extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1.0])
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    # the empty upper-left triangle holds the legend
    fig.update_layout(
        legend={
            "orientation": "v",
            "x": 0.02,
            "y": 0.98,
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(255,255,255,0.85)",
        },
        margin={"b": 56},
    )
    return Chart(chart_id, fig)


def top_share_trend(rows: pd.DataFrame, chart_id: str) -> Chart:
    """Share of contacts made by the top x of customers, per day; the target where set.

    Args:
        rows: ``kpi_date, dimension_value (x as text), value, target, complete``.
    """
    fig = _figure(
        "Share of contacts made by the most active customers",
        "trailing-window concentration per day",
        y_title="share of contacts",
        height=340,
    )
    shares = sorted(rows["dimension_value"].unique(), key=float)
    for i, share in enumerate(shares):
        part = rows[rows["dimension_value"] == share].sort_values("kpi_date")
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=_dates(part["kpi_date"]),
                y=part["value"].tolist(),
                name=f"top {float(share):.0%}",
                mode="lines+markers",
                line={"color": color, "width": 2},
                marker={"size": 5},
                hovertemplate=f"top {float(share):.0%}: %{{y:.1%}}<extra>%{{x}}</extra>",
            )
        )
        target = part.dropna(subset=["target"])
        if len(target):
            fig.add_trace(
                go.Scatter(
                    x=_dates(target["kpi_date"]),
                    y=target["target"].tolist(),
                    name=f"target (top {float(share):.0%})",
                    mode="lines",
                    line={"color": color, "dash": "dash", "width": 1.2, "shape": "hv"},
                    hovertemplate="target %{y:.0%}<extra></extra>",
                )
            )
    fig.update_yaxes(tickformat=".0%")
    _date_axis(fig)
    return Chart(chart_id, fig)


# ---------------------------------------------------------------------------- channels
def channel_mix_chart(rows: pd.DataFrame, chart_id: str) -> Chart:
    """Share of inbound contacts per channel and day (stacked areas).

    Args:
        rows: ``kpi_date, dimension_value (channel), value`` of KPI channel_mix.
    """
    fig = _figure(
        "Channel mix",
        "share of the day's inbound contacts per channel",
        y_title="share of inbound contacts",
        height=380,
    )
    order = rows.groupby("dimension_value")["value"].mean().sort_values(ascending=False).index
    days = sorted(rows["kpi_date"].unique())
    for i, channel in enumerate(order):
        part = rows[rows["dimension_value"] == channel].set_index("kpi_date")["value"]
        fig.add_trace(
            go.Scatter(
                x=_dates(days),
                y=[float(part.get(d, 0.0)) for d in days],
                name=str(channel),
                mode="lines",
                stackgroup="mix",
                line={"width": 0.5, "color": PALETTE[i % len(PALETTE)]},
                hovertemplate=f"{channel}: %{{y:.1%}}<extra></extra>",
            )
        )
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    _date_axis(fig)
    fig.update_layout(hovermode="x unified")
    return Chart(chart_id, fig)


def channel_shift_chart(rows: pd.DataFrame, kpis: list[KpiInfo], chart_id: str) -> Chart:
    """Diversion, return and retention rates per day, each with its target (dashed).

    Args:
        rows: ``kpi_id, kpi_date, value, target, complete`` (dimension all).
        kpis: the KPIs to draw, in order.
    """
    fig = _figure(
        "Channel shift",
        "dashed: targets; open markers: provisional",
        y_title="rate",
        height=380,
    )
    for i, kpi in enumerate(kpis):
        part = rows[rows["kpi_id"] == kpi.id].sort_values("kpi_date")
        if not len(part):
            continue
        color = PALETTE[i % len(PALETTE)]
        complete = [bool(c) for c in part["complete"]]
        fig.add_trace(
            go.Scatter(
                x=_dates(part["kpi_date"]),
                y=_none_if_nan(part["value"].tolist()),
                name=kpi.name,
                legendgroup=kpi.id,
                mode="lines+markers",
                line={"color": color, "width": 2},
                marker={
                    "color": color,
                    "size": 6,
                    "symbol": ["circle" if c else "circle-open" for c in complete],
                },
                hovertemplate=f"{kpi.name}: %{{y:.1%}}<extra>%{{x}}</extra>",
            )
        )
        target = part.dropna(subset=["target"])
        if len(target):
            fig.add_trace(
                go.Scatter(
                    x=_dates(target["kpi_date"]),
                    y=target["target"].tolist(),
                    name=f"{target_text(kpi)}",
                    legendgroup=kpi.id,
                    showlegend=False,
                    mode="lines",
                    line={"color": color, "dash": "dash", "width": 1.2, "shape": "hv"},
                    hovertemplate=f"{kpi.id} target %{{y:.0%}}<extra></extra>",
                )
            )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    _date_axis(fig)
    return Chart(chart_id, fig)


# ---------------------------------------------------------------------------- segments
def profile_table(sums: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Segment profiles: each segment's mean of each feature against the population's.

    Args:
        sums: one row per segment: ``segment_id, customers`` and, per feature f, the count
            ``n__f``, sum ``s__f`` and sum of squares ``q__f`` of its non-null values
            (:func:`contactlake.report.aggregates.segment_feature_sums`).
        features: the features, in order.

    Returns:
        ``segment_id, size, share, feature, segment_mean, population_mean, population_std,
        z`` with z = (segment mean - population mean) / population standard deviation (0
        when there is no spread or no value), one row per segment and feature: the shape of
        :func:`contactlake.ml.segments.segment_profile`.
    """
    sums = sums.sort_values("segment_id").reset_index(drop=True)
    total = float(sums["customers"].sum()) or 1.0
    rows = []
    for f in features:
        n = sums[f"n__{f}"].fillna(0).astype(float)
        s = sums[f"s__{f}"].fillna(0).astype(float)
        q = sums[f"q__{f}"].fillna(0).astype(float)
        count = float(n.sum())
        mean = float(s.sum()) / count if count else None
        std = math.sqrt(max(float(q.sum()) / count - mean * mean, 0.0)) if count else None
        for i, seg in sums.iterrows():
            seg_mean = s[i] / n[i] if n[i] else None
            z = (seg_mean - mean) / std if seg_mean is not None and std else 0.0
            rows.append(
                (
                    int(seg["segment_id"]),
                    int(seg["customers"]),
                    seg["customers"] / total,
                    f,
                    seg_mean,
                    mean,
                    std,
                    float(z),
                )
            )
    columns = ["segment_id", "size", "share", "feature", "segment_mean", "population_mean"]
    columns += ["population_std", "z"]
    return (
        pd.DataFrame(rows, columns=columns)
        .sort_values(["segment_id"], kind="stable")
        .reset_index(drop=True)
    )


def distinctive_features(profile: pd.DataFrame, top: int) -> list[str]:
    """The features to show for segments: each segment's most distinctive feature in turn
    (largest segment first), then each one's second, ... until ``top`` distinct features,
    so a small, extreme segment cannot take every column.

    Args:
        profile: ``segment_id, size, feature, z`` (:func:`profile_table`). Within a segment
            features rank by |z|, largest first, ties by name.
    """
    order = (
        profile[["segment_id", "size"]]
        .drop_duplicates("segment_id")
        .sort_values(["size", "segment_id"], ascending=[False, True])["segment_id"]
        .tolist()
    )
    ranked = {
        s: sorted(
            (
                (abs(float(r.z)), r.feature)
                for r in profile[profile["segment_id"] == s].itertuples()
            ),
            key=lambda af: (-af[0], af[1]),
        )
        for s in order
    }
    chosen: list[str] = []
    depth = max((len(r) for r in ranked.values()), default=0)
    for level in range(depth):
        for s in order:
            if len(chosen) >= top:
                return chosen
            candidates = [f for _, f in ranked[s] if f not in chosen]
            if level < len(ranked[s]) and candidates:
                chosen.append(candidates[0])
    return chosen


def segment_label(segment_id: int, name: str | None) -> str:
    return f"{segment_id}: {name}" if name else str(segment_id)


def segment_sizes_chart(sizes: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Customers per segment (horizontal bars, largest on top).

    Args:
        sizes: ``segment_id, segment_name, customers`` (optionally ``mean_churn``).
    """
    sizes = sizes.sort_values("customers")
    total = float(sizes["customers"].sum()) or 1.0
    fig = _figure(
        "Segment sizes",
        subtitle,
        x_title="customers",
        height=max(260, 46 * len(sizes) + 110),
        legend=False,
    )
    labels = [
        segment_label(int(s), n)
        for s, n in zip(sizes["segment_id"], sizes["segment_name"], strict=True)
    ]
    hover = [f"{int(c):,} customers ({c / total:.1%})" for c in sizes["customers"]]
    if "mean_churn" in sizes:
        hover = [
            f"{h}<br>mean churn probability {m:.1%}" if m == m else h
            for h, m in zip(hover, sizes["mean_churn"], strict=True)
        ]
    fig.add_trace(
        go.Bar(
            x=sizes["customers"].tolist(),
            y=labels,
            orientation="h",
            marker_color=VALUE,
            text=[f"{c / total:.1%}" for c in sizes["customers"]],
            textposition="auto",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_yaxes(showgrid=False, tickfont={"size": 11})
    fig.update_layout(margin={"l": 16})
    return Chart(chart_id, fig, wide=True)


def segment_profile_chart(
    profile: pd.DataFrame, features: list[str], chart_id: str, subtitle: str
) -> Chart:
    """Heat map: each segment's mean of each feature against the population, as a z-score.

    Args:
        profile: ``segment_id, segment_name, feature, z, segment_mean, population_mean``.
        features: the columns to show, in order (:func:`distinctive_features`).
    """
    shown = profile[profile["feature"].isin(features)]
    segments = (
        shown[["segment_id", "segment_name"]]
        .drop_duplicates("segment_id")
        .sort_values("segment_id")
    )
    z, text = [], []
    for sid in segments["segment_id"]:
        rows = shown[shown["segment_id"] == sid].set_index("feature")
        z.append([float(rows["z"].get(f, float("nan"))) for f in features])
        text.append(
            [
                f"segment mean {rows['segment_mean'].get(f, float('nan')):,.3g}"
                f" vs population {rows['population_mean'].get(f, float('nan')):,.3g}"
                for f in features
            ]
        )
    limit = min(Z_CAP, max((abs(v) for row in z for v in row if v == v), default=1.0)) or 1.0
    labels = [
        segment_label(int(s), n)
        for s, n in zip(segments["segment_id"], segments["segment_name"], strict=True)
    ]
    fig = _figure(
        "Segment profiles",
        subtitle,
        height=max(300, 44 * len(labels) + 190),
        legend=False,
    )
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=features,
            y=labels,
            zmid=0,
            zmin=-limit,
            zmax=limit,
            colorscale="RdBu",
            reversescale=True,
            text=text,
            texttemplate="%{z:.1f}",
            textfont={"size": 10},
            hovertemplate="%{y}<br>%{x}: z = %{z:.2f}<br>%{text}<extra></extra>",
            colorbar={"title": {"text": "z vs<br>population"}, "thickness": 12},
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(tickangle=-40, showgrid=False, ticks="")
    fig.update_yaxes(autorange="reversed", showgrid=False, ticks="", tickfont={"size": 11})
    fig.update_layout(margin={"l": 16, "b": 40})
    return Chart(chart_id, fig, wide=True)


# ---------------------------------------------------------------------------- churn
def score_histogram_chart(hist: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Customers per churn-probability bin.

    Args:
        hist: ``lower, upper, customers`` per bin (every bin, empty ones with 0).
    """
    fig = _figure(
        "Churn score distribution",
        subtitle,
        x_title="churn probability",
        y_title="customers",
        height=340,
        legend=False,
    )
    mids = ((hist["lower"] + hist["upper"]) / 2).tolist()
    widths = (hist["upper"] - hist["lower"]).tolist()
    fig.add_trace(
        go.Bar(
            x=mids,
            y=hist["customers"].tolist(),
            width=widths,
            marker={"color": VALUE, "line": {"color": "white", "width": 1}},
            customdata=list(zip(hist["lower"], hist["upper"], strict=True)),
            hovertemplate="%{customdata[0]:.0%} – %{customdata[1]:.0%}: %{y:,} customers"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return Chart(chart_id, fig, wide=True)


def curves_from_lift(lift: pd.DataFrame) -> pd.DataFrame:
    """ROC and precision-recall points at the cut-offs of a cumulative lift table.

    Targeting the top ``fraction`` of rows by score selects ``rows_targeted`` rows holding
    ``positives`` positives. With the last row (fraction 1) holding all rows R and
    positives P: tpr = recall = positives / P, fpr = (rows_targeted - positives) / (R - P),
    precision = positives / rows_targeted.

    Args:
        lift: :func:`contactlake.ml.metrics.lift_table` rows (``fraction, rows_targeted,
            positives``), e.g. the ``evaluation/lift`` artifact of a churn model run.

    Returns:
        ``fraction, fpr, tpr, precision`` from (0, 0) (precision of the first cut-off there).
    """
    lift = lift.sort_values("fraction").reset_index(drop=True)
    total_rows = float(lift["rows_targeted"].iloc[-1])
    total_pos = float(lift["positives"].iloc[-1])
    negatives = total_rows - total_pos
    tp = lift["positives"].astype(float)
    fp = lift["rows_targeted"].astype(float) - tp
    out = pd.DataFrame(
        {
            "fraction": lift["fraction"].astype(float),
            "fpr": fp / negatives if negatives else 0.0,
            "tpr": tp / total_pos if total_pos else 0.0,
            "precision": tp / lift["rows_targeted"].astype(float),
        }
    )
    start = pd.DataFrame(
        {"fraction": [0.0], "fpr": [0.0], "tpr": [0.0], "precision": [out["precision"].iloc[0]]}
    )
    return pd.concat([start, out], ignore_index=True)


def roc_chart(points: pd.DataFrame, auc: float | None, chart_id: str, subtitle: str) -> Chart:
    """ROC curve (``fpr, tpr``) with the random diagonal."""
    title = "ROC curve" + (f" (AUC {auc:.3f})" if auc is not None else "")
    fig = _figure(
        title, subtitle, x_title="false positive rate", y_title="true positive rate", height=380
    )
    fig.add_trace(_reference_line([0, 1], [0, 1], "random"))
    points = points.sort_values(["fpr", "tpr"])
    x = points["fpr"].tolist()
    y = points["tpr"].tolist()
    if not x or x[0] > 0 or y[0] > 0:
        x, y = [0.0, *x], [0.0, *y]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            name="model",
            mode="lines+markers" if len(x) <= 30 else "lines",
            line={"color": VALUE, "width": 2.5},
            marker={"size": 5},
            hovertemplate="FPR %{x:.1%}, TPR %{y:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return Chart(chart_id, fig)


def pr_chart(
    points: pd.DataFrame, ap: float | None, base_rate: float, chart_id: str, subtitle: str
) -> Chart:
    """Precision against recall (``tpr, precision``) with the base rate (random) line."""
    title = "Precision–recall" + (f" (AP {ap:.3f})" if ap is not None else "")
    fig = _figure(title, subtitle, x_title="recall", y_title="precision", height=380)
    points = points.dropna(subset=["precision"]).sort_values(["tpr", "precision"])
    fig.add_trace(
        go.Scatter(
            x=points["tpr"].tolist(),
            y=points["precision"].tolist(),
            name="model",
            mode="lines+markers" if len(points) <= 30 else "lines",
            line={"color": VALUE, "width": 2.5, "shape": "hv"},
            marker={"size": 5},
            hovertemplate="recall %{x:.1%}, precision %{y:.1%}<extra></extra>",
        )
    )
    fig.add_trace(_reference_line([0, 1], [base_rate, base_rate], f"base rate {base_rate:.1%}"))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(rangemode="tozero", tickformat=".0%")
    return Chart(chart_id, fig)


def lift_chart(lift: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Cumulative lift (bars) and share of churners captured (line) by share targeted."""
    fig = _figure(
        "Lift and capture by share targeted",
        subtitle,
        x_title="share of customers targeted, highest scores first",
        y_title="cumulative lift",
        height=380,
    )
    lift = lift.sort_values("fraction")
    fig.add_trace(
        go.Bar(
            x=lift["fraction"].tolist(),
            y=lift["lift"].tolist(),
            name="cumulative lift",
            marker_color=VALUE,
            width=0.06,
            hovertemplate="top %{x:.0%}: lift %{y:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=lift["fraction"].tolist(),
            y=lift["capture"].tolist(),
            name="churners captured",
            mode="lines+markers",
            yaxis="y2",
            line={"color": ANOMALY, "width": 2},
            hovertemplate="top %{x:.0%}: %{y:.1%} of churners<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line={"color": TARGET, "dash": "dot", "width": 1})
    fig.update_xaxes(tickformat=".0%", range=[0, 1.05])
    fig.update_layout(
        yaxis2={
            "title": {"text": "share of churners captured"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.02],
            "tickformat": ".0%",
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 0.2,
            "showgrid": False,
        },
        margin={"r": 64},
    )
    return Chart(chart_id, fig)


def calibration_chart(table: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Observed churn rate against mean predicted probability per bin (``rows`` sized)."""
    fig = _figure(
        "Calibration",
        subtitle,
        x_title="mean predicted probability",
        y_title="observed churn rate",
        height=380,
    )
    fig.add_trace(_reference_line([0, 1], [0, 1], "perfectly calibrated"))
    sizes = table["rows"].astype(float)
    scale = sizes.max() or 1.0
    fig.add_trace(
        go.Scatter(
            x=table["mean_predicted"].tolist(),
            y=table["observed_rate"].tolist(),
            name="model",
            mode="lines+markers",
            line={"color": VALUE, "width": 2},
            marker={"size": (6 + 14 * (sizes / scale) ** 0.5).tolist()},
            customdata=sizes.tolist(),
            hovertemplate="predicted %{x:.1%}, observed %{y:.1%} (%{customdata:,} customers)"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return Chart(chart_id, fig)


# ---------------------------------------------------------------------------- audiences
def audience_sizes_chart(sizes: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Customers selected per audience, coloured by channel.

    Args:
        sizes: ``audience_id, channel, customers``.
    """
    sizes = sizes.sort_values("customers")
    fig = _figure(
        "Audience sizes",
        subtitle,
        x_title="customers selected",
        height=max(240, 40 * len(sizes) + 140),
    )
    for i, channel in enumerate(sorted(sizes["channel"].unique())):
        part = sizes[sizes["channel"] == channel]
        fig.add_trace(
            go.Bar(
                x=part["customers"].tolist(),
                y=part["audience_id"].tolist(),
                name=str(channel),
                orientation="h",
                marker_color=PALETTE[i % len(PALETTE)],
                text=[f"{int(c):,}" for c in part["customers"]],
                textposition="auto",
                hovertemplate="%{y}: %{x:,} customers<extra>" + str(channel) + "</extra>",
            )
        )
    fig.update_yaxes(
        showgrid=False, categoryorder="array", categoryarray=sizes["audience_id"].tolist()
    )
    fig.update_layout(barmode="stack", margin={"l": 16})
    return Chart(chart_id, fig, wide=True)


def exclusion_matrix(exclusions: pd.DataFrame) -> pd.DataFrame:
    """Customers excluded per audience (rows) and reason (columns), summed over campaigns
    and channels; audiences and reasons ordered by their totals, largest first (ties by name).

    Args:
        exclusions: ``audience_id, reason, customers`` (gold/audience_exclusions rows).
    """
    matrix = exclusions.pivot_table(
        index="audience_id", columns="reason", values="customers", aggfunc="sum", fill_value=0
    )
    rows = sorted(matrix.index, key=lambda a: (-int(matrix.loc[a].sum()), a))
    cols = sorted(matrix.columns, key=lambda r: (-int(matrix[r].sum()), r))
    out = matrix.loc[rows, cols].astype(int)
    out.columns.name = None
    return out


def exclusions_chart(matrix: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Exclusions by reason per audience (stacked horizontal bars) from :func:`exclusion_matrix`."""
    fig = _figure(
        "Exclusions by reason",
        subtitle,
        x_title="customers excluded",
        height=max(260, 44 * len(matrix) + 170),
    )
    audiences = list(matrix.index)[::-1]
    for i, reason in enumerate(matrix.columns):
        fig.add_trace(
            go.Bar(
                x=[int(matrix.loc[a, reason]) for a in audiences],
                y=audiences,
                name=str(reason).replace("_", " "),
                orientation="h",
                marker_color=PALETTE[i % len(PALETTE)],
                hovertemplate="%{y}: %{x:,} excluded<extra>" + str(reason) + "</extra>",
            )
        )
    fig.update_yaxes(showgrid=False)
    fig.update_layout(barmode="stack", margin={"l": 16})
    return Chart(chart_id, fig, wide=True)


# ---------------------------------------------------------------------------- jobs
def latest_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The last attempt of each job (latest ``started_at``), in the order the jobs started.

    Args:
        runs: ``ops/job_runs`` rows of one run date.
    """
    if not len(runs):
        return runs
    last = runs.sort_values("started_at").groupby("job", sort=False).tail(1)
    return last.sort_values("started_at").reset_index(drop=True)


def stage_seconds(runs: pd.DataFrame) -> pd.DataFrame:
    """Seconds per job and stage from the ``stages`` JSON of job runs, plus ``other`` (time
    outside the logged stages: start-up, reads, commits).

    Returns:
        ``job, stage, seconds`` in the order of ``runs`` and of the stages.
    """
    out = []
    for run in runs.itertuples():
        stages = json.loads(run.stages) if isinstance(run.stages, str) and run.stages else []
        logged = 0.0
        for stage in stages:
            seconds = float(stage.get("seconds") or 0.0)
            logged += seconds
            out.append((run.job, str(stage.get("stage")), seconds))
        other = float(run.duration_s or 0.0) - logged
        if other > 0.005:
            out.append((run.job, "other", round(other, 3)))
    return pd.DataFrame(out, columns=["job", "stage", "seconds"])


def job_durations_chart(
    runs: pd.DataFrame, stages: pd.DataFrame, chart_id: str, subtitle: str
) -> Chart:
    """Each job's duration split by stage (stacked horizontal bars); failed jobs in red.

    Args:
        runs: :func:`latest_runs` (``job, status, duration_s``).
        stages: :func:`stage_seconds` of the same runs.
    """
    jobs = runs["job"].tolist()[::-1]
    status = dict(zip(runs["job"], runs["status"], strict=True))
    labels = {j: j if status[j] == "succeeded" else f"{j} ({status[j]})" for j in jobs}
    fig = _figure(
        "Job durations",
        subtitle,
        x_title="seconds",
        height=max(280, 34 * len(jobs) + 150),
        legend=False,
    )
    for job in jobs:
        part = stages[stages["job"] == job]
        failed = status[job] != "succeeded"
        n = len(part)
        colors = [
            (BREACH if failed else VALUE) if s != "other" else "#c7ced8" for s in part["stage"]
        ]
        opacity = [1.0 - 0.45 * (k / max(n - 1, 1)) for k in range(n)]
        fig.add_trace(
            go.Bar(
                x=part["seconds"].tolist(),
                y=[labels[job]] * n,
                orientation="h",
                marker={
                    "color": colors,
                    "opacity": opacity,
                    "line": {"color": "white", "width": 1},
                },
                customdata=part["stage"].tolist(),
                hovertemplate="%{y} · %{customdata}: %{x:,.1f} s<extra></extra>",
                name=job,
            )
        )
    totals = runs.set_index("job")["duration_s"]
    fig.add_trace(
        go.Scatter(
            x=[float(totals[j]) for j in jobs],
            y=[labels[j] for j in jobs],
            mode="text",
            text=[f"  {float(totals[j]):,.1f} s" for j in jobs],
            textposition="middle right",
            hoverinfo="skip",
            name="total",
        )
    )
    fig.update_layout(barmode="stack", margin={"l": 16, "r": 24})
    fig.update_yaxes(showgrid=False, categoryorder="array", categoryarray=[labels[j] for j in jobs])
    longest = max([float(v) for v in totals] or [1.0])
    fig.update_xaxes(range=[0, longest * 1.2])
    return Chart(chart_id, fig)


def job_rows_chart(runs: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Rows in, out and rejected per job (grouped horizontal bars, log scale; zero rows
    leave no bar)."""
    jobs = runs["job"].tolist()[::-1]
    fig = _figure(
        "Rows per job",
        subtitle,
        x_title="rows (log scale)",
        height=max(280, 46 * len(jobs) + 150),
    )
    for column, label, color in (
        ("rejected", "rejected", BREACH),
        ("rows_out", "rows out", PALETTE[2]),
        ("rows_in", "rows in", PALETTE[0]),
    ):
        source = "rows_rejected" if column == "rejected" else column
        values = dict(zip(runs["job"], runs[source].fillna(0), strict=True))
        fig.add_trace(
            go.Bar(
                x=[int(values[j]) or None for j in jobs],
                y=jobs,
                name=label,
                orientation="h",
                marker_color=color,
                hovertemplate="%{y}: %{x:,} " + label + "<extra></extra>",
            )
        )
    fig.update_xaxes(type="log", dtick=1, tickformat="~s")
    fig.update_yaxes(showgrid=False)
    fig.update_layout(
        barmode="group", bargap=0.25, bargroupgap=0.05, legend={"traceorder": "reversed"}
    )
    return Chart(chart_id, fig)


def job_trend_chart(runs: pd.DataFrame, chart_id: str, subtitle: str) -> Chart:
    """Duration of each job's last attempt per run date.

    Args:
        runs: ``job, run_date, started_at, duration_s`` over several run dates.
    """
    last = runs.sort_values("started_at").groupby(["job", "run_date"]).tail(1)
    fig = _figure("Job durations over time", subtitle, y_title="seconds", height=340)
    order = last.groupby("job")["started_at"].min().sort_values().index
    for i, job in enumerate(order):
        part = last[last["job"] == job].sort_values("run_date")
        fig.add_trace(
            go.Scatter(
                x=_dates(part["run_date"]),
                y=part["duration_s"].tolist(),
                name=str(job),
                mode="lines+markers",
                line={"color": PALETTE[i % len(PALETTE)], "width": 1.8},
                marker={"size": 5},
                hovertemplate=f"{job}: %{{y:,.1f}} s<extra>%{{x}}</extra>",
            )
        )
    _date_axis(fig)
    fig.update_yaxes(rangemode="tozero")
    return Chart(chart_id, fig, wide=True)


@dataclass
class ChartIds:
    """Unique, readable DOM ids for the charts of a page."""

    used: set[str] = field(default_factory=set)

    def __call__(self, name: str) -> str:
        base = "chart-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        chart_id, n = base, 2
        while chart_id in self.used:
            chart_id, n = f"{base}-{n}", n + 1
        self.used.add(chart_id)
        return chart_id
