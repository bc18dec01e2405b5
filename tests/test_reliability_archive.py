"""Reliability of model loading under hostile archives: manifests that promise huge models,
non-finite weights, probes that do not match their manifest (ARCH-120..122).

Each test generates the hostile archive from a valid small one and asserts the refusal: one
ArchiveError line naming the cause, before the model is built; the two manifest bombs are also run
through ``pinn-torch reconstruct`` in a child process whose peak RSS is asserted < 500 MB.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from peak_rss import run_cli_peak_rss

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.archive import (
    MANIFEST_MEMBER,
    PROBE_MEMBER,
    WEIGHTS_MEMBER,
    ArchiveError,
    ModelBundle,
    load_archive,
    save_archive,
)
from ptychodus_pinn_torch.model import build_model

N = 64
RSS_LIMIT_BYTES = 500 * 2**20


def _probe(n: int = N) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - n / 2
    return np.exp(-(xx**2 + yy**2) / (2 * (n / 8) ** 2)).astype(np.complex64)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid N=64, n_filters_scale=1 archive."""
    torch.manual_seed(0)
    mc = spec.ModelConfig(N=N, n_filters_scale=1)
    model = build_model(mc, probe=_probe(), intensity_scale=10.0)
    bundle = ModelBundle(model=model, model_config=mc, intensity_scale=model.intensity_scale,
                         probe=_probe())
    return save_archive(tmp_path_factory.mktemp("good") / "wts.h5.zip", bundle)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _edited(good: Path, out: Path, edit: Callable[[dict[str, Any]], None],
            members: dict[str, bytes] | None = None) -> Path:
    """``good`` with its manifest edited and the digests re-signed (what an attacker can do)."""
    members = dict(members or _members(good))
    manifest = json.loads(members[MANIFEST_MEMBER])
    edit(manifest)
    manifest["weights"]["sha256"] = hashlib.sha256(members[WEIGHTS_MEMBER]).hexdigest()
    manifest["probe"]["sha256"] = hashlib.sha256(members[PROBE_MEMBER]).hexdigest()
    manifest["weights"]["size"] = len(members[WEIGHTS_MEMBER])
    manifest["probe"]["size"] = len(members[PROBE_MEMBER])
    members[MANIFEST_MEMBER] = json.dumps(manifest).encode()
    return _write(out, members)


def _bomb(n: int, n_filters_scale: int) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        m["N"] = n
        m["model_config"]["N"] = n
        m["model_config"]["n_filters_scale"] = n_filters_scale
        m["probe"]["shape"] = [n, n]
    return edit


@pytest.mark.parametrize(
    ("n", "nfs", "expected"),
    [
        (256, 64, "MiB limit"),  # 53 GB of weights promised
        (256, 100000, "MiB limit"),  # 138 PB
        (64, 3, "rebuilt from the manifest expects"),  # plausible, just not these weights
    ],
)
def test_manifest_bomb_refused_before_building(
    good: Path, tmp_path: Path, n: int, nfs: int, expected: str
) -> None:
    path = _edited(good, tmp_path / "bomb.zip", _bomb(n, nfs))
    with pytest.raises(ArchiveError) as info:
        load_archive(path)
    text = str(info.value)
    assert "\n" not in text
    assert expected in text
    assert f"n_filters_scale={nfs}" in text or "generator." in text


def test_probe_member_smaller_than_manifest_shape(good: Path, tmp_path: Path) -> None:
    """N=128 with n_filters_scale kept: the weights would fit (fully convolutional), the probe
    member (a 64 x 64 array) cannot be an (128, 128) one."""
    path = _edited(good, tmp_path / "probe.zip", _bomb(128, 1))
    with pytest.raises(ArchiveError, match=r"'probe.npy' declares \d+ bytes.*\(128, 128\)"):
        load_archive(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_refused(good: Path, tmp_path: Path, bad: float) -> None:
    bundle = load_archive(good)
    with torch.no_grad():
        first = next(p for name, p in bundle.model.named_parameters() if p.ndim == 4)
        first.view(-1)[:3] = bad
    path = save_archive(tmp_path / "nan.zip", bundle)
    with pytest.raises(ArchiveError, match=r"NaN or Inf values in 1 tensors .*\(3 of \d+\)"):
        load_archive(path)


def _scan(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    m = 16
    xs = rng.uniform(40, 80, m)
    ys = rng.uniform(40, 80, m)
    diff = rng.uniform(0.1, 1.0, (m, N, N)).astype(np.float32)
    path = tmp_path / "scan.npz"
    RawData(xs, ys, None, None, diff, _probe(), None).to_file(path)
    return path


@pytest.mark.parametrize("nfs", [64, 100000])
def test_manifest_bomb_cli_one_line_and_bounded_memory(
    good: Path, tmp_path: Path, nfs: int
) -> None:
    """The issue's archive bombs (N=256 with n_filters_scale 64 or 100000) through the CLI:
    exit 2, one stderr line, peak RSS of the child < 500 MB."""
    path = _edited(good, tmp_path / "wts.h5.zip", _bomb(256, nfs))
    rc, lines, peak = run_cli_peak_rss(
        ["reconstruct", "--model", str(path), "--data", str(_scan(tmp_path)), "--out",
         str(tmp_path / "out.npz")])
    assert rc == 2 and len(lines) == 1, lines
    assert f"n_filters_scale={nfs}" in lines[0]
    assert peak < RSS_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert not (tmp_path / "out.npz").exists()
