"""Ranking policies in the real env and in world models, and how faithfully each world model ranks them.

`config` (RankConfig: every setting, checked), `inputs` (policies and world models from names), `run`
(rank_policies: the paired rollouts), `fidelity` (the statistics and their bootstrap CIs), `report`
(report.json and the files beside it), `recorded` (ranking a dataset's recorded behaviours, no simulator).
"""

from wmeval.ranking.config import RankConfig
from wmeval.ranking.fidelity import ranking_fidelity
from wmeval.ranking.inputs import load_world_model
from wmeval.ranking.run import rank, rank_policies

__all__ = ["RankConfig", "load_world_model", "rank", "rank_policies", "ranking_fidelity"]
