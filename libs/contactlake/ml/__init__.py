"""MLlib segmentation, churn and uplift models tracked in MLflow (jobs.train_segments,
train_churn, train_uplift, score).

- :mod:`~contactlake.ml.data`: feature selection, snapshots, churn labels.
- :mod:`~contactlake.ml.metrics`: ROC/PR AUC, lift, capture, Brier, calibration; Qini,
  AUUC and uplift at k%; in Spark.
- :mod:`~contactlake.ml.segments`, :mod:`~contactlake.ml.churn` and
  :mod:`~contactlake.ml.uplift`: pipelines and training.
- :mod:`~contactlake.ml.charts`: matplotlib figures logged as run artifacts.
- :mod:`~contactlake.ml.tracking`: MLflow set-up, model registration and promotion.
"""
