"""A check ptychodus 1.7's batch mode does not make: the model file is there.

``ptychodus -b reconstruct -i IN -o OUT`` loads ``IN/model{ext}`` only if it exists and then
runs the reconstructor anyway; for a trainable reconstructor without a model the run fails
inside ptychodus' task manager, which logs a traceback and the repr of the whole task (the
diffraction arrays included). For the reconstructors our hook added, :func:`install` makes
batch reconstruct stop before that with one log line naming the path it looked for, and exit
code 1 (``ExitCode.FAILURE``). Other reconstructors are left to ptychodus. Idempotent and
fail-open, like :mod:`.install`.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["install", "missing_model_message", "uninstall"]

MODULE = "ptychodus.model.core"
CLASS = "ModelCore"
METHOD = "_batch_mode_reconstruct"
_MARK = "__ptychodus_pinn_torch_batch_check__"


def missing_model_message(model_core: Any, input_directory: Path) -> str | None:
    """The one-line error for a batch reconstruct of one of our (plugin) reconstructors whose
    model file ``IN/model<ext>`` is missing, or None when there is nothing to object to."""
    from ptychodus.api.io import StandardFileLayout
    from ptychodus.api.reconstruct import TrainableReconstructor

    from ptychodus_pinn_torch.host.install import libraries_of

    processing_api = model_core.processing_core.processing_api
    reconstructor = model_core.processing_core.algorithm_parameter.get_current_reconstructor()
    ours = any(reconstructor is r for library in libraries_of(processing_api) for r in library)
    if not ours or not isinstance(reconstructor, TrainableReconstructor):
        return None
    model_path = Path(input_directory) / (
        StandardFileLayout.MODEL_BASENAME + reconstructor.get_model_file_extension())
    if model_path.is_file() or reconstructor.is_model_loaded():
        return None
    return (f"no model file at {model_path}: batch reconstruct with {reconstructor.name} "
            f"needs a trained model there (`ptychodus -b train -i IN -o DIR` writes "
            f"DIR/{model_path.name}; copy it to {model_path})")


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _batch_mode_reconstruct(self: Any, input_directory: Path, output_directory: Path
                                ) -> Any:
        try:
            message = missing_model_message(self, input_directory)
        except Exception:  # fail open: ptychodus' own path runs
            logger.exception("ptychodus-pinn-torch: batch model check failed")
            message = None
        if message is not None:
            from ptychodus.api.exit_codes import ExitCode

            logger.error("%s", message)
            return ExitCode.FAILURE
        return original(self, input_directory, output_directory)

    setattr(_batch_mode_reconstruct, _MARK, original)
    return _batch_mode_reconstruct


def install() -> bool:
    """Wrap ``ModelCore._batch_mode_reconstruct`` once; True when the check is in place."""
    try:
        import importlib

        cls = getattr(importlib.import_module(MODULE), CLASS)
        current = getattr(cls, METHOD)
        if not hasattr(current, _MARK):
            setattr(cls, METHOD, _wrap(current))
        return True
    except Exception:
        logger.exception("ptychodus-pinn-torch: batch model check not installed")
        return False


def uninstall() -> None:
    """Undo :func:`install` (for tests)."""
    module = sys.modules.get(MODULE)
    cls = getattr(module, CLASS, None) if module is not None else None
    current = getattr(cls, METHOD, None) if cls is not None else None
    if current is not None and hasattr(current, _MARK):
        setattr(cls, METHOD, getattr(current, _MARK))
