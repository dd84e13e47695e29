"""Run the daily jobs in order inside one Spark session (Spark starts once, not per job).

    python -m jobs.pipeline --env local [--run-date D] [--set key=value]...
    python -m jobs.pipeline --jobs generate,maintain

Stops at the first failed job and exits non-zero; every job also runs alone.
"""

from __future__ import annotations

import importlib
import logging
import sys

from contactlake.config import ConfigError, load_config
from contactlake.runner import configure_logging, parse_args
from contactlake.spark import build_session


def _add_jobs_arg(parser) -> None:
    parser.add_argument(
        "--jobs", default=None, help="comma-separated jobs (default: conf pipeline.jobs)"
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    log = logging.getLogger("contactlake.pipeline")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args("pipeline", argv, _add_jobs_arg)
    try:
        cfg = load_config(args.env, args.overrides, args.conf_dir)
    except ConfigError as exc:
        log.error("FAILED pipeline: %s", exc)
        return 2
    names = args.jobs.split(",") if args.jobs else cfg.pipeline.jobs
    job_argv = [a for a in argv if a != "--jobs" and a != args.jobs]
    spark = build_session(cfg.spark)
    for name in names:
        module = importlib.import_module(f"jobs.{name}")
        code = module.main(job_argv, spark=spark)
        if code != 0:
            log.error("FAILED pipeline: job %s exited %d; later jobs not run", name, code)
            return code
    log.info("pipeline done: %s", ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
