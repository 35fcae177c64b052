"""Data pipeline: raw watch logs to Personalize-format datasets, synthetic data, evaluation."""
