"""contactlake jobs: one module per job, each with ``main(argv=None)``."""
