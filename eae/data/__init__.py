"""Datasets: per-dataset sources, the prepared shard format, minibatches."""
