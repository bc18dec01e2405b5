"""How many CPU threads torch uses in each phase (training, inference, refinement).

``threads`` (an engine setting, ``--threads`` on the command line, ``[PINNTorchExecution]
Threads`` in ptychodus) fixes the count for every phase. Left unset (None or 0), a phase uses
its default (:data:`PHASE_DEFAULTS`), unless ``OMP_NUM_THREADS`` is set, which then wins as
torch's own default. Refinement runs many small kernels where more threads only spin: it
defaults to 1 (measured on the shared 2-core machine, ENG-205: 2 threads took 37 s wall and
11.4 CPU-s for what 1 thread did in 2.6 s and 0.74 CPU-s). Training and inference are
convolutions that scale with cores on a machine of one's own, so they keep torch's default
(the physical cores); on a shared machine ``threads=1`` is faster (ENG-205). The count is
restored when the phase ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

PHASES = ("train", "inference", "refine")
#: threads per phase when neither ``threads`` nor ``OMP_NUM_THREADS`` says otherwise (None:
#: torch's default, the number of physical cores)
PHASE_DEFAULTS: dict[str, int | None] = {"train": None, "inference": None, "refine": 1}


def check_threads(threads: object, name: str = "threads") -> int | None:
    """``threads`` as an int >= 1, or None for "the phase's default" (None or 0)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(
            f"{name} must be an integer >= 1 (0 or None: the measured default per phase), "
            f"got {threads!r}"
        )
    return threads or None


def threads_for(phase: str, threads: int | None = None) -> int | None:
    """The thread count ``phase`` runs with: ``threads``, else None where ``OMP_NUM_THREADS``
    is set (torch follows it), else the phase's default."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    explicit = check_threads(threads)
    if explicit is not None:
        return explicit
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    return PHASE_DEFAULTS[phase]


@contextmanager
def phase_threads(phase: str, threads: int | None = None) -> Iterator[int]:
    """Run the block with :func:`threads_for` threads; restores torch's count afterwards.
    Yields the count in effect."""
    wanted = threads_for(phase, threads)
    before = torch.get_num_threads()
    if wanted is not None and wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
