"""Errors of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """Malformed or unusable data that the user can fix.

    The message names the NPZ key (or argument), the value that was seen and the fix.
    """
