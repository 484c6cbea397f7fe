"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread for the test, restored after: small models run faster and CI's 2 cores stay usable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_onednn(monkeypatch: pytest.MonkeyPatch):
    """oneDNN off for the test: it spends seconds creating kernels per conv shape of a tiny model, and the
    results are the same without it."""
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Offline with an empty Hugging Face cache, so nothing can download and no Hub id is found."""
    import huggingface_hub.constants as hf_constants

    empty = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(empty))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(empty / "hub"))
