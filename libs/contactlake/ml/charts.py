"""Matplotlib (Agg) figures of model evaluation and segment profiles, from small pandas tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers and in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def roc_chart(points, auc: float, title: str):
    """ROC curve from :func:`contactlake.ml.metrics.roc_points` (columns fpr, tpr)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, *points["fpr"]], [0, *points["tpr"]], label=f"ROC AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return fig


def pr_chart(points, ap: float, base_rate: float, title: str):
    """Precision-recall curve (columns tpr = recall, precision)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.step(points["tpr"], points["precision"], where="post", label=f"PR AUC {ap:.3f}")
    ax.axhline(base_rate, linestyle="--", color="grey", label=f"base rate {base_rate:.3f}")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02), title=title)
    ax.legend(loc="upper right")
    return fig


def lift_chart(table, title: str):
    """Cumulative lift and capture by share targeted (:func:`metrics.lift_table`)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(table["fraction"], table["lift"], width=0.08, label="cumulative lift")
    ax.axhline(1.0, linestyle="--", color="grey")
    ax.set(xlabel="share of customers targeted (by score)", ylabel="lift", title=title)
    twin = ax.twinx()
    twin.plot(table["fraction"], table["capture"], marker="o", color="C1", label="capture")
    twin.set(ylabel="share of churners captured", ylim=(0, 1.02))
    fig.legend(loc="lower right", bbox_to_anchor=(0.85, 0.2), fontsize="small")
    fig.tight_layout()
    return fig


def calibration_chart(table, title: str):
    """Observed rate against mean predicted probability per bin (:func:`metrics.calibration_bins`)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", title=title)
    ax.legend(loc="upper left")
    return fig


def importance_chart(importances: list[tuple[str, float]], title: str, top: int = 20):
    """Horizontal bars of the ``top`` most important features."""
    shown = importances[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2))
    ax.barh([f for f, _ in shown], [v for _, v in shown])
    ax.set(xlabel="importance", title=title)
    fig.tight_layout()
    return fig


def silhouette_chart(by_k: dict[int, float], best_k: int, title: str):
    """Silhouette per candidate k, the chosen k marked."""
    ks = sorted(by_k)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ks, [by_k[k] for k in ks], marker="o")
    ax.axvline(best_k, linestyle="--", color="C1", label=f"chosen k={best_k}")
    ax.set(xlabel="k", ylabel="silhouette", title=title, xticks=ks)
    ax.legend()
    return fig


def profile_chart(profile, names: dict[int, str], title: str):
    """Heat map of segment feature means against the population (z-scores), sizes in labels.

    Args:
        profile: pandas rows of :func:`contactlake.ml.segments.segment_profile`.
    """
    table = profile.pivot(index="segment_id", columns="feature", values="z").sort_index()
    sizes = profile.groupby("segment_id")["size"].first()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * table.shape[1] + 3), 0.6 * len(table) + 2))
    limit = max(1.0, float(np.nanmax(np.abs(table.to_numpy()))))
    image = ax.imshow(table.to_numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(
        range(len(table)),
        [f"{s}: {names.get(s, '')} (n={sizes[s]:,})" for s in table.index],
        fontsize=8,
    )
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="z-score vs population")
    fig.tight_layout()
    return fig


def qini_chart(curves, title: str, group: str = "campaign_id"):
    """Qini curve per ``group`` value against random targeting.

    Args:
        curves: :func:`contactlake.ml.metrics.uplift_at` rows (columns ``group``, fraction,
            qini), any number of points per group.
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (name, points) in enumerate(curves.sort_values("fraction").groupby(group)):
        x = [0.0, *points["fraction"]]
        y = [0.0, *points["qini"]]
        ax.plot(x, y, color=f"C{i}", label=str(name))
        ax.plot([0, 1], [0, y[-1]], color=f"C{i}", linestyle="--", linewidth=0.8)
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set(
        xlabel="share of customers targeted (by uplift score)",
        ylabel="incremental responders per treated customer",
        title=f"{title}: Qini curves (dashed: random)",
    )
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def uplift_deciles_chart(deciles, title: str, group: str = "campaign_id"):
    """Observed uplift (treated minus control response rate) in each decile of the score.

    Args:
        deciles: :func:`contactlake.ml.metrics.uplift_at` rows with ``bins=10`` (cumulative
            treated, control and responders per decile), per ``group``.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    groups = sorted(deciles[group].unique())
    width = 0.8 / max(len(groups), 1)
    for i, name in enumerate(groups):
        d = deciles[deciles[group] == name].sort_values("bin")
        band = d[["treated", "control", "treated_responders", "control_responders"]].diff()
        band.iloc[0] = d[band.columns].iloc[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            uplift = band["treated_responders"] / band["treated"] - (
                band["control_responders"] / band["control"]
            )
        ax.bar(d["bin"] + (i - (len(groups) - 1) / 2) * width, uplift, width, label=str(name))
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set(
        xlabel="decile of the uplift score (1 = highest)",
        ylabel="observed uplift in the decile",
        title=title,
        xticks=range(1, 11),
    )
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
