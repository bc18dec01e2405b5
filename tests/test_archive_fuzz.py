"""Fuzzing engine/archive: any corruption of a valid archive either loads back the very same
model or is refused with an ArchiveError (a ValueError) -- never another exception type."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.engine.archive import (
    ArchiveError,
    ModelBundle,
    load_archive,
    peek_archive,
    save_archive,
)
from ptychodus_pinn_torch.model import build_model

N = 64


@pytest.fixture(scope="module")
def archive_bytes(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[bytes, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    mc = spec.ModelConfig(N=N, n_filters_scale=1)
    probe = np.ones((N, N), np.complex64)
    model = build_model(mc, probe=probe, intensity_scale=3.0)
    bundle = ModelBundle(model=model, model_config=mc, intensity_scale=model.intensity_scale,
                         probe=probe, history=[{"epoch": 1, "loss": 0.5}])
    path = save_archive(tmp_path_factory.mktemp("fuzz") / "wts.h5.zip", bundle)
    return path.read_bytes(), model.state_dict()


def _layout(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges worth corrupting: each member's local header and first 2 kB
    (all of the deflated manifest and probe, the torch file's own zip headers), and the central
    directory with the end records. The bulk of the stored weights is left out: a flip there
    is always a CRC error."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        spans = [(info.header_offset, info.header_offset + 30 + len(info.filename)
                  + min(info.compress_size, 2048)) for info in zf.infolist()]
    spans.append((data.find(b"PK\x01\x02"), len(data)))
    return spans


def _check(path: Path, reference: dict[str, torch.Tensor]) -> None:
    try:
        loaded = load_archive(path)
    except ArchiveError as exc:
        assert "\n" not in str(exc)
        return
    state = loaded.model.state_dict()
    assert sorted(state) == sorted(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_single_byte_corruption(archive_bytes: tuple[bytes, dict[str, torch.Tensor]],
                                tmp_path: Path, data: st.DataObject) -> None:
    raw, reference = archive_bytes
    spans = _layout(raw)
    start, end = data.draw(st.sampled_from(spans))
    pos = data.draw(st.integers(min_value=max(start, 0), max_value=min(end, len(raw)) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255))
    mutated = bytearray(raw)
    mutated[pos] = value
    path = tmp_path / "m.zip"
    path.write_bytes(bytes(mutated))
    _check(path, reference)
    try:
        peek_archive(path)
    except ArchiveError:
        pass


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10**9), keep_tail=st.booleans())
def test_truncation(archive_bytes: tuple[bytes, dict[str, torch.Tensor]], tmp_path: Path,
                    cut: int, keep_tail: bool) -> None:
    raw, reference = archive_bytes
    cut = cut % len(raw)
    path = tmp_path / "t.zip"
    path.write_bytes(raw[cut:] if keep_tail else raw[:cut])
    _check(path, reference)
