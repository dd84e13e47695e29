"""Tag catalog (conf/tags/*.yaml) and gold/customer_features -> customer tags and portraits.

A catalog file holds ``tags:``, a list of tag definitions::

    tags:
      - id: age_band                 # column name in customer_portrait
        names: {en: Age band, zh: 年龄段}
        category: basic              # first level of the tag tree
        path: [basic, demographic]   # levels from the category down to the tag's group
        type: rule                   # rule | statistic | model
        expression: "CASE WHEN age IS NULL THEN NULL WHEN age < 24 THEN 'under_24' ... END"
        version: 1
        owner: crm-analytics
        status: online               # draft | online | offline
        description: ...

Rule and statistic tags are Spark SQL expressions over one snapshot of customer_features
(a statistic tag may use window functions over the snapshot's customers, e.g.
``percent_rank() OVER (ORDER BY contacts_90d)``). A model tag names a ``source`` model
table (MODEL_SOURCES) and an expression over its columns. Values are strings (a boolean
becomes 'true'/'false'); null means the tag does not apply or is unknown.

Files are read in name order (hence ``10_basic.yaml``, ``20_value.yaml`` ...), which is the
order of the portrait's columns. Online tags are computed; draft tags are validated only;
offline tags are ignored.
Pure functions apart from :func:`load_catalog`, which reads the YAML files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

KEYS = ["snapshot_date", "customer_key"]

# Contracts of the model output tables model tags read (built by the ML jobs).
MODEL_SOURCES = {
    "gold/segments": (
        "customer_key string, snapshot_date date, segment_id int, segment_name string, "
        "model_name string, model_version string"
    ),
    "gold/churn_scores": (
        "customer_key string, snapshot_date date, churn_probability double, "
        "model_name string, model_version string"
    ),
}

CUSTOMER_TAGS_SCHEMA = (
    "snapshot_date date, customer_key string, tag_id string, value string, tag_version int"
)
TAG_REPORT_SCHEMA = (
    "snapshot_date date, tag_id string, tag_version int, customers long, covered long, "
    "coverage double, previous_snapshot_date date, compared_customers long, changed long, "
    "change_rate double"
)


class TagCatalogError(ValueError):
    """A tag file or definition is invalid; the message names the file and the tag id."""


class TagNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class TagSpec(BaseModel):
    """One tag definition (one item of a catalog file's ``tags`` list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    names: TagNames
    category: str = Field(min_length=1)
    path: list[str] = Field(min_length=1)
    type: Literal["rule", "statistic", "model"]
    expression: str = Field(min_length=1)
    source: str | None = None  # model tags only: a MODEL_SOURCES table
    version: int = Field(ge=1)
    owner: str = Field(min_length=1)
    status: Literal["draft", "online", "offline"]
    description: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TagSpec:
        if self.id in KEYS:
            raise ValueError(f"id {self.id!r} is reserved")
        if self.path[0] != self.category:
            raise ValueError(f"path must start with the category {self.category!r}")
        if self.type == "model" and self.source not in MODEL_SOURCES:
            raise ValueError(f"a model tag needs source: one of {sorted(MODEL_SOURCES)}")
        if self.type != "model" and self.source is not None:
            raise ValueError("only model tags have a source")
        return self


@dataclass(frozen=True)
class Tag:
    spec: TagSpec
    file: str  # the catalog file it came from (for error messages)

    @property
    def id(self) -> str:
        return self.spec.id


def load_catalog(catalog_dir: str | Path) -> list[Tag]:
    """Read and check every ``*.yaml`` of the catalog folder (not the expressions).

    Raises:
        TagCatalogError: a file is not valid YAML, a tag breaks the schema (the message
            names the file, the tag id and the field), or two tags share an id.
    """
    folder = Path(catalog_dir)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise TagCatalogError(f"no tag files (*.yaml) in {folder}")
    tags: list[Tag] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TagCatalogError(f"{path}: not valid YAML: {exc}") from exc
        if (
            not isinstance(data, dict)
            or set(data) != {"tags"}
            or not isinstance(data["tags"], list)
        ):
            raise TagCatalogError(f"{path}: expected a mapping with one key 'tags' (a list)")
        for n, item in enumerate(data["tags"], start=1):
            tag_id = item.get("id", f"#{n}") if isinstance(item, dict) else f"#{n}"
            try:
                spec = TagSpec.model_validate(item)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '<tag>'}: {e['msg']}"
                    for e in exc.errors()
                )
                raise TagCatalogError(f"tag {tag_id} ({path}): {problems}") from None
            if spec.id in seen:
                raise TagCatalogError(f"tag {spec.id} ({path}): id already used in {seen[spec.id]}")
            seen[spec.id] = str(path)
            tags.append(Tag(spec, str(path)))
    return tags


