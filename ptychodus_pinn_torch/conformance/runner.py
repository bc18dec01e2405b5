"""Run the conformance tests and fold their outcomes into a rule -> result table."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ptychodus_pinn_torch.conformance import BACKEND_ENV
from ptychodus_pinn_torch.conformance.rules import Rule, load_rules

SUITE_DIR = Path(__file__).resolve().parent


@dataclass
class RuleResult:
    rule: Rule
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        if self.passed:
            return "PASS"
        if self.skipped:
            return "SKIP"
        return "NO TEST" if self.rule.normative else "n/a"

    @property
    def ok(self) -> bool:
        return self.status in ("PASS", "n/a")


class _Collector:
    """pytest plugin: remembers each test's rule ids and its outcome."""

    def __init__(self) -> None:
        self.rule_ids: dict[str, tuple[str, ...]] = {}
        self.outcomes: dict[str, str] = {}
        self.unknown_ids: dict[str, list[str]] = defaultdict(list)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids: list[str] = []
            for mark in item.iter_markers(name="spec"):
                ids.extend(str(a) for a in mark.args)
            self.rule_ids[item.nodeid] = tuple(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and previous != "failed":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and report.passed and previous is None:
            self.outcomes[report.nodeid] = "passed"


def run(
    *,
    specs_dir: Path | None = None,
    backend: str | None = None,
    pytest_args: Sequence[str] = (),
    suite_dir: Path = SUITE_DIR,
) -> tuple[list[RuleResult], list[str], int]:
    """Run the suite in ``suite_dir`` (default: this package) against the rules in ``specs_dir``.

    Returns (one result per rule, messages about tests naming unknown rules, pytest's exit code).
    """
    rules = load_rules(specs_dir)
    collector = _Collector()
    args = [str(suite_dir), "-q", "-p", "no:cacheprovider", "--no-header", *pytest_args]
    previous = os.environ.get(BACKEND_ENV)
    if backend:
        os.environ[BACKEND_ENV] = backend
    try:
        exit_code = int(pytest.main(args, plugins=[collector]))
    finally:
        if backend:
            if previous is None:
                os.environ.pop(BACKEND_ENV, None)
            else:
                os.environ[BACKEND_ENV] = previous
    results = {r.rule_id: RuleResult(r) for r in rules}
    problems: list[str] = []
    for nodeid, ids in collector.rule_ids.items():
        outcome = collector.outcomes.get(nodeid)
        if outcome is None:
            continue  # deselected
        for rule_id in ids:
            if rule_id not in results:
                problems.append(f"{nodeid} names {rule_id}, which no file in specs/ defines")
                continue
            getattr(results[rule_id], outcome).append(nodeid)
    return list(results.values()), problems, exit_code


def format_table(results: Sequence[RuleResult]) -> str:
    """A plain-text table: rule, status, number of tests, title."""
    width = max([len(r.rule.rule_id) for r in results] + [4])
    lines = [f"{'rule':<{width}}  {'result':<7}  tests  title", "-" * (width + 40)]
    for r in results:
        n = len(r.passed) + len(r.failed) + len(r.skipped)
        lines.append(f"{r.rule.rule_id:<{width}}  {r.status:<7}  {n:>5}  {r.rule.title}")
    n_ok = sum(r.ok for r in results)
    lines.append(f"{n_ok} of {len(results)} rules hold")
    return "\n".join(lines)
