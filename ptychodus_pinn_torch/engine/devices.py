"""Choose the torch device a training or inference runs on."""

from __future__ import annotations

import torch

#: device names a user may give (``cuda:1`` and the like are accepted too)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "gpu", "mps")


def select_device(name: str = "auto", *, local_rank: int | None = None) -> torch.device:
    """Resolve a user's device name to a :class:`torch.device`.

    ``"auto"`` picks CUDA when available (``cuda:<local_rank>`` under torchrun), else Apple MPS,
    else the CPU. ``"gpu"`` is an alias of ``"cuda"``. A device that is asked for but not
    present raises ``ValueError`` naming the device and the fix.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"device must be one of {DEVICE_CHOICES} or 'cuda:<index>', got {name!r}")
    key = name.strip().lower()
    if key == "gpu":
        key = "cuda"
    if key == "auto":
        if torch.cuda.is_available():
            return _cuda(local_rank)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "mps":
        if not _mps_available():
            raise ValueError("device 'mps' was requested but Apple MPS is not available; "
                             "use --device cpu or --device auto")
        return torch.device("mps")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was requested but CUDA is not available in this torch build "
                f"({torch.__version__}); use --device cpu or --device auto"
            )
        if key == "cuda":
            return _cuda(local_rank)
        try:
            index = int(key.split(":", 1)[1])
        except ValueError:
            raise ValueError(
                f"device {name!r} is not a valid CUDA device; use e.g. 'cuda:0'"
            ) from None
        if not 0 <= index < torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) "
                             "present; use a smaller index")
        return torch.device("cuda", index)
    raise ValueError(f"device must be one of {DEVICE_CHOICES} or 'cuda:<index>', got {name!r}")


def _mps_available() -> bool:
    """Apple MPS is present in this torch build and usable."""
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def _cuda(local_rank: int | None) -> torch.device:
    index = 0 if local_rank is None else local_rank % max(1, torch.cuda.device_count())
    return torch.device("cuda", index)
