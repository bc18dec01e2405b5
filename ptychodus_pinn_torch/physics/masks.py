"""Fixed masks of the PtychoPINN physics: the hard probe disk and the centre (Nyquist) square."""

from __future__ import annotations

import torch

__all__ = ["disk_mask", "centre_mask"]


def _check_n(N: int, name: str) -> int:
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"{name}: N must be a positive int (patch size in pixels), got {N!r}")
    return N


def disk_mask(N: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Hard disk ``M_ij = [sqrt((i - N//2 + .5)^2 + (j - N//2 + .5)^2) < N//4]``.

    Returns ``(N, N)`` float32 of 0/1 (812 ones at N=64, 3228 at N=128). Reference §5.1.
    """
    N = _check_n(N, "disk_mask")
    idx = torch.arange(N, dtype=torch.float64, device=device) - N // 2 + 0.5
    r = torch.sqrt(idx.view(N, 1) ** 2 + idx.view(1, N) ** 2)
    return (r < N // 4).to(torch.float32)


def centre_mask(N: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Centre mask: ones on rows/cols ``[N//4, N//4 + N//2)``, zeros on the border.

    Returns ``(N, N)`` float32 (upstream ``mk_centermask(kind='center')``: an ``N//2`` square of
    ones zero-padded by ``N//4``; for N=64 the ones span indices 16..47).
    """
    N = _check_n(N, "centre_mask")
    mask = torch.zeros((N, N), dtype=torch.float32, device=device)
    lo = N // 4
    mask[lo : lo + N // 2, lo : lo + N // 2] = 1.0
    return mask
