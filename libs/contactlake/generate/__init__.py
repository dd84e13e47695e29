"""Synthetic contact-center data: landing files as source systems export them, plus truth.

Everything is generated on executors from ``spark.range`` with hash-based randomness
(:mod:`contactlake.generate.rand`), so output depends only on the seed and the settings.
Only :mod:`contactlake.generate.writers` and ``jobs.generate`` do I/O.
"""
