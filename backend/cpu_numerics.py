"""Torch on the CPU with results that do not move with the machine's thread count.

Two torch CPU behaviours make a fit's low bits depend on the number of intra-op threads: oneDNN picks its
convolution algorithm by thread count, and several kernels (bilinear/bicubic resizes, float32 reductions) split
their work into per-thread chunks that round differently at the edges. Amplified by an optimiser over many steps
they change the result (LGM fine-tuning: loss 1.4e-3, Gaussians 0.11 apart after 3 steps at 1 vs 4 threads).
`native_kernels` keeps convolutions off oneDNN; `fixed_threads` runs a whole computation on a set number of
threads, for the code paths (ID-TS's conditioners, training) whose thread-dependent kernels are not ours to change.
"""
from __future__ import annotations

import contextlib

import torch


def native_kernels(device: torch.device | str):
    """On the CPU, torch's native convolutions instead of oneDNN's (bit-identical at any thread count, and faster
    for small models); elsewhere nothing changes."""
    return torch.backends.mkldnn.flags(enabled=False) if torch.device(device).type == "cpu" \
        else contextlib.nullcontext()


@contextlib.contextmanager
def fixed_threads(threads: int, on_cpu: bool = True):
    """torch's intra-op threads set to `threads` for the block (restored after) when the work runs on the CPU;
    `threads` <= 0 or a GPU run leaves torch's default."""
    if not on_cpu or threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
