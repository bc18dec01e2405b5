"""ENG-123..127: a training's output folder is protected and a model survives a crash."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ptychodus_pinn_torch.cli import main as cli_main
from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan
from ptychodus_pinn_torch.data import atomic_file
from ptychodus_pinn_torch.engine.archive import load_archive
from ptychodus_pinn_torch.engine.events import EpochReport, TrainCallbacks
from ptychodus_pinn_torch.engine.output_folder import LOCK_NAME, OutputFolderBusy, OutputLock
from ptychodus_pinn_torch.engine.run import run_training


@pytest.mark.spec("ENG-123")
def test_output_lock(tmp_path: Path) -> None:
    busy = rf"in use by another training \(pid {os.getpid()}"
    with OutputLock(tmp_path):
        with pytest.raises(OutputFolderBusy, match=busy):
            run_training(tiny_scan(), tiny_engine(1), tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.spec("ENG-124")
def test_writable_before_training(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    seen: list[EpochReport] = []
    with pytest.raises(OSError, match="is not writable"):
        run_training(tiny_scan(), tiny_engine(1), tmp_path / "file" / "out",
                     callbacks=TrainCallbacks(on_epoch=(seen.append,)))
    assert seen == []


@pytest.mark.spec("ENG-125")
@pytest.mark.spec("ENG-126")
def test_temporaries_cleaned_and_model_at_every_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    orphan = out / ".wts.h5.zip.x1y2.tmp"
    orphan.write_bytes(b"partial")

    def crash(report: EpochReport) -> None:
        if report.epoch == 2:
            raise RuntimeError("simulated crash after epoch 2")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tiny_scan(), tiny_engine(4), out, callbacks=TrainCallbacks(on_epoch=(crash,)))
    assert not orphan.exists()
    bundle = load_archive(out)
    assert [h["epoch"] for h in bundle.history] == [1, 2]
    assert "in progress" in json.loads((out / "history.json").read_text())["stopped"]
    assert not (out / LOCK_NAME).exists()


@pytest.mark.spec("ENG-127")
def test_full_disk_and_allocation_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def no_space(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_file.os, "fsync", no_space)
    target = tmp_path / "f.bin"
    with pytest.raises(OSError, match=r"No space left on device; writing .*f\.bin"):
        with atomic_file.atomic_write(target) as fh:
            fh.write(b"data")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    class Exploding:
        NAME = "explode"

        @staticmethod
        def add_arguments(parser: Any) -> None:
            pass

        @staticmethod
        def run(args: Any) -> int:
            raise RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you "
                               "tried to allocate 17592186044416 bytes.\nmore text")

    monkeypatch.setitem(cli_main.SUBCOMMANDS, "explode", ("explode_module", "test"))
    monkeypatch.setattr(cli_main.importlib, "import_module", lambda name: Exploding)
    assert cli_main.main(["explode"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pinn-torch explode: error: out of memory")
