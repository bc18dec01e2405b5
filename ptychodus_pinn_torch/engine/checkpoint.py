"""Atomic per-epoch training checkpoints and resume.

A checkpoint is one file, ``<dir>/checkpoint.pt``, written by ``torch.save`` to a temporary file
in the same folder and moved into place with :func:`os.replace`, so a crash or a kill during
the write leaves the previous checkpoint intact. It holds only tensors and plain Python values
(dicts, lists, str, int, float, bool, None) and is read back with
``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ptychodus_pinn_torch.data.atomic_file import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "pinn-torch-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used to resume this training."""


def checkpoint_path(directory: Path) -> Path:
    """Where the checkpoint of ``directory`` lives."""
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(directory: Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically to ``directory/checkpoint.pt`` and return that path.

    ``state`` must contain only tensors and plain Python values. The format and version keys
    are added here.
    """
    final = checkpoint_path(Path(directory))
    payload = dict(state)
    payload["format"] = CHECKPOINT_FORMAT
    payload["version"] = CHECKPOINT_VERSION
    # Serialized in memory first: torch's zip writer reports a failed write (a full disk) as
    # "unexpected pos"; a plain write raises the OSError that names the cause (ENOSPC).
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(final) as fh:
        fh.write(buffer.getbuffer())
    return final


def load_checkpoint(directory: Path, *, expect: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read ``directory/checkpoint.pt`` with ``torch.load(weights_only=True)`` onto the CPU.

    ``expect`` maps fingerprint keys (model size, gridsize, model type, ...) to the values of the
    training that wants to resume; a checkpoint written by a different set-up raises
    :class:`CheckpointError` naming the key, both values and the fix. A missing file raises
    ``FileNotFoundError``.
    """
    path = checkpoint_path(Path(directory))
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from: {path} does not exist; train without --resume first"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it and "
            "train without resume"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} is not a pinn-torch checkpoint (format={found!r}); delete it and train "
            "without resume"
        )
    if int(state.get("version", -1)) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {state.get('version')}, newer than this package "
            f"reads ({CHECKPOINT_VERSION}); upgrade ptychodus-pinn-torch"
        )
    if expect:
        found = state.get("fingerprint", {})
        for key, value in expect.items():
            if found.get(key) != value:
                raise CheckpointError(
                    f"checkpoint {path} was written for {key}={found.get(key)!r} but this "
                    f"training has {key}={value!r}; use the same settings to resume or delete "
                    "the checkpoint to start afresh"
                )
    return state
