"""Behaviour of engine/archive beyond the numbered ARCH rules: variants of the model,
trainable flags, wrapped modules, history records, odd zips (forged flags, short members)."""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.engine.archive import (
    ARCHIVE_NAME,
    ArchiveError,
    ModelBundle,
    load_archive,
    peek_archive,
    resolve_archive_path,
    save_archive,
)
from ptychodus_pinn_torch.model import build_model

N = 64


def _bundle(gridsize: int = 1, *, probe_trainable: bool = False, scale_trainable: bool = True,
            training: bool = True) -> ModelBundle:
    torch.manual_seed(1)
    mc = spec.ModelConfig(N=N, gridsize=gridsize, n_filters_scale=1, amp_activation="swish")
    tc = spec.TrainingConfig(model=mc, probe_trainable=probe_trainable,
                             intensity_scale_trainable=scale_trainable, backend="pytorch")
    yy, xx = np.mgrid[:N, :N] - N / 2
    probe = np.exp(-(xx**2 + yy**2) / 200.0).astype(np.complex64)
    model = build_model(mc, probe=probe, intensity_scale=7.0, probe_trainable=probe_trainable,
                        intensity_scale_trainable=scale_trainable)
    return ModelBundle(model=model, model_config=mc, training_config=tc if training else None,
                       intensity_scale=model.intensity_scale, probe=probe)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _cd_entry(data: bytes, name: str) -> int:
    """Offset of ``name``'s central-directory entry."""
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n_len, e_len, c_len = struct.unpack("<HHH", data[pos + 28 : pos + 34])
        if data[pos + 46 : pos + 46 + n_len].decode() == name:
            return pos
        pos = data.find(b"PK\x01\x02", pos + 46 + n_len + e_len + c_len)
    raise AssertionError(name)


def test_gridsize2_trainable_probe_round_trip(tmp_path: Path) -> None:
    bundle = _bundle(gridsize=2, probe_trainable=True, scale_trainable=False)
    with torch.no_grad():
        bundle.model.probe_ri.mul_(1.5)  # a "trained" probe differs from the input one
    path = save_archive(tmp_path, bundle)
    manifest = peek_archive(path)
    assert manifest["trainable"] == {"probe": True, "intensity_scale": False}
    assert manifest["gridsize"] == 2 and manifest["model_config"]["amp_activation"] == "swish"
    loaded = load_archive(path, device=torch.device("cpu"))
    assert loaded.model.probe_ri.requires_grad and not loaded.model.log_scale.requires_grad
    assert loaded.gridsize == 2 and loaded.model.C == 4
    np.testing.assert_array_equal(loaded.probe, bundle.model.probe.detach().numpy())
    # save_archive reports back what it stored: the model's probe, the legacy dict
    np.testing.assert_array_equal(bundle.probe, loaded.probe)
    assert bundle.legacy_params == loaded.legacy_params
    assert loaded.legacy_params["gridsize"] == 2
    assert loaded.legacy_params["probe.trainable"] is True
    x = torch.rand(1, 4, N, N)
    pos = torch.tensor([[[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]]])
    bundle.model.eval()
    with torch.no_grad():
        assert torch.equal(bundle.model.diffraction_to_obj(x, pos),
                           loaded.model.diffraction_to_obj(x, pos))


def test_without_training_config(tmp_path: Path) -> None:
    bundle = _bundle(training=False)
    loaded = load_archive(save_archive(tmp_path / "m.zip", bundle))
    assert loaded.training_config is None
    assert loaded.model_config == bundle.model_config
    assert loaded.legacy_params["N"] == N and loaded.legacy_params["amp_activation"] == "swish"
    assert "nepochs" not in loaded.legacy_params  # no training config, no training keys


