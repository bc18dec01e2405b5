"""``pinn-torch conformance``: run the spec conformance suite against the installed package."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "conformance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", type=Path, default=None, help="specs folder (default: found)")
    parser.add_argument(
        "--backend",
        default=None,
        help="entry point name of the plugin whose reconstructor library the HOST rules test",
    )
    parser.add_argument(
        "--suite",
        type=Path,
        default=None,
        help="folder of conformance tests (default: the suite shipped in this package)",
    )
    parser.add_argument(
        "-k", dest="keyword", default=None, help="only tests matching this pytest -k expression"
    )
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="extra argument passed to pytest"
    )


def run(args: argparse.Namespace) -> int:
    from ptychodus_pinn_torch.conformance.runner import SUITE_DIR, format_table
    from ptychodus_pinn_torch.conformance.runner import run as run_suite

    pytest_args = list(args.pytest_arg)
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    results, problems, exit_code = run_suite(
        specs_dir=args.specs,
        backend=args.backend,
        pytest_args=pytest_args,
        suite_dir=args.suite or SUITE_DIR,
    )
    print()
    print(format_table(results))
    for problem in problems:
        print(f"problem: {problem}")
    if args.keyword:  # a filtered run proves only what it ran
        bad = [r for r in results if r.status == "FAIL"]
    else:
        bad = [r for r in results if not r.ok]
    if bad or problems or exit_code not in (0, 5):
        print(f"conformance FAILED: {len(bad)} rule(s) not proved")
        return 1
    print("conformance passed")
    return 0
