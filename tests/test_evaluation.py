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


def test_adjusted_rand_index_by_hand(spark):
    from contactlake.evaluation import adjusted_rand_index

    schema = "item string, cluster string"
    truth = spark.createDataFrame(
        [("a", "T1"), ("b", "T1"), ("c", "T1"), ("d", "T2"), ("e", "T2"), ("f", "T2")], schema
    )
    same = spark.createDataFrame(
        [("a", "x"), ("b", "x"), ("c", "x"), ("d", "y"), ("e", "y"), ("f", "y")], schema
    )
    # contingency {x:T1}=2,{x:T2}=1,{y:T1}=1,{y:T2}=2: sum_ij = 1+0+0+1 = 2;
    # rows 3,3 -> sum_a = 6; cols 3,3 -> sum_b = 6; C(6,2) = 15; expected = 36/15 = 2.4;
    # ARI = (2 - 2.4) / (6 - 2.4) = -1/9
    mixed = spark.createDataFrame(
        [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "y"), ("f", "x")], schema
    )
    assert adjusted_rand_index(same, truth).first().ari == 1.0
    row = adjusted_rand_index(mixed, truth).first()
    assert row.items == 6 and abs(row.ari - (-1 / 9)) < 1e-12


def test_roc_auc_by_hand(spark):
    from contactlake.evaluation import roc_auc

    # positives score 0.9, 0.4; negatives 0.5, 0.4, 0.1. Pairs (pos > neg): 0.9 beats all 3;
    # 0.4 beats 0.1, ties 0.4 (half), loses to 0.5 -> (3 + 1 + 0.5) / (2 * 3) = 0.75
    df = spark.createDataFrame(
        [(0.9, True), (0.4, True), (0.5, False), (0.4, False), (0.1, False)],
        "p double, churned boolean",
    )
    row = roc_auc(df, "p", "churned").first()
    assert (row.positives, row.negatives) == (2, 3) and row.auc == 0.75
