"""The conformance runner: rules come from specs/, a rule without a passing test fails the run."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from ptychodus_pinn_torch.conformance import load_rules
from ptychodus_pinn_torch.conformance.runner import SUITE_DIR, format_table, run


def _make_suite(tmp_path: Path, tests: str) -> tuple[Path, Path]:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "TOY.md").write_text(
        textwrap.dedent(
            """\
            # toy
            ### TOY-001: two plus two is four
            ### TOY-002: one is odd
            ### TOY-003: why this exists (informative)
            """
        )
    )
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(SUITE_DIR / "conftest.py", suite / "conftest.py")
    # a unique module name per suite: pytest runs in-process and caches test modules by name
    (suite / f"test_toy_{tmp_path.name}.py").write_text(textwrap.dedent(tests))
    return specs, suite


def test_rules_are_read_with_normative_flag(tmp_path: Path) -> None:
    specs, _ = _make_suite(tmp_path, "")
    rules = load_rules(specs)
    assert [(r.rule_id, r.normative) for r in rules] == [
        ("TOY-001", True),
        ("TOY-002", True),
        ("TOY-003", False),
    ]


def test_headings_inside_code_blocks_are_examples(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "A.md").write_text("```\n### EXA-001: an example\n```\n### EXA-002: real\n")
    assert [r.rule_id for r in load_rules(specs)] == ["EXA-002"]


def test_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "A.md").write_text("### DUP-001: a\n")
    (specs / "B.md").write_text("### DUP-001: b\n")
    with pytest.raises(ValueError, match="DUP-001 defined twice"):
        load_rules(specs)


ALL_TESTS = """\
import pytest

@pytest.mark.spec("TOY-001")
def test_four():
    assert 2 + 2 == 4

@pytest.mark.spec("TOY-002")
def test_odd():
    assert 1 % 2 == 1
"""


def test_every_rule_proved_passes(tmp_path: Path) -> None:
    specs, suite = _make_suite(tmp_path, ALL_TESTS)
    results, problems, code = run(specs_dir=specs, suite_dir=suite)
    assert code == 0 and not problems
    assert {r.rule.rule_id: r.status for r in results} == {
        "TOY-001": "PASS",
        "TOY-002": "PASS",
        "TOY-003": "n/a",
    }
    assert "3 of 3 rules hold" in format_table(results)


def test_deleting_a_rules_test_fails_the_rule(tmp_path: Path) -> None:
    without_odd = ALL_TESTS.split("@pytest.mark.spec(\"TOY-002\")")[0]
    specs, suite = _make_suite(tmp_path, without_odd)
    results, _, _ = run(specs_dir=specs, suite_dir=suite)
    status = {r.rule.rule_id: r.status for r in results}
    assert status["TOY-002"] == "NO TEST"
    assert not all(r.ok for r in results)


def test_failing_test_and_unknown_rule_are_reported(tmp_path: Path) -> None:
    broken = ALL_TESTS.replace("1 % 2 == 1", "1 % 2 == 0") + textwrap.dedent(
        """
        @pytest.mark.spec("TOY-999")
        def test_unknown():
            pass
        """
    )
    specs, suite = _make_suite(tmp_path, broken)
    results, problems, code = run(specs_dir=specs, suite_dir=suite)
    assert {r.rule.rule_id: r.status for r in results}["TOY-002"] == "FAIL"
    assert code == 1
    assert any("TOY-999" in p for p in problems)


def test_cli_exit_status_follows_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ptychodus_pinn_torch.cli.main import main

    specs, suite = _make_suite(tmp_path, ALL_TESTS)
    assert main(["conformance", "--specs", str(specs), "--suite", str(suite)]) == 0
    assert "conformance passed" in capsys.readouterr().out
    for old in suite.glob("test_toy_*.py"):
        old.unlink()
    (suite / "test_toy_without_odd.py").write_text(
        ALL_TESTS.split('@pytest.mark.spec("TOY-002")')[0]
    )
    assert main(["conformance", "--specs", str(specs), "--suite", str(suite)]) == 1
    out = capsys.readouterr().out
    assert "NO TEST" in out and "conformance FAILED" in out


def test_backend_reaches_the_suite(tmp_path: Path) -> None:
    tests = ALL_TESTS + textwrap.dedent(
        """
        @pytest.mark.spec("TOY-001")
        def test_backend(backend_name):
            assert backend_name == "another-plugin"
        """
    )
    specs, suite = _make_suite(tmp_path, tests)
    results, _, code = run(specs_dir=specs, suite_dir=suite, backend="another-plugin")
    assert code == 0 and all(r.ok for r in results)
    results, _, code = run(specs_dir=specs, suite_dir=suite)  # default backend: test fails
    assert code == 1
