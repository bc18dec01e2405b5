"""Entry point of the ``pinn-torch`` command.

Each subcommand lives in its own module of this package and exposes::

    NAME: str                       # the subcommand's name
    HELP: str                       # one line for ``pinn-torch --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # exit status

Subcommand modules are imported lazily, only when chosen, so ``pinn-torch conformance`` or
``pinn-torch translate`` never pay for importing torch. Errors that a user can fix (bad files,
impossible settings) are raised as :class:`UserError` (or ``ValueError``/``FileNotFoundError``)
and printed as one line with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ptychodus_pinn_torch import __version__

#: subcommand name -> (module, one-line help). Order is the order shown in ``--help``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("ptychodus_pinn_torch.cli.simulate", "write a simulated ptychography scan as NPZ"),
    "train": ("ptychodus_pinn_torch.cli.train", "train a PtychoPINN model on NPZ data"),
    "reconstruct": (
        "ptychodus_pinn_torch.cli.reconstruct",
        "reconstruct an object from NPZ data with a trained model",
    ),
    "evaluate": (
        "ptychodus_pinn_torch.cli.evaluate",
        "compare a reconstruction with a reference: SSIM, PSNR, RMSE, FRC resolution",
    ),
    "convert": ("ptychodus_pinn_torch.cli.convert",
                "convert a scan (NPZ, ptychodus files) to a memory-mapped folder or an NPZ"),
    "export-ptychodus": ("ptychodus_pinn_torch.cli.export_ptychodus",
                         "write an NPZ scan as ptychodus' batch input folder (settings.ini, "
                         "diffraction.h5, product.h5, model.zip)"),
    "import-tf": (
        "ptychodus_pinn_torch.cli.import_tf",
        "convert a TensorFlow PtychoPINN model (wts.h5.zip) into a PyTorch model archive",
    ),
    "translate": (
        "ptychodus_pinn_torch.cli.translate",
        "translate TensorFlow-style PtychoPINN configs to the PyTorch dataclasses and back",
    ),
    "conformance": (
        "ptychodus_pinn_torch.cli.conformance",
        "run the spec conformance suite and print rule -> pass/fail",
    ),
}


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinn-torch",
        description="PyTorch PtychoPINN: simulate, train, reconstruct, translate configs, "
        "and check conformance.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="WARNING", help="logging level (DEBUG, INFO, WARNING, ...)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def _find_command(argv: Sequence[str]) -> str | None:
    """The subcommand: the first word that is neither an option nor an option's value."""
    skip_value = False
    for word in argv:
        if skip_value:
            skip_value = False
        elif word == "--log-level":
            skip_value = True
        elif not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # The first word that names a subcommand chooses it; only that module is imported, and it adds
    # its own arguments before parsing (so ``pinn-torch train --help`` lists train's options).
    command = _find_command(argv)
    if command is None:
        parser.parse_args(argv)  # handles --help / --version / bad options
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    module.add_arguments(subparsers.choices[command])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("pinn-torch: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pinn-torch {command}: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not _is_allocation_failure(exc):
            raise
        print(f"pinn-torch {command}: error: out of memory ({_first_line(exc)}); use a smaller "
              f"--batch-size, a smaller scan, or another device", file=sys.stderr)
        return 2


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:200] if text else type(exc).__name__)


def _is_allocation_failure(exc: BaseException) -> bool:
    """A MemoryError, or torch's RuntimeError for a failed allocation (CPU or CUDA)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or (
        "not enough memory" in text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
