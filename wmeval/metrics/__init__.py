"""Metrics: how good a world model is. Ranking fidelity lives in `wmeval.ranking.fidelity`."""