def validate_catalog(
    spark: SparkSession,
    tags: list[Tag],
    features_schema: StructType,
    model_schemas: dict[str, StructType] | None = None,
) -> None:
    """Analyse the expression of every draft and online tag against its input schema.

    Runs no Spark job: each expression is resolved against an empty DataFrame of the schema
    (next to ``customer_key``, so an aggregate is rejected too).

    Args:
        features_schema: schema of gold/customer_features.
        model_schemas: schema per model table; tables not given use MODEL_SOURCES.

    Raises:
        TagCatalogError: naming the tag id, its file and Spark's reason (e.g. an unknown
            column or a syntax error).
    """
    schemas = {"features": features_schema}
    for source, ddl in MODEL_SOURCES.items():
        given = (model_schemas or {}).get(source)
        schemas[source] = given if given is not None else _ddl_schema(spark, ddl)
    empty = {name: spark.createDataFrame([], schema) for name, schema in schemas.items()}
    for tag in tags:
        if tag.spec.status == "offline":
            continue
        frame = empty[tag.spec.source or "features"]
        try:
            # resolving the schema analyses the expression (classic Spark analyses eagerly)
            resolved = frame.selectExpr("customer_key", f"({tag.spec.expression}) AS {tag.id}")
            resolved.schema  # noqa: B018
        except AnalysisException as exc:
            reason = str(exc).strip().splitlines()[0][:400]
            raise TagCatalogError(
                f"tag {tag.id} ({tag.file}): expression does not resolve against "
                f"{tag.spec.source or 'gold/customer_features'}: {reason}"
            ) from None


def _ddl_schema(spark: SparkSession, ddl: str) -> StructType:
    return spark.createDataFrame([], ddl).schema


def online(tags: list[Tag]) -> list[Tag]:
    return [t for t in tags if t.spec.status == "online"]


def tag_values(
    features: DataFrame, tags: list[Tag], model_frames: dict[str, DataFrame]
) -> DataFrame:
    """The wide tag values of one snapshot: one row per customer, one column per tag.

    Args:
        features: customer_features of one snapshot (``snapshot_date, customer_key``, ...).
        tags: the tags to compute (normally the online ones).
        model_frames: model table rows of the same snapshot per source; a model tag whose
            source is missing gets nulls.

    Returns:
        ``snapshot_date, customer_key`` and one string column per tag, in catalog order.
    """
    computed = [t for t in tags if t.spec.type != "model"]
    wide = features.select(
        *KEYS, *[F.expr(t.spec.expression).cast("string").alias(t.id) for t in computed]
    )
    for source, frame in sorted(model_frames.items()):
        from_source = [t for t in tags if t.spec.source == source]
        if not from_source:
            continue
        values = frame.select(
            "customer_key",
            *[F.expr(t.spec.expression).cast("string").alias(t.id) for t in from_source],
        ).dropDuplicates(["customer_key"])
        wide = wide.join(values, "customer_key", "left")
    missing = [t.id for t in tags if t.id not in wide.columns]
    wide = wide.select(*wide.columns, *[F.lit(None).cast("string").alias(c) for c in missing])
    return wide.select(*KEYS, *[t.id for t in tags])


