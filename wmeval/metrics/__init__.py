"""Metrics: how good a world model is. Ranking fidelity lives in `ranking`."""

from wmeval.metrics.ranking import (
    RankingInputError,
    kendall_tau_b,
    mmrv,
    order_world_models,
    pairwise_order_accuracy,
    pearson,
    ranking_fidelity,
    spearman,
)

__all__ = [
    "RankingInputError",
    "kendall_tau_b",
    "mmrv",
    "order_world_models",
    "pairwise_order_accuracy",
    "pearson",
    "ranking_fidelity",
    "spearman",
]
