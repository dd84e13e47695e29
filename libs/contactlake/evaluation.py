"""Scores against the generator's ground truth (``truth/``), for tests and benchmarks.
Pure DataFrame functions; the pipeline itself never reads ``truth/``."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# truth id_type -> identity_map id_type
TRUTH_ID_TYPES = {
    "account_id": "account",
    "phone": "phone",
    "app_user_id": "app",
    "wechat_openid": "wechat_open",
    "wechat_unionid": "wechat_union",
}


def _pairs(n):
    return n * (n - 1) / 2


def pairwise_cluster_scores(predicted: DataFrame, truth: DataFrame) -> DataFrame:
    """Pairwise precision and recall of predicted clusters against true ones.

    Two identifiers form a pair when they share a cluster; precision is the share of
    predicted pairs that are true pairs, recall the share of true pairs found.

    Args:
        predicted: ``item``, ``cluster`` (e.g. identifier, customer_key).
        truth: ``item``, ``cluster`` (identifier, true customer id).

    Returns:
        One row: ``items``, ``predicted_pairs``, ``true_pairs``, ``common_pairs``,
        ``precision``, ``recall``. Only items present in both are scored.
    """
    both = predicted.select("item", F.col("cluster").alias("p")).join(
        truth.select("item", F.col("cluster").alias("t")), "item"
    )
    by_p = both.groupBy("p").count().select(F.sum(_pairs(F.col("count"))).alias("predicted_pairs"))
    by_t = both.groupBy("t").count().select(F.sum(_pairs(F.col("count"))).alias("true_pairs"))
    by_pt = (
        both.groupBy("p", "t").count().select(F.sum(_pairs(F.col("count"))).alias("common_pairs"))
    )
    items = both.select(F.count(F.lit(1)).alias("items"))
    return (
        items.crossJoin(by_p)
        .crossJoin(by_t)
        .crossJoin(by_pt)
        .withColumn("precision", F.col("common_pairs") / F.col("predicted_pairs"))
        .withColumn("recall", F.col("common_pairs") / F.col("true_pairs"))
    )


def identity_items(
    identity_map: DataFrame, truth_identity: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """(predicted, truth) ``item, cluster`` frames for :func:`pairwise_cluster_scores`:
    linked, non-hub identifiers of the truth against their ``customer_key``."""
    mapping = F.create_map(*[F.lit(x) for kv in TRUTH_ID_TYPES.items() for x in kv])
    truth = (
        truth_identity.where(~F.col("is_hub") & F.col("linked"))
        .select(
            F.concat(mapping[F.col("id_type")], F.lit(":"), F.col("id_value")).alias("item"),
            F.col("customer_id").alias("cluster"),
        )
        .where("item is not null")
    )
    predicted = identity_map.where(F.col("customer_key").isNotNull()).select(
        F.col("node").alias("item"), F.col("customer_key").alias("cluster")
    )
    return predicted, truth


def duplicate_removal(contacts: DataFrame, defects: DataFrame) -> DataFrame:
    """How many planted duplicate records (truth defects of kind ``duplicate``) are gone.

    Returns:
        One row: ``planted``, ``remaining``, ``removed_share``.
    """
    planted = (
        defects.where(F.col("kind") == "duplicate")
        .select(F.col("record_id").alias("contact_id"))
        .distinct()
    )
    remaining = planted.join(contacts.select("contact_id"), "contact_id")
    return (
        planted.select(F.count(F.lit(1)).alias("planted"))
        .crossJoin(remaining.select(F.count(F.lit(1)).alias("remaining")))
        .withColumn("removed_share", 1 - F.col("remaining") / F.col("planted"))
    )


def adjusted_rand_index(predicted: DataFrame, truth: DataFrame) -> DataFrame:
    """Adjusted Rand index of a clustering against true labels (Hubert and Arabie), from the
    contingency table, in Spark.

    Args:
        predicted: ``item``, ``cluster`` (e.g. customer_key, segment_id).
        truth: ``item``, ``cluster`` (e.g. customer_key, persona).

    Returns:
        One row: ``items``, ``ari`` (1 = identical partitions, about 0 = chance). Only items
        present in both are scored.
    """
    both = predicted.select("item", F.col("cluster").alias("p")).join(
        truth.select("item", F.col("cluster").alias("t")), "item"
    )
    cells = both.groupBy("p", "t").count().select(F.sum(_pairs(F.col("count"))).alias("sum_ij"))
    rows = both.groupBy("p").count().select(F.sum(_pairs(F.col("count"))).alias("sum_a"))
    cols = both.groupBy("t").count().select(F.sum(_pairs(F.col("count"))).alias("sum_b"))
    items = both.select(F.count(F.lit(1)).alias("items"))
    expected = F.col("sum_a") * F.col("sum_b") / _pairs(F.col("items"))
    return (
        items.crossJoin(cells)
        .crossJoin(rows)
        .crossJoin(cols)
        .select(
            "items",
            (
                (F.col("sum_ij") - expected) / ((F.col("sum_a") + F.col("sum_b")) / 2 - expected)
            ).alias("ari"),
        )
    )


def roc_auc(scored: DataFrame, score: str, label: str) -> DataFrame:
    """Area under the ROC curve of ``score`` for a boolean ``label``: the probability that
    a random positive scores above a random negative (ties count half), by ranks in Spark.

    Returns:
        One row: ``positives``, ``negatives``, ``auc``.
    """
    ranked = scored.select(F.col(score).alias("s"), F.col(label).cast("int").alias("y")).withColumn(
        "rank",
        F.expr("rank() over (order by s)") + (F.expr("count(1) over (partition by s)") - 1) / 2,
    )
    return ranked.agg(
        F.sum("y").alias("positives"),
        F.sum(1 - F.col("y")).alias("negatives"),
        F.sum(F.when(F.col("y") == 1, F.col("rank"))).alias("_rank_sum"),
    ).select(
        "positives",
        "negatives",
        (
            (F.col("_rank_sum") - F.col("positives") * (F.col("positives") + 1) / 2)
            / (F.col("positives") * F.col("negatives"))
        ).alias("auc"),
    )
