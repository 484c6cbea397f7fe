"""One intra-op CPU thread around imagination, so a seed means the same rollouts whatever `threads=` is.

A parallel kernel splits its work by thread count (the sums of a matmul, the vectorised and scalar parts of a
resize), so the last bits of a generated frame depend on the count; a policy or judge reading the frame can
turn those bits into different actions, and the same seed into different success rates. Parallelism then
comes from processes (`workers=`), each on one thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """One intra-op thread for the enclosed calls (when `enabled`), restoring the caller's count afterwards."""
    before = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_cpu_thread(method: F) -> F:
    """Run a module method on one thread when the module lives on the CPU (GPU kernels are unaffected)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with one_thread(self.device.type == "cpu"):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
