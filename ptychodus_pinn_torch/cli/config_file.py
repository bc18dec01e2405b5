"""``--config FILE`` for the subcommands: which flags the user gave, and reading the file.

A flag overrides the file only when it is on the command line; :func:`track_given` makes the
parser record the destinations of the options it actually saw (``given(args)``), so a flag
left at its default never hides the file's value (specs/CFG.md CFG-110).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: the namespace attribute holding the destinations of the options given on the command line
GIVEN_ATTR = "given_flags"

_RECORDING: dict[type, type] = {}


def _recording(base: type[argparse.Action]) -> type[argparse.Action]:
    if base not in _RECORDING:
        def __call__(self: argparse.Action, parser: argparse.ArgumentParser,
                     namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            seen = set(getattr(namespace, GIVEN_ATTR, ()))
            seen.add(self.dest)
            setattr(namespace, GIVEN_ATTR, frozenset(seen))
            base.__call__(self, parser, namespace, values, option_string)

        _RECORDING[base] = type(f"Recording{base.__name__}", (base,), {"__call__": __call__})
    return _RECORDING[base]


def track_given(parser: argparse.ArgumentParser) -> None:
    """Make every option of ``parser`` (added so far) record its destination when given."""
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            action.__class__ = _recording(type(action))


def given(args: argparse.Namespace) -> frozenset[str]:
    """The destinations of the options given on the command line."""
    return frozenset(getattr(args, GIVEN_ATTR, ()))


def read_document(path: Path) -> dict[str, Any]:
    """The mapping of a JSON or YAML config file (ValueError naming the file otherwise)."""
    from ptychodus_pinn_torch.api.configs import read_config_file

    return read_config_file(path)


def apply_settings_file(parser: argparse.ArgumentParser, args: argparse.Namespace,
                        path: Path, *, skip: tuple[str, ...] = ("config",)) -> dict[str, Any]:
    """Set the options of ``args`` from a flat settings file (keys: the command's option names,
    ``batch_size`` or ``batch-size``), except the options given on the command line, which win.
    Values are converted by the option's type; an unknown key is a ValueError naming it and the
    file. Returns the resolved settings (every option but ``skip``), JSON-safe."""
    doc = read_document(path)
    options = {a.dest: a for a in parser._actions
               if a.option_strings and a.dest not in (*skip, "help")}
    flags = given(args)
    for key, value in doc.items():
        dest = str(key).replace("-", "_")
        if dest not in options:
            raise ValueError(f"--config {path}: unknown key {key!r}; accepted: "
                             f"{sorted(options)}")
        if dest in flags:
            continue
        action = options[dest]
        if value is not None and action.type is not None and callable(action.type):
            try:
                value = action.type(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"--config {path}: {key}={value!r} is not valid ({exc})") \
                    from None
        if action.choices is not None and value is not None and value not in action.choices:
            raise ValueError(f"--config {path}: {key}={value!r} is not one of "
                             f"{list(action.choices)}")
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction) and \
                not isinstance(value, bool):
            raise ValueError(f"--config {path}: {key} must be true or false, got {value!r}")
        setattr(args, dest, value)
    return resolved_settings(args, options)


def resolved_settings(args: argparse.Namespace,
                      options: dict[str, argparse.Action]) -> dict[str, Any]:
    """The values of ``options`` in ``args`` as a JSON-safe mapping (paths as str)."""
    out: dict[str, Any] = {}
    for dest in sorted(options):
        value = getattr(args, dest, None)
        out[dest] = str(value) if isinstance(value, Path) else value
    return out
