"""MLlib segmentation and churn models tracked in MLflow (jobs.train_segments, train_churn, score).

- :mod:`~contactlake.ml.data`: feature selection, snapshots, churn labels.
- :mod:`~contactlake.ml.metrics`: ROC/PR AUC, lift, capture, Brier, calibration, in Spark.
- :mod:`~contactlake.ml.segments` and :mod:`~contactlake.ml.churn`: pipelines and training.
- :mod:`~contactlake.ml.charts`: matplotlib figures logged as run artifacts.
- :mod:`~contactlake.ml.tracking`: MLflow set-up, model registration and promotion.
"""
