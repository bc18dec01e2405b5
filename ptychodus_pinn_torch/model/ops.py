"""In-model canvas operations: padded size, pad/trim, merge of channel patches, extraction.

Channels-first layouts (reference §4.2, §4.3 transposed from TF's channels-last):

- patches ``(B, C, N, N)`` complex64, one per channel (scan position of a group);
- positions ``(B, C, 2)`` float32 pixels, ``[..., 0] = x`` (columns), ``[..., 1] = y`` (rows):
  upstream's ``coords_relative`` (= ``coords_start_relative``, mean of the group minus the
  position);
- canvas ``(B, P, P)`` complex64 with ``P = N + (gridsize - 1) * offset + max_position_jitter``.

Signs follow upstream TF: the merge translates channel c by ``-offset_c``, the extraction by
``+offset_c``, with ``physics.translate`` moving content by ``+t`` (bilinear, zero fill).
"""

from __future__ import annotations

import torch

from ptychodus_pinn_torch.physics import centre_mask, translate

#: Upstream ``params.cfg['offset']``: nominal spacing of group members, pixels.
DEFAULT_OFFSET = 4
#: Upstream ``params.cfg['max_position_jitter']``: canvas margin for position jitter, pixels.
DEFAULT_MAX_POSITION_JITTER = 10
#: Pixels whose translated weight sum is at most this are treated as not covered.
COVERAGE_EPS = 1e-6


def padded_size(
    n: int,
    gridsize: int,
    offset: int = DEFAULT_OFFSET,
    max_position_jitter: int = DEFAULT_MAX_POSITION_JITTER,
) -> int:
    """Canvas side ``P = N + (gridsize - 1) * offset + max_position_jitter`` (reference §4.2).

    Defaults give 74 / 78 / 82 for N = 64 and gridsize 1 / 2 / 3. Raises ValueError when
    ``P - N`` is odd or not positive (the canvas must pad the patch symmetrically).
    """
    p = n + (gridsize - 1) * offset + max_position_jitter
    if p <= n or (p - n) % 2:
        raise ValueError(
            f"padded size P = {p} for N = {n}, gridsize = {gridsize}, offset = {offset}, "
            f"max_position_jitter = {max_position_jitter}: P - N must be even and positive; "
            "use an even offset and max_position_jitter."
        )
    return p


def pad_to_canvas(x: torch.Tensor, p: int) -> torch.Tensor:
    """Zero-pad the last two axes symmetrically from ``(..., N, N)`` to ``(..., P, P)``.

    Works for real and complex tensors; ``P - N`` must be even and non-negative.
    """
    n = x.shape[-1]
    pad = (p - n) // 2
    if pad < 0 or 2 * pad != p - n:
        raise ValueError(f"cannot pad size {n} to {p}: P - N must be even and >= 0")
    return torch.nn.functional.pad(x, (pad, pad, pad, pad))


def trim_canvas(x: torch.Tensor, n: int) -> torch.Tensor:
    """Centre ``N x N`` of the last two axes: ``(..., P, P) -> (..., N, N)``, start ``(P-N)//2``.

    Upstream ``TrimReconstructionLayer`` / ``trim_reconstruction``.
    """
    p = x.shape[-1]
    if n > p:
        raise ValueError(f"cannot trim size {p} to a larger size {n}")
    start = (p - n) // 2
    return x[..., start : start + n, start : start + n]


def _check_positions(positions: torch.Tensor, b: int, c: int) -> None:
    if positions.shape != (b, c, 2):
        raise ValueError(
            f"positions has shape {tuple(positions.shape)}; expected (B, C, 2) = ({b}, {c}, 2) "
            "with [..., 0] = x (columns) and [..., 1] = y (rows) in pixels (coords_relative in "
            "channels-first layout: upstream (B, 1, 2, C) permuted to (B, C, 2))."
        )


