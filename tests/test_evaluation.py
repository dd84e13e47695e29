"""The truth scores themselves, on hand-counted examples."""

from __future__ import annotations

from contactlake.evaluation import pairwise_cluster_scores


def test_pairwise_scores_by_hand(spark):
    schema = "item string, cluster string"
    truth = spark.createDataFrame(
        [("a", "T1"), ("b", "T1"), ("c", "T1"), ("d", "T2"), ("e", "T2")], schema
    )
    # predicted: {a,b} {c,d} {e}  -> predicted pairs ab, cd (2); true pairs ab ac bc de (4); common ab (1)
    predicted = spark.createDataFrame(
        [("a", "P1"), ("b", "P1"), ("c", "P2"), ("d", "P2"), ("e", "P3"), ("z", "P3")], schema
    )
    row = pairwise_cluster_scores(predicted, truth).first()
    assert (row.items, row.predicted_pairs, row.true_pairs, row.common_pairs) == (5, 2, 4, 1)
    assert (row.precision, row.recall) == (0.5, 0.25)
