"""A new training never destroys the model of an earlier one.

Before a training writes ``OUT/model.zip``, an existing ``model.zip`` is renamed to the next
free numbered backup ``model.1.zip``, ``model.2.zip``, ... (the highest number is the newest
backup), unless the user set ``[PINNTorchExecution] OverwriteModel``. When the new training
produces no model (stopped before its first epoch, failed), the backup is moved back, so the
folder looks as before. ``model.zip`` itself stays the name ptychodus' batch mode reads
(``StandardFileLayout.MODEL_BASENAME`` + extension).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["numbered_backups", "restore_backup", "set_aside"]


def _numbered(path: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"^{re.escape(path.stem)}\.(\d+){re.escape(path.suffix)}$")
    found = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            match = pattern.match(entry.name)
            if match and entry.is_file():
                found.append((int(match.group(1)), entry))
    return sorted(found)


def numbered_backups(path: Path) -> list[Path]:
    """The numbered backups of ``path`` (``model.zip`` -> ``model.1.zip``, ...), oldest first."""
    return [entry for _, entry in _numbered(Path(path))]


def set_aside(path: Path) -> Path | None:
    """Rename an existing ``path`` to its next numbered backup; returns the backup (or None
    when there was nothing to keep). The rename is atomic (same folder)."""
    path = Path(path)
    if not path.is_file():
        return None
    existing = _numbered(path)
    number = existing[-1][0] + 1 if existing else 1
    backup = path.with_name(f"{path.stem}.{number}{path.suffix}")
    os.replace(path, backup)
    return backup


def restore_backup(path: Path, backup: Path | None) -> bool:
    """Move ``backup`` back to ``path`` when ``path`` does not exist (the new training wrote
    nothing); returns True when it did."""
    if backup is None or Path(path).exists() or not Path(backup).is_file():
        return False
    os.replace(backup, path)
    return True
