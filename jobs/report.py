"""The run report: one self-contained HTML page per run date, charts people would rather
look at than read.

    python -m jobs.report --env local --run-date 2026-01-31

Writes ``<report.dir>/<run date>/index.html`` (styles, data and the Plotly library inline:
it opens from disk or as an e-mail attachment, no network needed). Sections:

- KPI trends against their targets over ``report.trend_days``, alerts marked, and the
  alerts of the dates the KPI run restated (``gold/kpi_daily``, ``gold/kpi_alerts``);
- contact concentration: the Lorenz curve and the top-share trend (``gold/kpi_daily``);
- channel mix and channel shift: diversion, return and retention rates;
- segments: sizes and profiles (``gold/segments`` and ``gold/customer_features``);
- churn: score distribution (``gold/churn_scores``) and model curves. When a scored snapshot's
  outcome is known by the run date (snapshot + horizon <= run date) the curves are the
  realised ones, scores against the labels of ``ml.churn.label_table``; otherwise they are
  the validation of the scoring model version at training, from its MLflow run (its lift
  and calibration tables; ROC and PR at the lift table's cut-offs);
- audiences: sizes and exclusions by reason (``gold/audiences``, ``gold/audience_exclusions``);
- jobs: durations by stage and row counts of the run date, durations over time (``ops/job_runs``).

Every aggregate is computed in Spark and only small results reach the driver. A table that
does not exist yet leaves a "not available: <table> missing" note in its section.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
from pyspark import StorageLevel
from pyspark.sql import functions as F

from contactlake import kpis
from contactlake.ml import data as mldata
from contactlake.ml import metrics
from contactlake.report import aggregates as agg
from contactlake.report import charts
from contactlake.report.charts import KpiInfo
from contactlake.report.page import Note, Section, Table, Tiles, missing, render
from contactlake.runner import JOB_RUNS, JobContext, run_job

JOB = "report"
KPI_DAILY = "gold/kpi_daily"
KPI_ALERTS = "gold/kpi_alerts"
AUDIENCES = "gold/audiences"
EXCLUSIONS = "gold/audience_exclusions"
PAGE = "index.html"
PROBABILITY = "churn_probability"


class ReportError(RuntimeError):
    pass


def _latest(df, column: str, day: date) -> date | None:
    """The latest ``column`` value on or before ``day`` (None when there is none)."""
    return df.where(F.col(column) <= F.lit(day)).agg(F.max(column)).first()[0]


def _latest_rows(ctx: JobContext, table: str, what: str = "snapshot"):
    """The rows of ``table``'s latest ``snapshot_date`` on or before the run date and that
    date, or the Note a section shows instead (the table is missing, or starts later)."""
    if not ctx.lake.exists(table):
        return missing(table)
    df = ctx.lake.read(table)
    day = _latest(df, "snapshot_date", ctx.run_date)
    if day is None:
        return Note(f"{table} has no {what} on or before {ctx.run_date}")
    return df.where(F.col("snapshot_date") == F.lit(day)), day


def _true(value) -> bool:
    """A nullable boolean cell: True only for true (not for null or NaN)."""
    return value is not None and value == value and bool(value)


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _kpi_infos(ctx: JobContext) -> dict[str, KpiInfo]:
    catalog = kpis.load_catalog(Path(ctx.cfg.conf_dir) / "kpis")
    return {
        k: KpiInfo(
            id=k,
            name=d.name,
            unit=d.unit,
            direction=d.target.direction,
            threshold=d.target.threshold,
            description=" ".join(d.description.split()),
        )
        for k, d in catalog.items()
    }


def _trend_kpis(ctx: JobContext, infos: dict[str, KpiInfo]) -> list[str]:
    chosen = list(ctx.cfg.report.kpis)
    unknown = [k for k in chosen if k not in infos]
    if unknown:
        raise ReportError(f"report.kpis: {unknown} not in the KPI catalog ({sorted(infos)})")
    if chosen:
        return chosen
    own_section = {agg.CHANNEL_MIX, agg.CONCENTRATION, *agg.CHANNEL_SHIFT}
    return [k for k in infos if k not in own_section]


# ---------------------------------------------------------------------------- KPIs
def kpi_sections(ctx: JobContext, ids: charts.ChartIds, start: date) -> list[Section]:
    run_date = ctx.run_date
    trends = Section(
        "kpis",
        "KPI trends against targets",
        f"Each KPI's overall daily value from {start} to {run_date}; dashed: target; "
        "open markers: provisional values (look-ahead window not over); crosses: target "
        "breaches; diamonds: anomalies.",
    )
    concentration = Section(
        "concentration",
        "Contact concentration",
        "How unevenly contacts are spread over customers: a small share of customers making "
        "a large share of the calls is the first place to look for repeat contacts.",
    )
    channels = Section(
        "channels",
        "Channel mix and channel shift",
        "Where inbound contacts come in, and how customers move between the hotline and the "
        "digital channels.",
    )
    sections = [trends, concentration, channels]
    if not ctx.lake.exists(KPI_DAILY):
        for s in sections:
            s.add(missing(KPI_DAILY))
        return sections
    infos = _kpi_infos(ctx)
    chosen = _trend_kpis(ctx, infos)
    with ctx.stage("read kpis") as info:
        daily = ctx.lake.read(KPI_DAILY, partitions=[("kpi_date", "in", _days(start, run_date))])
        rows = agg.kpi_rows(daily, start, run_date).toPandas()
        alerts = None
        if ctx.lake.exists(KPI_ALERTS):
            alerts = agg.alert_rows(ctx.lake.read(KPI_ALERTS), start, run_date).toPandas()
        info["rows"] = len(rows) + (0 if alerts is None else len(alerts))

    _kpi_trends(ctx, trends, rows, alerts, infos, chosen, ids)
    _concentration(ctx, concentration, rows, ids)
    _channels(channels, rows, infos, ids)
    return sections


def _kpi_trends(ctx, section, rows, alerts, infos, chosen, ids) -> None:
    overall = rows[rows["dimension"] == "all"]
    no_alerts = pd.DataFrame(columns=["kpi_date", "kpi_id", "kind", "value", "detail"])
    overall_alerts = (
        alerts[alerts["dimension"] == "all"] if alerts is not None and len(alerts) else no_alerts
    )
    # the dates the KPI run of this run date restated (its look-ahead windows)
    restated = max(ctx.cfg.kpis.repeat_window_days, ctx.cfg.kpis.shift_window_days)
    first_restated = ctx.run_date - timedelta(days=restated)

    drawn, empty, on_target = [], [], 0
    for kpi_id in chosen:
        kpi_rows = overall[overall["kpi_id"] == kpi_id]
        if not len(kpi_rows):
            empty.append(kpi_id)
            continue
        drawn.append(
            charts.kpi_trend(
                infos[kpi_id],
                kpi_rows,
                overall_alerts[overall_alerts["kpi_id"] == kpi_id],
                ids(f"kpi {kpi_id}"),
            )
        )
        latest = kpi_rows.dropna(subset=["value"]).sort_values("kpi_date").tail(1)
        if len(latest) and not _true(latest["breach"].iloc[0]):
            on_target += 1
    if not drawn:
        section.add(Note(f"no overall KPI values in {KPI_DAILY} for the trend window"))
        return
    tiles = [("KPIs on target", f"{on_target} / {len(drawn)}", "latest overall value per KPI")]
    recent = None
    if alerts is not None:
        recent = alerts[alerts["kpi_date"] >= first_restated]
        breaches = int((recent["kind"] == "target_breach").sum())
        anomalies = int((recent["kind"] == "anomaly").sum())
        tiles += [
            ("target breaches", f"{breaches:,}", f"{first_restated} .. {ctx.run_date}, all rows"),
            ("anomalies", f"{anomalies:,}", f"{first_restated} .. {ctx.run_date}, all rows"),
        ]
        section.add(Tiles(tiles, alert=tuple(i for i in (1, 2) if [0, breaches, anomalies][i])))
    else:
        section.add(Tiles(tiles), missing(KPI_ALERTS))
    if empty:
        section.add(Note(f"no values in the trend window for: {', '.join(empty)}"))
    section.add(*drawn)
    if alerts is not None and len(alerts):
        section.add(charts.alert_counts_chart(alerts, ids("alerts per day")))
    if recent is not None and len(recent):
        # overall rows first, then the most recent, then by kind, KPI and dimension
        listed = recent.assign(
            other_dim=recent["dimension"] != "all",
            kpi_name=recent["kpi_id"].map(lambda k: infos[k].name if k in infos else k),
        ).sort_values(
            ["other_dim", "kpi_date", "kind", "kpi_name", "dimension", "dimension_value"],
            ascending=[True, False, False, True, True, True],
        )
        limit = ctx.cfg.report.alerts_listed
        shown = listed.head(limit)
        more = len(listed) - len(shown)
        section.add(
            Table(
                ["date", "KPI", "kind", "dimension", "value", "target", "detail"],
                [
                    [
                        str(r.kpi_date),
                        r.kpi_name,
                        r.kind.replace("_", " "),
                        "all" if r.dimension == "all" else f"{r.dimension} = {r.dimension_value}",
                        charts.format_value(r.value, infos[r.kpi_id].unit)
                        if r.kpi_id in infos
                        else r.value,
                        charts.format_value(r.target, infos[r.kpi_id].unit)
                        if r.kpi_id in infos and r.target == r.target
                        else "",
                        r.detail,
                    ]
                    for r in shown.itertuples()
                ],
                title=f"Alerts {first_restated} .. {ctx.run_date} (the dates this run's KPIs restated)",
                caption=f"{more:,} more not listed (report.alerts_listed = {limit})"
                if more
                else "",
                numeric=("value", "target"),
            )
        )


def _concentration(ctx, section, rows, ids) -> None:
    conc = rows[rows["kpi_id"] == agg.CONCENTRATION]
    lorenz = conc[conc["dimension"] == "lorenz"]
    if not len(lorenz):
        section.add(Note(f"no {agg.CONCENTRATION} rows in {KPI_DAILY} for the trend window"))
        return
    day = max(lorenz["kpi_date"])
    curves = [(str(day), charts.lorenz_points(lorenz[lorenz["kpi_date"] == day]))]
    compare_days = ctx.cfg.report.lorenz_compare_days
    if compare_days:
        before = day - timedelta(days=compare_days)
        earlier = lorenz[lorenz["kpi_date"] == before]
        if len(earlier):
            curves.append((str(before), charts.lorenz_points(earlier)))
    top = conc[(conc["dimension"] == "top_share") & (conc["kpi_date"] == day)]
    k = ctx.cfg.kpis
    subtitle = (
        f"customers ranked by {'/'.join(k.concentration_channels)} contacts over the "
        f"{k.concentration_window_days} days to {day}"
    )
    section.add(charts.lorenz_chart(curves, top, ids("lorenz"), subtitle))
    shares = conc[conc["dimension"] == "top_share"]
    if len(shares):
        section.add(charts.top_share_trend(shares, ids("top share trend")))


def _channels(section, rows, infos, ids) -> None:
    mix = rows[(rows["kpi_id"] == agg.CHANNEL_MIX) & (rows["dimension"] == "channel")]
    shift_ids = [k for k in agg.CHANNEL_SHIFT if k in infos]
    shift = rows[rows["kpi_id"].isin(shift_ids) & (rows["dimension"] == "all")]
    if len(mix):
        section.add(charts.channel_mix_chart(mix, ids("channel mix")))
    else:
        section.add(Note(f"no {agg.CHANNEL_MIX} rows in {KPI_DAILY} for the trend window"))
    if len(shift):
        section.add(
            charts.channel_shift_chart(shift, [infos[k] for k in shift_ids], ids("channel shift"))
        )
    else:
        section.add(Note(f"no channel shift rows ({', '.join(agg.CHANNEL_SHIFT)}) in the window"))


# ---------------------------------------------------------------------------- segments
def segments_section(ctx: JobContext, ids: charts.ChartIds) -> Section:
    ml = ctx.cfg.ml
    section = Section(
        "segments",
        "Customer segments",
        "Segments of the latest scored snapshot: how many customers each holds and what sets "
        "it apart (segment mean of a feature against the population, in standard deviations).",
    )
    latest = _latest_rows(ctx, ml.segments_table)
    if isinstance(latest, Note):
        return section.add(latest)
    assigned, snapshot = latest
    scores = None
    if ctx.lake.exists(ml.churn_scores_table):
        scores = ctx.lake.read(ml.churn_scores_table).where(
            F.col("snapshot_date") == F.lit(snapshot)
        )
    with ctx.stage("segment sizes") as info:
        sizes = agg.segment_sizes(assigned, scores).toPandas()
        model = assigned.select("model_name", "model_version").first()
        info["rows"] = len(sizes)
    model_text = f"model {model.model_name} v{model.model_version}" if model else ""
    total = int(sizes["customers"].sum())
    section.add(
        charts.segment_sizes_chart(
            sizes, ids("segment sizes"), f"snapshot {snapshot}, {total:,} customers, {model_text}"
        )
    )
    feats = ml.features
    if not ctx.lake.exists(feats.table):
        section.add(missing(feats.table))
    else:
        with ctx.stage("segment profiles") as info:
            features = ctx.lake.read(feats.table)
            columns = mldata.feature_columns(
                features.schema,
                feats.feature_columns,
                key=feats.key,
                snapshot_column=feats.snapshot_column,
                label_column=ml.churn.label_column,
                exclude=feats.exclude_columns,
            )
            joined = assigned.select("customer_key", "segment_id").join(
                features.where(F.col(feats.snapshot_column) == F.lit(snapshot)).select(
                    F.col(feats.key).cast("string").alias("customer_key"), *columns
                ),
                "customer_key",
            )
            sums = agg.segment_feature_sums(joined, columns).toPandas()
            profile = charts.profile_table(sums, columns)
            info["rows"] = len(sums)
        if len(profile):
            names = dict(zip(sizes["segment_id"], sizes["segment_name"], strict=True))
            profile["segment_name"] = profile["segment_id"].map(names)
            top = charts.distinctive_features(profile, ctx.cfg.report.segment_features)
            section.add(
                charts.segment_profile_chart(
                    profile,
                    top,
                    ids("segment profiles"),
                    f"the {len(top)} features of {feats.table} that set segments apart most; "
                    "red: above the population mean, blue: below",
                )
            )
        else:
            section.add(Note(f"{feats.table} has no rows for the segments of {snapshot}"))
    section.add(
        Table(
            ["segment", "name", "customers", "share", "mean churn probability"],
            [
                [
                    int(r.segment_id),
                    r.segment_name,
                    int(r.customers),
                    f"{r.customers / max(total, 1):.1%}",
                    f"{r.mean_churn:.1%}"
                    if "mean_churn" in sizes and r.mean_churn == r.mean_churn
                    else "",
                ]
                for r in sizes.assign(
                    mean_churn=sizes["mean_churn"] if "mean_churn" in sizes else float("nan")
                ).itertuples()
            ],
            numeric=("segment", "customers", "share", "mean churn probability"),
        )
    )
    return section


# ---------------------------------------------------------------------------- churn
def churn_section(ctx: JobContext, ids: charts.ChartIds) -> Section:
    ml = ctx.cfg.ml
    section = Section(
        "churn",
        "Churn model",
        f"Churn probability of each customer over the next {ml.churn.horizon_days} days, and "
        "how well the model ranks churners.",
    )
    if not ctx.lake.exists(ml.churn_scores_table):
        return section.add(missing(ml.churn_scores_table))
    scores = ctx.lake.read(ml.churn_scores_table)
    snapshots = sorted(r[0] for r in scores.select("snapshot_date").distinct().collect())
    current = max((s for s in snapshots if s <= ctx.run_date), default=None)
    if current is None:
        return section.add(
            Note(f"{ml.churn_scores_table} has no snapshot on or before {ctx.run_date}")
        )
    with ctx.stage("churn scores") as info:
        rows = scores.where(F.col("snapshot_date") == F.lit(current))
        hist = agg.score_histogram(rows, PROBABILITY, ctx.cfg.report.score_bins).toPandas()
        summary = rows.agg(
            F.count(F.lit(1)).alias("n"),
            F.avg(PROBABILITY).alias("mean"),
            F.percentile_approx(PROBABILITY, 0.5).alias("median"),
            # versions are strings ("10" < "9"): the highest by number
            F.max(
                F.struct(
                    F.col("model_version").cast("int").alias("_v"),
                    "model_version",
                    "model_name",
                )
            ).alias("model"),
        ).first()
        info["rows"] = len(hist)
    model = f"{summary.model.model_name} v{summary.model.model_version}"
    section.add(
        Tiles(
            [
                ("customers scored", f"{summary.n:,}", f"snapshot {current}"),
                ("mean churn probability", f"{summary.mean:.1%}", f"median {summary.median:.1%}"),
                ("model", model, "the version that scored the snapshot"),
            ]
        ),
        charts.score_histogram_chart(
            hist, ids("churn score distribution"), f"snapshot {current}, {model}"
        ),
    )
    horizon = ml.churn.horizon_days
    matured = [s for s in snapshots if s + timedelta(days=horizon) <= ctx.run_date]
    if matured:
        _realised_curves(ctx, section, scores, max(matured), ids)
    else:
        why = (
            f"No scored snapshot has a known outcome yet (the scores of {current} are judged "
            f"after {current + timedelta(days=horizon)}): below, the validation of {model} "
            "at training, from its MLflow run."
        )
        _training_curves(
            ctx, section, summary.model.model_name, summary.model.model_version, why, ids
        )
    return section


def _labelled(ctx: JobContext, scored):
    ml = ctx.cfg.ml
    feats = ml.features
    if ml.churn.label_column:
        labels = ctx.lake.read(feats.table).select(
            F.col(feats.key).cast("string").alias("customer_key"),
            F.col(feats.snapshot_column).alias("snapshot_date"),
            ml.churn.label_column,
        )
        return mldata.label_from_column(
            scored.join(labels, ["customer_key", "snapshot_date"]), ml.churn.label_column
        )
    return mldata.churn_labels(
        scored,
        ctx.lake.read(ml.churn.label_table),
        key="customer_key",
        snapshot_column="snapshot_date",
        horizon_days=ml.churn.horizon_days,
        active_only=ml.churn.active_only,
    )


def _realised_curves(ctx: JobContext, section: Section, scores, snapshot: date, ids) -> None:
    ml = ctx.cfg.ml
    source = ml.features.table if ml.churn.label_column else ml.churn.label_table
    if not ctx.lake.exists(source):
        section.add(missing(source))
        return
    with ctx.stage("realised churn curves") as info:
        scored = scores.where(F.col("snapshot_date") == F.lit(snapshot))
        labelled = (
            _labelled(ctx, scored)
            .select(mldata.LABEL, PROBABILITY)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        sizes = labelled.agg(F.count(F.lit(1)), F.sum(mldata.LABEL)).first()
        rows, positives = int(sizes[0]), int(sizes[1] or 0)
        info["rows"] = rows
        if positives == 0 or positives == rows:
            labelled.unpersist()
            section.add(
                Note(
                    f"the scores of {snapshot} cannot be judged: {positives:,} churners among "
                    f"{rows:,} customers (both classes are needed)"
                )
            )
            return
        bins = ml.churn.calibration_bins
        m = metrics.binary_metrics(labelled, mldata.LABEL, PROBABILITY, bins).collect()[0]
        roc = metrics.roc_points(
            labelled, mldata.LABEL, PROBABILITY, ctx.cfg.report.roc_decimals
        ).toPandas()
        lift = metrics.lift_table(labelled, mldata.LABEL, PROBABILITY, 10).toPandas()
        calibration = metrics.calibration_bins(labelled, mldata.LABEL, PROBABILITY, bins).toPandas()
        labelled.unpersist()
    subtitle = f"scores of {snapshot}, {positives:,} churners among {rows:,}"
    section.add(
        Note(
            f"Realised performance: the scores of {snapshot}, whose outcome is known by "
            f"{ctx.run_date}, against churn in the {ml.churn.horizon_days} days after it "
            f"(labels from {source})."
        ),
        _metric_tiles(
            m.roc_auc, m.pr_auc, m.lift_top_decile, m.brier, f"realised, snapshot {snapshot}"
        ),
        charts.roc_chart(roc, m.roc_auc, ids("churn roc"), subtitle),
        charts.pr_chart(roc, m.pr_auc, positives / rows, ids("churn pr"), subtitle),
        charts.lift_chart(lift, ids("churn lift"), subtitle),
        charts.calibration_chart(calibration, ids("churn calibration"), subtitle),
    )


def _metric_tiles(roc_auc, pr_auc, lift, brier, hint: str) -> Tiles:
    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    return Tiles(
        [
            ("ROC AUC", fmt(roc_auc, ".3f"), hint),
            ("PR AUC", fmt(pr_auc, ".3f"), hint),
            ("lift, top decile", fmt(lift, ".2f"), hint),
            ("Brier score", fmt(brier, ".3f"), hint),
        ]
    )


def _training_curves(
    ctx: JobContext, section: Section, name: str, version: int, why: str, ids
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from contactlake.ml import tracking

    try:
        with ctx.stage("churn model from MLflow"):
            tracking.configure(ctx.cfg.mlflow)
            client = MlflowClient()
            run = client.get_run(client.get_model_version(name, str(version)).run_id)
            lift = pd.DataFrame(
                tracking.load_json_artifact(run.info.run_id, "evaluation/lift.json")
            )
            calibration = pd.DataFrame(
                tracking.load_json_artifact(run.info.run_id, "evaluation/calibration.json")
            )
    except (MlflowException, OSError, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        section.add(
            Note(why),
            Note(
                f"not available: the evaluation of {name} v{version} in MLflow: {first_line}",
                "missing",
            ),
        )
        return
    m, p = run.data.metrics, run.data.params
    rows, positives = m.get("rows_validation"), m.get("positives_validation")
    base_rate = positives / rows if rows and positives is not None else None
    subtitle = (
        f"v{version} {p.get('model', '')}, validation snapshot {p.get('validation_snapshot', '?')}"
    )
    detail = (
        f" The model ({p.get('model', '?')}) was trained on the snapshot {p.get('train_snapshot', '?')}"
        f" and validated on {p.get('validation_snapshot', '?')}"
    )
    if base_rate is not None:
        detail += f": {positives:,.0f} churners among {rows:,.0f} customers"
    section.add(Note(why + detail + "."))
    points = charts.curves_from_lift(lift)
    if base_rate is None:
        base_rate = float(lift["positives"].iloc[-1]) / float(lift["rows_targeted"].iloc[-1])
    section.add(
        _metric_tiles(
            m.get("roc_auc"),
            m.get("pr_auc"),
            m.get("lift_top_decile"),
            m.get("brier"),
            "validation at training",
        ),
        charts.roc_chart(
            points, m.get("roc_auc"), ids("churn roc"), subtitle + "; at score deciles"
        ),
        charts.pr_chart(
            points,
            m.get("pr_auc"),
            base_rate,
            ids("churn pr"),
            subtitle + "; at score deciles",
        ),
        charts.lift_chart(lift, ids("churn lift"), subtitle),
        charts.calibration_chart(calibration, ids("churn calibration"), subtitle),
    )


# ---------------------------------------------------------------------------- audiences
def audiences_section(ctx: JobContext, ids: charts.ChartIds) -> Section:
    section = Section(
        "audiences",
        "Audiences and exclusions",
        "Customers selected per audience of the latest publication, and the customers the "
        "contact policy kept out of each audience, by reason.",
    )
    selected = excluded = None
    latest = _latest_rows(ctx, AUDIENCES, "publication")
    if isinstance(latest, Note):
        section.add(latest)
    else:
        published, day = latest
        with ctx.stage("audience sizes") as info:
            sizes = agg.audience_sizes(published).toPandas()
            info["rows"] = len(sizes)
        selected = int(sizes["customers"].sum())
        section.add(
            charts.audience_sizes_chart(
                sizes, ids("audience sizes"), f"published {day}: {selected:,} selections"
            )
        )
    latest = _latest_rows(ctx, EXCLUSIONS, "publication")
    if isinstance(latest, Note):
        section.add(latest)
    else:
        published, day = latest
        with ctx.stage("audience exclusions") as info:
            rows = (
                published.groupBy("audience_id", "reason")
                .agg(F.sum("customers").alias("customers"))
                .toPandas()
            )
            info["rows"] = len(rows)
        if len(rows):
            matrix = charts.exclusion_matrix(rows)
            excluded = int(matrix.to_numpy().sum())
            section.add(
                charts.exclusions_chart(
                    matrix, ids("exclusions"), f"published {day}: {excluded:,} exclusions"
                ),
                Table(
                    ["audience", *matrix.columns, "total"],
                    [
                        [a, *[int(v) for v in matrix.loc[a]], int(matrix.loc[a].sum())]
                        for a in matrix.index
                    ],
                    title="Exclusions by audience and reason",
                    numeric=(*matrix.columns, "total"),
                ),
            )
        else:
            section.add(Note(f"no exclusions on {day}"))
    if selected is not None or excluded is not None:
        section.items.insert(
            0,
            Tiles(
                [
                    (
                        "selections",
                        "n/a" if selected is None else f"{selected:,}",
                        "customers × audience",
                    ),
                    (
                        "exclusions",
                        "n/a" if excluded is None else f"{excluded:,}",
                        "by the contact policy",
                    ),
                ]
            ),
        )
    return section


# ---------------------------------------------------------------------------- jobs
def jobs_section(ctx: JobContext, ids: charts.ChartIds, start: date) -> Section:
    section = Section(
        "jobs",
        "Job runs",
        f"The last attempt of every job for {ctx.run_date} (from {JOB_RUNS}; this report "
        "itself aside): duration by stage, rows read and written, and durations over the "
        "trend window.",
    )
    if not ctx.lake.exists(JOB_RUNS):
        return section.add(missing(JOB_RUNS))
    with ctx.stage("job runs") as info:
        # the report's own earlier attempts say nothing about the run it reports on
        runs = agg.job_runs_between(
            ctx.lake.read(JOB_RUNS).where(F.col("job") != JOB), start, ctx.run_date
        ).toPandas()
        info["rows"] = len(runs)
    today = charts.latest_runs(runs[runs["run_date"] == ctx.run_date])
    if not len(today):
        return section.add(Note(f"no job runs recorded for {ctx.run_date}"))
    failed = today[today["status"] != "succeeded"]
    total = float(today["duration_s"].sum())
    section.add(
        Tiles(
            [
                ("jobs", f"{len(today)}", f"last attempt of each for {ctx.run_date}"),
                ("failed", f"{len(failed)}", ", ".join(failed["job"]) or "none"),
                ("total duration", f"{total / 60:,.1f} min", "sum of the jobs' durations"),
            ],
            alert=(1,) if len(failed) else (),
        )
    )
    stages = charts.stage_seconds(today)
    subtitle = f"run date {ctx.run_date}; 'other': outside the logged stages"
    section.add(
        charts.job_durations_chart(today, stages, ids("job durations"), subtitle),
        charts.job_rows_chart(today, ids("job rows"), f"run date {ctx.run_date}"),
    )
    if runs["run_date"].nunique() > 1:
        section.add(
            charts.job_trend_chart(runs, ids("job trend"), f"run dates {start} .. {ctx.run_date}")
        )
    section.add(
        Table(
            [
                "job",
                "status",
                "started (UTC)",
                "seconds",
                "rows in",
                "rows out",
                "rejected",
                "error",
            ],
            [
                [
                    r.job,
                    r.status,
                    pd.Timestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                    round(float(r.duration_s), 1),
                    int(r.rows_in or 0),
                    int(r.rows_out or 0),
                    int(r.rows_rejected or 0),
                    (r.error or "").splitlines()[0][:160] if r.error else "",
                ]
                for r in today.itertuples()
            ],
            numeric=("seconds", "rows in", "rows out", "rejected"),
        )
    )
    return section


# ---------------------------------------------------------------------------- page
def write_page(directory: str, run_date: date, text: str) -> str:
    """Write ``<directory>/<run date>/index.html`` atomically (a temporary file renamed);
    local paths or any URI pyarrow knows. Returns the page's location."""
    if "://" in directory:
        fs, root = pafs.FileSystem.from_uri(directory)
    else:
        fs, root = pafs.LocalFileSystem(), directory
    folder = f"{root.rstrip('/')}/{run_date.isoformat()}"
    fs.create_dir(folder, recursive=True)
    target, temporary = f"{folder}/{PAGE}", f"{folder}/.{PAGE}.tmp"
    with fs.open_output_stream(temporary) as out:
        out.write(text.encode("utf-8"))
    fs.move(temporary, target)
    return target if "://" not in directory else f"{directory.rstrip('/')}/{run_date}/{PAGE}"


def run(ctx: JobContext) -> None:
    cfg = ctx.cfg.report
    start = ctx.run_date - timedelta(days=cfg.trend_days - 1)
    ids = charts.ChartIds()
    sections = [
        *kpi_sections(ctx, ids, start),
        segments_section(ctx, ids),
        churn_section(ctx, ids),
        audiences_section(ctx, ids),
        jobs_section(ctx, ids, start),
    ]
    with ctx.stage("write page") as info:
        text = render(
            sections,
            title=cfg.title,
            run_date=ctx.run_date,
            lake_root=ctx.lake.root,
            env=ctx.cfg.env,
            generated_at=datetime.now(UTC),
            tables_read=dict(ctx.lake.reads),
        )
        where = write_page(cfg.dir, ctx.run_date, text)
        info["rows"] = sum(len(s.charts) for s in sections)
    unavailable = [s.title for s in sections if not s.available]
    ctx.log.info(
        "report %s: %d charts, %.1f MB%s",
        where,
        info["rows"],
        len(text.encode("utf-8")) / 1e6,
        f"; not available: {', '.join(unavailable)}" if unavailable else "",
    )


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
