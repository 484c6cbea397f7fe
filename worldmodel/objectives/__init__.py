"""Training objectives: flow matching (the paper's setting) and DDPM."""

from worldmodel.objectives.flow_matching import FlowMatching, FlowMatchingConfig, default_shift, shift_time

__all__ = ["FlowMatching", "FlowMatchingConfig", "default_shift", "shift_time"]
