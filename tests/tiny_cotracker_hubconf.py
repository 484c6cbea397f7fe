"""A tiny stand-in for CoTracker's `hubconf.py`: the same entry-point name, call convention and weight loading.

Tests copy it to `<hub dir>/facebookresearch_co-tracker_main/hubconf.py` and save a checkpoint to
`<hub dir>/checkpoints/cotracker2.pth`, the layout `torch.hub` leaves after a real download, so that the
real loading-and-tracking path of `wmeval.metrics.pck` runs offline. The model moves every query point by a
velocity read from the checkpoint, and refuses input that breaks CoTracker's conventions.
"""

import torch
from torch import nn

dependencies = ["torch"]
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/cotracker/cotracker2.pth"  # as the real hubconf names it


class TinyCoTracker(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.velocity = nn.Parameter(torch.zeros(2))  # px per frame (x, y); the checkpoint sets it

    def forward(self, video: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video float [B, T, 3, H, W] in [0, 255], queries [B, N, 3] (frame, x, y) -> tracks, visibility."""
        b, t, c, h, w = video.shape
        if c != 3 or not video.is_floating_point() or float(video.max()) <= 1.0:
            raise ValueError(f"video must be float [B, T, 3, H, W] in [0, 255], got {tuple(video.shape)}")
        if queries.shape[-1] != 3 or not bool((queries[..., 0] == 0).all()):
            raise ValueError("queries must be [B, N, 3] rows of (frame index, x, y)")
        steps = torch.arange(t, dtype=video.dtype, device=video.device)[None, :, None, None]
        tracks = queries[:, None, :, 1:] + steps * self.velocity
        return tracks, torch.ones(tracks.shape[:3], dtype=torch.bool, device=video.device)


def cotracker2(*, pretrained: bool = True, **kwargs: object) -> TinyCoTracker:
    model = TinyCoTracker()
    if pretrained:  # from <hub dir>/checkpoints when it is there: nothing is downloaded then
        state = torch.hub.load_state_dict_from_url(WEIGHTS_URL, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model