def test_history_records_and_extra(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Report:
        epoch: int
        train_loss: float
        val_loss: float | None
        terms: dict[str, float]

    bundle = _bundle()
    bundle.history = [Report(1, np.float32(2.5), None, {"nll": 2.5}),  # type: ignore[list-item]
                      Report(2, float("nan"), 1.0, {})]  # type: ignore[list-item]
    bundle.extra = {"source": Path("/data/scan.npz"), "positions": np.int64(99), "ok": True}
    loaded = load_archive(save_archive(tmp_path, bundle))
    assert loaded.history == [
        {"epoch": 1, "train_loss": 2.5, "val_loss": None, "terms": {"nll": 2.5}},
        {"epoch": 2, "train_loss": None, "val_loss": 1.0, "terms": {}},  # NaN -> null
    ]
    assert loaded.extra == {"source": "/data/scan.npz", "positions": 99, "ok": True}


def test_wrapped_module_saved_unwrapped(tmp_path: Path) -> None:
    bundle = _bundle()
    plain_keys = sorted(bundle.model.state_dict())
    bundle.model = torch.nn.DataParallel(bundle.model)  # no GPU: a plain wrapper
    loaded = load_archive(save_archive(tmp_path, bundle))
    assert sorted(loaded.model.state_dict()) == plain_keys


def test_overwrite_and_resolution(tmp_path: Path) -> None:
    first = save_archive(tmp_path / "run", _bundle())
    second = save_archive(tmp_path / "run", _bundle(gridsize=2))
    assert first == second == tmp_path / "run" / ARCHIVE_NAME
    assert load_archive(tmp_path / "run").gridsize == 2
    assert resolve_archive_path(tmp_path / "run" / "wts.h5") == first
    with pytest.raises(FileNotFoundError, match="also checked"):
        resolve_archive_path(tmp_path / "run" / "other.h5")


def test_encrypted_flag_refused(tmp_path: Path) -> None:
    path = save_archive(tmp_path, _bundle())
    data = bytearray(path.read_bytes())
    pos = _cd_entry(bytes(data), "probe.npy")
    data[pos + 8] |= 0x01  # general purpose flag bit 0: encrypted
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted"):
        load_archive(path)


def test_compression_method_refused(tmp_path: Path) -> None:
    members = _members(save_archive(tmp_path / "a", _bundle()))
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            method = zipfile.ZIP_BZIP2 if name == "probe.npy" else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    with pytest.raises(ArchiveError, match="compression method 12"):
        load_archive(path)


def test_member_longer_than_declared_is_refused(tmp_path: Path) -> None:
    path = save_archive(tmp_path, _bundle())
    data = bytearray(path.read_bytes())
    pos = _cd_entry(bytes(data), "manifest.json")
    data[pos + 24 : pos + 28] = struct.pack("<I", 100)  # declare 100 bytes of a longer member
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrupt"):
        peek_archive(path)


def test_bool_is_not_an_int_in_the_manifest(tmp_path: Path) -> None:
    path = save_archive(tmp_path / "a", _bundle())
    members = _members(path)
    manifest = json.loads(members["manifest.json"])
    manifest["N"] = True  # bool is not an int here
    manifest["model_config"]["N"] = True
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "b.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ArchiveError, match="N=True"):
        load_archive(bad)


def test_bad_device_is_a_value_error(tmp_path: Path) -> None:
    path = save_archive(tmp_path, _bundle())
    with pytest.raises(ValueError, match="device='no-such-device'"):
        load_archive(path, device="no-such-device")


def test_file_mode_follows_umask_and_existing_file(tmp_path: Path) -> None:
    import os
    import stat

    path = save_archive(tmp_path, _bundle())
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    save_archive(tmp_path, _bundle())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.slow  # about 5 s: importing torch._dynamo, which torch.compile needs, is slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compiled_module_saved_unwrapped(tmp_path: Path) -> None:
    bundle = _bundle()
    plain_keys = sorted(bundle.model.state_dict())
    bundle.model = torch.compile(bundle.model)  # an OptimizedModule: keys get "_orig_mod."
    assert all(k.startswith("_orig_mod.") for k in bundle.model.state_dict())
    loaded = load_archive(save_archive(tmp_path, bundle))
    assert sorted(loaded.model.state_dict()) == plain_keys