def tags_long(wide: DataFrame, tags: list[Tag]) -> DataFrame:
    """Wide tag values -> ``customer_tags`` rows (tags without a value are left out).

    Returns:
        ``snapshot_date, customer_key, tag_id, value, tag_version``.
    """
    versions = F.create_map(*[x for t in tags for x in (F.lit(t.id), F.lit(t.spec.version))])
    return (
        wide.unpivot(KEYS, [t.id for t in tags], "tag_id", "value")
        .where(F.col("value").isNotNull())
        .withColumn("tag_version", F.element_at(versions, F.col("tag_id")).cast("int"))
    )


def tags_as_of(customer_tags: DataFrame, as_of: date) -> DataFrame:
    """The tags as they were on ``as_of``: the rows of the latest snapshot up to that date.

    Args:
        customer_tags: the long ``gold/customer_tags`` table.

    Returns:
        Its rows of that snapshot (same columns).
    """
    known = customer_tags.where(F.col("snapshot_date") <= F.lit(as_of))
    latest = known.agg(F.max("snapshot_date").alias("_as_of"))
    return known.join(F.broadcast(latest), F.col("snapshot_date") == F.col("_as_of")).drop("_as_of")


def tag_report(
    wide: DataFrame,
    previous: DataFrame | None,
    tags: list[Tag],
    snapshot_date: date,
    previous_date: date | None,
) -> DataFrame:
    """Coverage and change of each tag: one row per tag.

    Coverage is the share of the snapshot's customers with a non-null value; change is the
    share of customers present in both snapshots whose value differs (null to a value or
    back counts as a change).

    Args:
        wide: this snapshot's portrait (:func:`tag_values`).
        previous: the previous snapshot's portrait or None; a tag it lacks counts as null.
        previous_date: that snapshot's date.

    Returns:
        TAG_REPORT_SCHEMA columns.
    """
    coverage = wide.agg(
        F.count(F.lit(1)).alias("_customers"),
        *[F.count(F.col(t.id)).alias(f"_cov_{t.id}") for t in tags],
    )
    if previous is None:
        changes = coverage.sparkSession.createDataFrame(
            [(None, *[None for _ in tags])],
            "_compared long, " + ", ".join(f"_chg_{t.id} long" for t in tags),
        )
    else:
        before = previous.select(
            "customer_key",
            *[
                (F.col(t.id) if t.id in previous.columns else F.lit(None).cast("string")).alias(
                    f"_prev_{t.id}"
                )
                for t in tags
            ],
        )
        both = wide.join(before, "customer_key")
        changes = both.agg(
            F.count(F.lit(1)).alias("_compared"),
            *[
                F.count_if(~F.col(t.id).eqNullSafe(F.col(f"_prev_{t.id}"))).alias(f"_chg_{t.id}")
                for t in tags
            ],
        )
    per_tag = F.explode(
        F.array(
            *[
                F.struct(
                    F.lit(t.id).alias("tag_id"),
                    F.lit(t.spec.version).alias("tag_version"),
                    F.col(f"_cov_{t.id}").alias("covered"),
                    F.col(f"_chg_{t.id}").alias("changed"),
                )
                for t in tags
            ]
        )
    ).alias("t")
    rows = coverage.crossJoin(changes).select("_customers", "_compared", per_tag)
    return rows.select(
        F.lit(snapshot_date).alias("snapshot_date"),
        F.col("t.tag_id").alias("tag_id"),
        F.col("t.tag_version").cast("int").alias("tag_version"),
        F.col("_customers").cast("long").alias("customers"),
        F.col("t.covered").cast("long").alias("covered"),
        (F.col("t.covered") / F.nullif(F.col("_customers"), F.lit(0))).alias("coverage"),
        F.lit(previous_date).cast("date").alias("previous_snapshot_date"),
        F.col("_compared").cast("long").alias("compared_customers"),
        F.col("t.changed").cast("long").alias("changed"),
        (F.col("t.changed") / F.nullif(F.col("_compared"), F.lit(0))).alias("change_rate"),
    )
