"""The run report (jobs.report): one self-contained HTML page per run date.

- :mod:`contactlake.report.aggregates`: Spark, tables -> small aggregates;
- :mod:`contactlake.report.charts`: pandas -> Plotly chart specs (and the data shaping
  behind them: Lorenz points, Gini, exclusion matrix, ROC/PR from a lift table...);
- :mod:`contactlake.report.page`: sections of charts, tables and notes -> HTML.
"""
