"""Judges: how each world's episodes become success.

`outcomes` holds the outcome rules and thresholds every world shares; `frame` the judge of imagined frames
(`FrameJudge`, built per task by `wmeval.envs.registry`); `readability` how much of each world the frame judge
can read; `trajectory_probe` a pixel-only success probe for data with no simulator. Import the submodules
directly: the rollout loop needs the outcome rules without the probe's scikit-learn.
"""
