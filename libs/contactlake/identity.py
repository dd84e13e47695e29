"""Identity resolution on Spark: identifier graph -> connected components -> stable keys.

A customer is known by phones, account ids, app user ids and WeChat ids. Records link the
identifiers they carry (a CRM row links its customer id, account and phones; a logged-in
app session links the app user to the account...). Identifiers shared by many customers
(switchboards, test accounts) are hubs and link nothing. Each connected component of the
remaining graph is one customer, whose ``customer_key`` is kept from earlier runs: merges
keep the key holding most identifiers and splits give the smaller parts new keys, and both
are recorded as events.

Nodes are strings ``"<type>:<value>"`` (e.g. ``"phone:+8613800138000"``).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def node(id_type: str, value) -> F.Column:
    """The node name of an identifier, or null when the value is null or blank."""
    value = F.trim(value.cast("string")) if not isinstance(value, str) else F.trim(F.col(value))
    return F.when(value.isNotNull() & (value != ""), F.concat(F.lit(f"{id_type}:"), value))


def find_hubs(links: DataFrame, max_customers: int) -> DataFrame:
    """Identifiers linked to more than ``max_customers`` distinct customers.

    Args:
        links: ``node`` (an identifier) and ``anchor`` (the customer record it came with,
            e.g. the CRM customer id node).

    Returns:
        ``node``, ``customers``: one row per hub.
    """
    return (
        links.groupBy("node")
        .agg(F.countDistinct("anchor").alias("customers"))
        .where(F.col("customers") > max_customers)
    )


def connected_components(edges: DataFrame, max_iterations: int = 40) -> DataFrame:
    """Connected components by min-label propagation with pointer jumping.

    Unlike the pure transforms, this runs one small Spark job per iteration (the count of
    labels that changed) to know when it has converged; the label table is checkpointed
    each round so the plan stays short. Iterations grow with log(component diameter).

    Args:
        edges: ``src``, ``dst`` (node names); direction and duplicates do not matter.

    Returns:
        ``node``, ``component`` (the smallest node name in its component).

    Raises:
        RuntimeError: not converged within ``max_iterations``.
    """
    pairs = edges.select("src", "dst").where(
        F.col("src").isNotNull() & F.col("dst").isNotNull() & (F.col("src") != F.col("dst"))
    )
    both = pairs.unionByName(pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    both = both.distinct().localCheckpoint(eager=True)
    labels = both.groupBy(F.col("src").alias("node")).agg(
        F.least(F.min("dst"), F.first("src")).alias("label")
    )
    labels = labels.localCheckpoint(eager=True)
    for _ in range(max_iterations):
        # each node takes the smallest label among its neighbours ...
        neighbour = (
            both.join(
                labels.withColumnRenamed("node", "dst").withColumnRenamed("label", "nl"), "dst"
            )
            .groupBy(F.col("src").alias("node"))
            .agg(F.min("nl").alias("nl"))
        )
        step = labels.join(neighbour, "node").select(
            "node", F.least("label", "nl").alias("label"), F.col("label").alias("old")
        )
        # ... then jumps to its label's label (halves the distance to the root)
        parent = step.select(F.col("node").alias("label"), F.col("label").alias("pl"))
        step = step.join(parent, "label", "left").select(
            "node", F.least("label", F.coalesce("pl", "label")).alias("label"), "old"
        )
        # A checkpoint carries its plan's estimated size, and each round's joins multiply
        # the last round's, so the estimate's digits grow geometrically (7,000 digits
        # after 6 rounds of a path) until planning stalls. A checkpoint of a cached plan
        # carries the measured size instead. The previous label rides along, so the
        # check below reads only the checkpoint.
        cached = step.persist()
        step = cached.localCheckpoint(eager=True)
        cached.unpersist()
        changed = step.where(F.col("label") != F.col("old")).limit(1).count()
        labels = step.drop("old")
        if changed == 0:
            return labels.withColumnRenamed("label", "component")
    raise RuntimeError(f"connected components did not converge in {max_iterations} iterations")


def _new_key_events(keyed: DataFrame) -> DataFrame:
    """One "new" event per ``customer_key`` of ``keyed``, with its number of identifiers."""
    return (
        keyed.groupBy("customer_key")
        .agg(F.count(F.lit(1)).alias("nodes"))
        .select(
            F.lit("new").alias("event"),
            "customer_key",
            F.lit(None).cast("string").alias("previous_key"),
            "nodes",
        )
    )


def assign_keys(
    components: DataFrame, previous: DataFrame | None, key_prefix: str = "K"
) -> tuple[DataFrame, DataFrame]:
    """Give every component a ``customer_key``, keeping keys from the previous run.

    Args:
        components: ``node``, ``component``.
        previous: the previous ``identity_map`` (``node``, ``customer_key``) or None.

    Returns:
        (``node``, ``component``, ``customer_key``) and the events
        (``event`` "new" | "merge" | "split", ``customer_key``, ``previous_key``,
        ``nodes``): a merge folds ``previous_key`` into ``customer_key``; a split moves
        ``nodes`` identifiers of ``previous_key`` to the new ``customer_key``.
    """
    # A new key is derived from the component's smallest node, so a re-run gives the same.
    fresh = F.concat(F.lit(key_prefix), F.substring(F.sha2(F.col("component"), 256), 1, 16))
    if previous is None:
        keyed = components.withColumn("customer_key", fresh)
        return keyed, _new_key_events(keyed)

    held = (
        components.join(previous.select("node", F.col("customer_key").alias("prev")), "node")
        .groupBy("component", "prev")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    # the component holding most of a previous key's identifiers owns that key
    by_key = Window.partitionBy("prev").orderBy(F.col("n").desc(), F.col("component"))
    owned = held.withColumn("r", F.row_number().over(by_key)).where("r = 1").drop("r")
    # a component owning several previous keys keeps the one with most identifiers
    by_component = Window.partitionBy("component").orderBy(F.col("n").desc(), F.col("prev"))
    kept = (
        owned.withColumn("r", F.row_number().over(by_component))
        .where("r = 1")
        .select("component", F.col("prev").alias("kept"))
    )
    # A part split off an old key is salted with that key: its smallest node may be the
    # very node the old key was derived from.
    salt = held.groupBy("component").agg(F.min("prev").alias("salt"))
    split_fresh = F.concat(
        F.lit(key_prefix),
        F.substring(F.sha2(F.concat_ws("|", F.col("component"), F.col("salt")), 256), 1, 16),
    )
    keyed = (
        components.join(kept, "component", "left")
        .join(salt, "component", "left")
        .withColumn(
            "customer_key",
            F.coalesce("kept", F.when(F.col("salt").isNotNull(), split_fresh), fresh),
        )
        .drop("kept", "salt")
    )
    key_of = keyed.select("component", "customer_key").distinct()
    moves = held.join(key_of, "component")
    merges = moves.join(owned.select("prev", "component"), ["prev", "component"]).where(
        F.col("prev") != F.col("customer_key")
    )
    splits = moves.join(owned.select("prev", "component"), ["prev", "component"], "left_anti")
    new = keyed.join(held.select("component").distinct(), "component", "left_anti")
    events = (
        merges.select(
            F.lit("merge").alias("event"),
            "customer_key",
            F.col("prev").alias("previous_key"),
            F.col("n").alias("nodes"),
        )
        .unionByName(
            splits.select(
                F.lit("split").alias("event"),
                "customer_key",
                F.col("prev").alias("previous_key"),
                F.col("n").alias("nodes"),
            )
        )
        .unionByName(_new_key_events(new))
    )
    return keyed, events
