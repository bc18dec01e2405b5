"""The ``pinn-torch`` dispatcher: lazy subcommands, their own --help, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ptychodus_pinn_torch.cli.main import SUBCOMMANDS, main


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_subcommand_help_lists_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--help"])
    assert exit_info.value.code == 0
    assert "--to" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback(tmp_path) -> None:
    missing = tmp_path / "missing.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ptychodus_pinn_torch.cli.main", "translate", str(missing)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing.json" in lines[0]


def test_translate_command_does_not_import_torch() -> None:
    code = (
        "import sys; from ptychodus_pinn_torch.cli import main as m; "
        "import importlib; importlib.import_module(m.SUBCOMMANDS['translate'][0]); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_an_option_value_is_not_taken_for_the_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-level", "translate", "--help"])  # no subcommand: the top-level help
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--to" not in out and "COMMAND" in out
