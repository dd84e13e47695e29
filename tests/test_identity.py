"""Identity resolution: components, hubs, stable keys with merges and splits."""

from __future__ import annotations

from pyspark.sql import functions as F

from contactlake.identity import assign_keys, connected_components, find_hubs

EDGE_SCHEMA = "src string, dst string"


def _components(spark, edges) -> set[frozenset]:
    return _groups(connected_components(spark.createDataFrame(edges, EDGE_SCHEMA)))


def _groups(components) -> set[frozenset]:
    groups: dict[str, set] = {}
    for row in components.collect():
        groups.setdefault(row.component, set()).add(row.node)
    for component, members in groups.items():
        assert component == min(members)  # the label is the smallest node name
    return {frozenset(g) for g in groups.values()}


def test_components_of_a_small_graph(spark):
    edges = [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),  # a chain needs several rounds
        ("x", "y"),
        ("y", "x"),
        ("y", "y"),  # duplicates and a self loop
        ("p", "q"),
        ("r", "q"),
        ("s", "r"),
        ("t", "s"),
        ("u", "t"),
        ("v", "u"),  # a long path
    ]
    assert _components(spark, edges) == {
        frozenset("abcd"),
        frozenset("xy"),
        frozenset("pqrstuv"),
    }


def test_long_chain_converges(spark):
    nodes = [f"n{i:03d}" for i in range(200)]
    edges = list(zip(nodes[::-1], nodes[-2::-1], strict=False))  # n199-n198-...-n000
    out = connected_components(spark.createDataFrame(edges, EDGE_SCHEMA))
    assert _groups(out) == {frozenset(nodes)}
    # Each round's checkpoint carries its measured size, not the product of the last
    # round's estimates: that has thousands of digits after the 8 rounds this path takes.
    assert out._jdf.queryExecution().optimizedPlan().stats().sizeInBytes() < 2**64


def test_hubs_are_identifiers_of_many_customers(spark):
    links = spark.createDataFrame(
        [("phone:switchboard", f"crm:{i}") for i in range(6)]
        + [("phone:home", "crm:1"), ("phone:home", "crm:2"), ("phone:mine", "crm:1")],
        "node string, anchor string",
    )
    hubs = find_hubs(links, max_customers=3).collect()
    assert [(r.node, r.customers) for r in hubs] == [("phone:switchboard", 6)]


def _keys(spark, components, previous=None):
    comp = spark.createDataFrame(components, "node string, component string")
    prev = (
        None
        if previous is None
        else spark.createDataFrame(previous, "node string, customer_key string")
    )
    keyed, events = assign_keys(comp, prev)
    return (
        {r.node: r.customer_key for r in keyed.collect()},
        sorted((r.event, r.customer_key, r.previous_key, r.nodes) for r in events.collect()),
    )


def test_keys_are_deterministic_and_kept_across_runs(spark):
    comps = [("a", "a"), ("b", "a"), ("x", "x")]
    first, events = _keys(spark, comps)
    again, _ = _keys(spark, comps)
    assert first == again and first["a"] == first["b"] != first["x"]
    assert [e[0] for e in events] == ["new", "new"]
    # next day: a new identifier joins a's component; keys stay, nothing merges
    later, events = _keys(spark, [*comps, ("c", "a")], previous=list(first.items()))
    assert later == {**first, "c": first["a"]}
    assert events == []


def test_merge_keeps_the_key_with_most_identifiers(spark):
    previous = [("a", "K1"), ("b", "K1"), ("c", "K1"), ("x", "K2")]
    keys, events = _keys(spark, [("a", "a"), ("b", "a"), ("c", "a"), ("x", "a")], previous)
    assert set(keys.values()) == {"K1"}
    assert events == [("merge", "K1", "K2", 1)]


def test_split_gives_the_smaller_part_a_new_key(spark):
    previous = [("a", "K1"), ("b", "K1"), ("c", "K1"), ("d", "K1")]
    # "a" was the smallest node; the bigger part {b, c, d} keeps K1
    keys, events = _keys(spark, [("a", "a"), ("b", "b"), ("c", "b"), ("d", "b")], previous)
    assert keys["b"] == keys["c"] == keys["d"] == "K1"
    assert keys["a"] not in ("K1", None)
    assert events == [("split", keys["a"], "K1", 1)]


def test_node_helper_skips_blank_values(spark):
    from contactlake.identity import node

    df = spark.createDataFrame([(" 123 ",), ("",), (None,)], "v string")
    assert [r.n for r in df.select(node("phone", "v").alias("n")).collect()] == [
        "phone:123",
        None,
        None,
    ]
    assert df.select(F.count(node("phone", "v"))).first()[0] == 1