def extract_patches(canvas: torch.Tensor, positions: torch.Tensor, n: int) -> torch.Tensor:
    """Upstream ``extract_patches_position``: one ``N x N`` view of the canvas per channel.

    Args:
        canvas: ``(B, P, P)`` complex64 (or real) object canvas.
        positions: ``(B, C, 2)`` float32 offsets ``[x, y]`` in pixels.
        n: patch side N.

    Returns:
        ``(B, C, N, N)`` of the canvas dtype: channel c is the canvas translated by
        ``+positions[:, c]`` and centre-trimmed, i.e. the region centred at canvas pixel
        ``(row, col) = (P/2 - y_c, P/2 - x_c)``.
    """
    b, p = canvas.shape[0], canvas.shape[-1]
    c = positions.shape[1]
    _check_positions(positions, b, c)
    if c == 1 and not bool(positions.any()):  # gridsize 1: no translation (MODEL-200)
        return trim_canvas(canvas, n).unsqueeze(1)
    copies = canvas.unsqueeze(1).expand(b, c, p, p).reshape(b * c, p, p)
    moved = translate(copies, positions.reshape(b * c, 2).to(torch.float32))
    return trim_canvas(moved, n).reshape(b, c, n, n)


def merge_patches(patches: torch.Tensor, positions: torch.Tensor, p: int) -> torch.Tensor:
    """Merge channel patches onto one canvas (upstream ``ReassemblePatchesLayer``, corrected).

    Each patch is zero-padded to ``P`` and translated by ``-positions[:, c]`` (``T_c``). With
    ``M`` the centre mask (ones on the central ``N/2 x N/2`` square), the centre coverage
    ``k = sum_c T_c(M)``, ``num = sum_c T_c(M * patch_c)`` and the plain average
    ``avg = sum_c T_c(patch_c) / sum_c T_c(1)`` (0 where no patch covers the pixel)::

        canvas = num / k                    where k >= 1  (covered by centre squares)
        canvas = num + (1 - k) * avg        where k <  1  (border, and centre-square edges)

    Every canvas pixel is thus a convex combination of patch values: the centre squares are
    averaged where they cover the pixel, patch borders fill in the rest, in proportion to the
    uncovered fraction. The result is continuous in ``k`` and, at gridsize 1 with position 0,
    equal to the padded patch. See MODEL.md (MODEL-010) for the deviation from upstream's
    ``sum_c T_c(patch_c) / (sum_c T_c(M) + 0.001)``.

    Args:
        patches: ``(B, C, N, N)`` complex64.
        positions: ``(B, C, 2)`` float32 offsets ``[x, y]`` in pixels.
        p: canvas side P.

    Returns:
        ``(B, P, P)`` complex64 canvas.
    """
    b, c, n = patches.shape[0], patches.shape[1], patches.shape[-1]
    _check_positions(positions, b, c)
    if c == 1 and not bool(positions.any()):
        # gridsize 1 at position 0: the formula below gives the padded patch exactly (k = M,
        # plain = patch inside, 0 outside); skip its three canvas translations (MODEL-200)
        return pad_to_canvas(patches[:, 0].to(torch.complex64), p)
    flat = patches.reshape(b * c, n, n).to(torch.complex64)
    mask = centre_mask(n, device=flat.device)
    # One complex translate call for all four sums (translation is linear and acts on real and
    # imaginary parts separately): [patch*mask, patch, mask + i*ones].
    weights = torch.complex(mask, torch.ones_like(mask)).expand(b * c, n, n)
    stack = torch.cat([flat * mask, flat, weights], dim=0)
    shifts = (-positions.reshape(b * c, 2).to(torch.float32)).repeat(3, 1)
    moved = translate(pad_to_canvas(stack, p), shifts).reshape(3, b, c, p, p).sum(dim=2)
    num_centre, num_all, counts = moved[0], moved[1], moved[2]
    coverage, count_all = counts.real, counts.imag
    plain = num_all / count_all.clamp_min(COVERAGE_EPS)
    plain = torch.where(count_all > COVERAGE_EPS, plain, torch.zeros_like(plain))
    full = coverage >= 1.0
    inside = num_centre / torch.where(full, coverage, torch.ones_like(coverage))
    edge = num_centre + (1.0 - coverage) * plain
    return torch.where(full, inside, edge)
