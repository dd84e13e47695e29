"""contactlake: contact-center analytics on Spark and Delta tables."""

__version__ = "0.1.0"
