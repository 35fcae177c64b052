"""Offline evaluation with Amazon Personalize's protocol and metric names.

`split` makes the train/holdout split, `metrics` computes Personalize's metrics, `run`
asks any backend (or a running service) for the test users' recommendations,
`baselines` are the popularity, default-ALS and item-item cosine yardsticks, `report`
renders the results, `movielens` converts MovieLens ratings to a prepared dataset.
"""
