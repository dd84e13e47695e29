"""jobs.maintain and jobs.pipeline end to end on a small lake."""

from __future__ import annotations

from deltalake import DeltaTable

from contactlake.lake import Lake
from contactlake.runner import JOB_RUNS


def test_maintain_compacts_every_table_and_records_the_run(spark, tmp_path, job_argv):
    from jobs import maintain

    lake = Lake(str(tmp_path / "lake"), spark)
    for n in range(4):
        lake.write(spark.createDataFrame([(n,)], "n long"), "silver/small")
    assert len(DeltaTable(lake.uri("silver/small")).file_uris()) == 4

    assert maintain.main(job_argv("2026-02-01"), spark=spark) == 0

    assert len(DeltaTable(lake.uri("silver/small")).file_uris()) == 1
    assert sorted(r.n for r in lake.read("silver/small").collect()) == [0, 1, 2, 3]
    [run] = lake.read(JOB_RUNS).where("job = 'maintain'").collect()
    assert run.status == "succeeded"
    assert '"stage": "optimize silver/small", "rows": 4' in run.stages
    assert '"stage": "vacuum silver/small"' in run.stages


def test_pipeline_runs_jobs_in_order_and_stops_at_a_failure(spark, tmp_path, job_argv):
    from jobs import pipeline

    assert pipeline.main(job_argv("2026-02-01", "--jobs", "maintain,maintain")) == 0
    runs = Lake(str(tmp_path / "lake"), spark).read(JOB_RUNS).collect()
    assert [r.job for r in runs] == ["maintain", "maintain"]

    bad = ("lake.vacuum_retention_hours=-1",)
    assert pipeline.main(job_argv("2026-02-01", "--jobs", "maintain", overrides=bad)) == 2
