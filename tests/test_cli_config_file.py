"""``pinn-torch train --config`` and ``pinn-torch reconstruct --config`` end to end (CFG-110/111).

Tiny runs: one epoch over 8 groups of ``fixtures/train.npz``; reconstruction of a 16-position
simulated scan.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.cli.translate import spec_document_to_torch
from ptychodus_pinn_torch.config.interop.documents import engine_from_document
from ptychodus_pinn_torch.data.simulate import simulate_scan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fixtures" / "example_spec_config.json"
TINY = ["--epochs", "1", "--n-groups", "8", "--batch-size", "4", "--device", "cpu",
        "--no-progress"]


def _manifest(archive: Path) -> dict:
    with zipfile.ZipFile(archive) as z:
        return json.loads(z.read("manifest.json"))


def _example(tmp: Path, **changes: object) -> Path:
    """The shipped example with absolute data paths (no test scan: keeps the run tiny)."""
    doc = json.loads(EXAMPLE.read_text())
    doc.update(train_data_file=str(ROOT / doc["train_data_file"]), test_data_file=None,
               **changes)
    path = tmp / "example.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def spec_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("spec")
    out = tmp / "out"
    assert main(["train", "--config", str(_example(tmp)), "--out", str(out), *TINY]) == 0
    return out


def test_example_spec_file_trains_and_its_values_reach_the_manifest(spec_run: Path) -> None:
    manifest = _manifest(spec_run / "wts.h5.zip")
    model = manifest["model_config"]
    assert model["gridsize"] == 2 and model["amp_activation"] == "swish"  # from the file
    assert model["probe_scale"] == 4.0
    training = manifest["training_config"]
    assert training["nepochs"] == 1 and training["batch_size"] == 4  # the flags win
    assert training["n_groups"] == 8 and training["nphotons"] == 1e9  # flag / file
    history = json.loads((spec_run / "history.json").read_text())
    assert len(history["epochs"]) == 1


def test_resolved_config_is_written_and_reads_back_as_config(spec_run: Path,
                                                             tmp_path: Path) -> None:
    doc = json.loads((spec_run / "config.json").read_text())
    config = engine_from_document(doc)
    assert config.training.nepochs == 1 and config.training.batch_size == 4
    assert config.model.amp_activation == "swish" and config.model.gridsize == 2
    assert config.training.output_dir == spec_run and config.device == "cpu"
    out = tmp_path / "again"  # the resolved file trains as it is, only --out given
    assert main(["train", "--config", str(spec_run / "config.json"), "--out", str(out),
                 "--no-progress"]) == 0
    again = json.loads((out / "config.json").read_text())
    assert {k: v for k, v in again.items() if k != "output_dir"} == \
        {k: v for k, v in doc.items() if k != "output_dir"}


def test_pytorch_layout_yaml_file_trains(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    spec_doc = json.loads(_example(tmp_path, nepochs=1, n_groups=8, batch_size=4).read_text())
    spec_doc["model"].update(gridsize=1, n_filters_scale=1)
    spec_doc["test_data_file"] = str(ROOT / "fixtures" / "test.npz")  # the bridge wants one
    torch_doc = spec_document_to_torch(spec_doc)
    path = tmp_path / "torch.yaml"
    path.write_text(yaml.safe_dump(torch_doc))
    out = tmp_path / "out"
    # --test given as the train scan itself: the file's test scan is replaced by the flag
    assert main(["train", "--config", str(path), "--out", str(out), "--device", "cpu",
                 "--no-progress", "--test", str(ROOT / "fixtures" / "train.npz")]) == 0
    manifest = _manifest(out / "wts.h5.zip")
    assert manifest["model_config"]["n_filters_scale"] == 1
    assert manifest["model_config"]["amp_activation"] == "swish"
    assert manifest["training_config"]["n_groups"] == 8
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["test_data_file"] == str(ROOT / "fixtures" / "train.npz")


def test_unknown_key_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    path = _example(tmp_path, n_epochs=3)
    rc = main(["train", "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "n_epochs" in err and str(path) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_reconstruct_config_sets_refinement_and_flag_overrides(spec_run: Path,
                                                               tmp_path: Path) -> None:
    scan = tmp_path / "scan.npz"
    simulate_scan(object_shape=(96, 96), seed=3, overlap=0.5).to_file(scan)
    settings = tmp_path / "r.json"
    settings.write_text(json.dumps({"model": str(spec_run / "wts.h5.zip"), "data": str(scan),
                                    "refine_epochs": 1, "batch_size": 8, "device": "cpu",
                                    "no_progress": True}))
    first = tmp_path / "a.npz"
    assert main(["reconstruct", "--config", str(settings), "--out", str(first)]) == 0
    with np.load(first) as z:
        assert "network_object" in z.files  # refine_epochs 1 from the file acted
    resolved = json.loads((tmp_path / "a.config.json").read_text())
    assert resolved["refine_epochs"] == 1 and resolved["batch_size"] == 8
    second = tmp_path / "b.npz"  # the written settings read back; the flag wins over them
    assert main(["reconstruct", "--config", str(tmp_path / "a.config.json"), "--out",
                 str(second), "--refine-epochs", "0"]) == 0
    with np.load(second) as z:
        assert "network_object" not in z.files
    assert json.loads((tmp_path / "b.config.json").read_text())["refine_epochs"] == 0
