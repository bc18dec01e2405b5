"""Conformance tests of the model archive ``wts.h5.zip`` (specs/ARCH.md).

Hostile archives are built byte by byte here (zip-slip names, forged sizes, zip bombs, pickled
payloads); none of this file ever unpickles anything.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import io
import json
import math
import os
import pickletools
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.legacy import dataclass_to_legacy_dict
from ptychodus_pinn_torch.engine import archive
from ptychodus_pinn_torch.engine.archive import (
    ARCHIVE_NAME,
    ArchiveError,
    ForeignArchiveError,
    ModelBundle,
    load_archive,
    peek_archive,
    save_archive,
)
from ptychodus_pinn_torch.model import build_model

N = 64
MANIFEST = "manifest.json"
PROBE = "probe.npy"
WEIGHTS = "diffraction_to_obj/model.pt"

# --------------------------------------------------------------------------------------------
# helpers


def _probe(n: int = N, seed: int = 0) -> np.ndarray:
    """(n, n) complex64 Gaussian-ish probe with random phase."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] - n / 2
    amp = np.exp(-(xx**2 + yy**2) / (2 * (n / 8) ** 2))
    return (amp * np.exp(1j * rng.uniform(-1, 1, (n, n)))).astype(np.complex64)


def make_bundle(gridsize: int = 1, *, probe_trainable: bool = False) -> ModelBundle:
    """A small real bundle: N=64, n_filters_scale=1 PtychoPINN with random (Glorot) weights,
    a trained-looking log_scale and a two-epoch history."""
    torch.manual_seed(0)
    mc = spec.ModelConfig(N=N, gridsize=gridsize, n_filters_scale=1)
    tc = spec.TrainingConfig(
        model=mc, nepochs=2, nphotons=1e6, train_data_file=Path("data/train.npz"),
        probe_trainable=probe_trainable,
    )
    model = build_model(mc, probe=_probe(), intensity_scale=15.625, probe_trainable=probe_trainable)
    with torch.no_grad():
        model.log_scale.add_(0.125)  # as if training moved it
    return ModelBundle(
        model=model,
        model_config=mc,
        training_config=tc,
        intensity_scale=model.intensity_scale,
        probe=_probe(),
        history=[
            {"epoch": 1, "train_loss": 2.5, "val_loss": 2.75},
            {"epoch": 2, "train_loss": 1.5, "val_loss": None},
        ],
        extra={"train_data": "data/train.npz", "n_positions": 100},
    )


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelBundle]:
    """A valid archive written by save_archive and the bundle it holds."""
    bundle = make_bundle()
    path = save_archive(tmp_path_factory.mktemp("good"), bundle)
    return path, bundle


def read_members(path: Path) -> dict[str, bytes]:
    """All members of one of OUR (trusted) archives, in order."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(
    path: Path, members: dict[str, bytes] | list[tuple[str, bytes]],
    compress: int = zipfile.ZIP_STORED,
) -> Path:
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression=compress) as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": on purpose
        for name, data in items:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compress)
    return path


def manifest_of(members: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(members[MANIFEST])


def with_manifest(members: dict[str, bytes], edit: Callable[[dict[str, Any]], None]
                  ) -> dict[str, bytes]:
    out = dict(members)
    manifest = manifest_of(members)
    edit(manifest)
    out[MANIFEST] = json.dumps(manifest).encode()
    return out


def resign(members: dict[str, bytes]) -> dict[str, bytes]:
    """Make the manifest's sha256 entries match the members (what an attacker can do)."""
    def edit(m: dict[str, Any]) -> None:
        m["weights"]["sha256"] = hashlib.sha256(members[WEIGHTS]).hexdigest()
        m["probe"]["sha256"] = hashlib.sha256(members[PROBE]).hexdigest()

    return with_manifest(members, edit)


def patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Forge the uncompressed size that the central directory declares for ``name``."""
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02")
    while pos >= 0:
        name_len, extra_len, comment_len = struct.unpack("<HHH", buf[pos + 28 : pos + 34])
        if bytes(buf[pos + 46 : pos + 46 + name_len]).decode() == name:
            buf[pos + 24 : pos + 28] = struct.pack("<I", size)
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 46 + name_len + extra_len + comment_len)
    raise AssertionError(f"{name} not in the central directory")


def refused(path: Path, *words: str, cls: type[Exception] = ArchiveError,
            loader: Callable[[Path], Any] = load_archive) -> str:
    """Load ``path``, expect ``cls`` with a one-line message containing every word."""
    with pytest.raises(cls) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return message


class _OpenFilePayload:
    """Pickles to a call of ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def hostile_weights(marker: Path, *, legacy: bool = False) -> bytes:
    """A torch.save file whose unpickling would create ``marker``."""
    buf = io.BytesIO()
    torch.save({"generator.weight": _OpenFilePayload(marker)}, buf,
               _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def pickle_ops(torch_file: bytes) -> list[tuple[str, Any]]:
    """The pickle opcodes of a torch.save file, read statically (pickletools, nothing runs)."""
    if torch_file[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(torch_file)) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            torch_file = zf.read(name)
    fh = io.BytesIO(torch_file)
    ops: list[tuple[str, Any]] = []
    while fh.tell() < len(torch_file):  # the legacy format is several pickles in a row
        ops += [(op.name, arg) for op, arg, _ in pickletools.genops(fh)]
    return ops


def assert_calls_open(torch_file: bytes) -> None:
    """The payload really is hostile: it imports ``open`` and REDUCEs (calls) it."""
    ops = pickle_ops(torch_file)
    names = [op for op, _ in ops]
    args = [str(a) for _, a in ops]
    assert "REDUCE" in names
    assert any("open" in a for a in args), args


# --------------------------------------------------------------------------------------------
# ARCH-001 .. ARCH-003: layout, manifest, round trip


@pytest.mark.spec("ARCH-001")
def test_layout_and_location(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    path, _ = good
    assert path.name == ARCHIVE_NAME
    assert zipfile.is_zipfile(path)
    members = read_members(path)
    assert sorted(members) == sorted([MANIFEST, PROBE, WEIGHTS])
    manifest = manifest_of(members)
    assert manifest["backend"] == "pytorch"
    assert manifest["format_version"] == 1
    assert manifest["models"] == ["autoencoder", "diffraction_to_obj"]
    assert manifest["model_members"] == {"autoencoder": WEIGHTS, "diffraction_to_obj": WEIGHTS}
    # a folder (existing or a new name without suffix) gets wts.h5.zip; a .zip name is kept
    assert save_archive(tmp_path / "out", make_bundle()) == tmp_path / "out" / ARCHIVE_NAME
    assert save_archive(tmp_path / "m.zip", make_bundle()) == tmp_path / "m.zip"
    assert (tmp_path / "m.zip").is_file()


@pytest.mark.spec("ARCH-002")
def test_manifest_content(good: tuple[Path, ModelBundle]) -> None:
    path, bundle = good
    members = read_members(path)
    m = manifest_of(members)
    assert m["N"] == N and m["gridsize"] == 1
    assert m["model_config"] == json.loads(json.dumps(dataclasses.asdict(bundle.model_config)))
    assert m["training_config"]["model"] == m["model_config"]
    assert m["training_config"]["train_data_file"] == "data/train.npz"
    # HEAD semantics: exp(trained log_scale), computed here independently of the archive
    expected_scale = math.exp(float(bundle.model.log_scale.detach().double()))
    assert m["intensity_scale"] == pytest.approx(expected_scale, rel=1e-6)  # float32 exp
    assert m["intensity_scale"] == pytest.approx(15.625 * math.exp(0.125), rel=1e-6)
    legacy = dict(dataclass_to_legacy_dict(bundle.training_config))
    for key, value in legacy.items():
        if key == "backend":
            continue
        expected = str(value) if isinstance(value, Path) else value
        assert m["legacy_params"][key] == expected, key
    assert m["legacy_params"]["intensity_scale"] == m["intensity_scale"]
    assert m["legacy_params"]["backend"] == "pytorch"
    assert m["legacy_params"]["N"] == N and m["legacy_params"]["object.big"] is True
    assert m["weights"]["sha256"] == hashlib.sha256(members[WEIGHTS]).hexdigest()
    assert m["probe"]["sha256"] == hashlib.sha256(members[PROBE]).hexdigest()
    assert m["probe"]["shape"] == [N, N] and m["probe"]["dtype"] == "complex64"
    assert m["history"] == bundle.history
    assert m["extra"] == bundle.extra
    # the probe member is a plain .npy holding the model's normalized probe
    probe = np.load(io.BytesIO(members[PROBE]), allow_pickle=False)
    assert probe.dtype == np.complex64 and probe.shape == (N, N)
    np.testing.assert_array_equal(probe, bundle.model.probe.detach().numpy())


@pytest.mark.spec("ARCH-003")
def test_round_trip(good: tuple[Path, ModelBundle]) -> None:
    path, bundle = good
    loaded = load_archive(path)
    before, after = bundle.model.state_dict(), loaded.model.state_dict()
    assert sorted(before) == sorted(after)
    for key in before:
        assert before[key].dtype == after[key].dtype, key
        assert torch.equal(before[key], after[key]), key
    assert loaded.model_config == bundle.model_config
    assert loaded.training_config == bundle.training_config
    assert loaded.intensity_scale == pytest.approx(bundle.intensity_scale, rel=1e-12)
    assert loaded.intensity_scale == pytest.approx(loaded.model.intensity_scale, rel=1e-6)
    assert loaded.probe.dtype == np.complex64 and loaded.probe.shape == (N, N)
    np.testing.assert_array_equal(loaded.probe, bundle.model.probe.detach().numpy())
    assert loaded.history == bundle.history and loaded.extra == bundle.extra
    assert loaded.N == N and loaded.gridsize == 1
    assert loaded.legacy_params["intensity_scale"] == loaded.intensity_scale
    assert not loaded.model.training
    # the same function: identical outputs on a random input
    x = torch.rand(2, 1, N, N, generator=torch.Generator().manual_seed(1))
    pos = torch.zeros(2, 1, 2)
    bundle.model.eval()
    with torch.no_grad():
        a = bundle.model.diffraction_to_obj(x, pos)
        b = loaded.model.diffraction_to_obj(x, pos)
        fa, fb = bundle.model(x, pos), loaded.model(x, pos)
    assert torch.equal(a, b)
    assert torch.equal(fa.pred_amp, fb.pred_amp)


# --------------------------------------------------------------------------------------------
# ARCH-004: atomic write


@pytest.mark.spec("ARCH-004")
def test_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replaced: list[tuple[Path, Path]] = []
    synced: list[int] = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_replace(src: Any, dst: Any) -> None:
        replaced.append((Path(src), Path(dst)))
        assert not Path(dst).exists() or Path(dst).read_bytes() == first_bytes
        real_replace(src, dst)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    target = save_archive(tmp_path, make_bundle())
    first_bytes = target.read_bytes()
    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    save_archive(tmp_path, make_bundle())
    assert len(replaced) == 1
    src, dst = replaced[0]
    assert dst == target and src.parent == target.parent and src != dst
    assert synced, "the temporary file was not fsynced"
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_NAME]

    # a failure before the final rename leaves the previous archive intact and no temp file
    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    previous = target.read_bytes()  # the second save's archive (its created_utc may differ)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_archive(tmp_path, make_bundle(gridsize=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_NAME]
    assert target.read_bytes() == previous
    monkeypatch.undo()
    assert load_archive(target).gridsize == 1


# --------------------------------------------------------------------------------------------
# ARCH-005: where an archive is looked for


@pytest.mark.spec("ARCH-005")
def test_path_resolution(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    path, _ = good
    assert load_archive(path.parent).N == N  # the folder holding wts.h5.zip
    assert load_archive(path.parent / "wts.h5").N == N  # '.zip' added, as upstream
    assert peek_archive(path)["N"] == N
    with pytest.raises(FileNotFoundError, match="wts.h5.zip"):
        load_archive(tmp_path)  # a folder without wts.h5.zip (upstream D2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_archive(tmp_path / "nothing.zip")  # upstream D4 / D7
    with pytest.raises(FileNotFoundError):
        peek_archive(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# ARCH-006: nothing is ever unpickled


@pytest.mark.spec("ARCH-006")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip-format", "legacy-format"])
def test_hostile_pickle_weights_never_run(
    good: tuple[Path, ModelBundle], tmp_path: Path, legacy: bool
) -> None:
    marker = tmp_path / "PWNED"
    payload = hostile_weights(marker, legacy=legacy)
    assert_calls_open(payload)  # unpickling it WOULD create the marker
    members = dict(read_members(good[0]))
    members[WEIGHTS] = payload
    hostile = write_zip(tmp_path / ARCHIVE_NAME, resign(members))  # digests match: torch.load runs
    # the zip format reaches torch.load(weights_only=True), which refuses the global; the
    # legacy stream format is refused before torch sees it
    words = ("weights_only=True", "unsupported global") if not legacy else ("zip serialization",)
    message = refused(hostile, "refused", *words)
    assert "weights_only=False" not in message  # never advise the unsafe way
    assert not marker.exists()


@pytest.mark.spec("ARCH-006")
def test_object_npy_probe_never_unpickled(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    body = hostile_weights(marker, legacy=True)
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body
    members = dict(read_members(good[0]))
    members[PROBE] = npy
    hostile = write_zip(tmp_path / ARCHIVE_NAME, resign(members))
    refused(hostile, PROBE, "npy")
    assert not marker.exists()


@pytest.mark.spec("ARCH-006")
def test_source_never_unpickles() -> None:
    """Static check of the engine/archive package: no pickle-family import, every torch.load has
    weights_only=True and every np.load allow_pickle=False."""
    folder = Path(inspect.getfile(archive)).parent
    sources = sorted(folder.glob("*.py"))
    assert {p.stem for p in sources} >= {"format", "load", "manifest", "safezip", "save"}
    tree = ast.Module(
        body=[node for p in sources for node in ast.parse(p.read_text()).body], type_ignores=[]
    )
    banned = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "_pickle"}
    torch_loads = np_loads = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & banned
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in banned
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else ""
            kwargs = {k.arg: k.value for k in node.keywords}
            if node.func.attr == "load" and owner_name == "torch":
                torch_loads += 1
                assert isinstance(kwargs.get("weights_only"), ast.Constant)
                assert kwargs["weights_only"].value is True
            if node.func.attr == "load" and owner_name == "np":
                np_loads += 1
                assert isinstance(kwargs.get("allow_pickle"), ast.Constant)
                assert kwargs["allow_pickle"].value is False
            assert node.func.attr not in {"loads", "Unpickler"} or owner_name == "json"
    assert torch_loads == 1 and np_loads == 1


# --------------------------------------------------------------------------------------------
# ARCH-007: archives of the other backends


@pytest.mark.spec("ARCH-007")
@pytest.mark.parametrize(
    "names",
    [
        ["manifest.dill", "autoencoder/model.keras", "autoencoder/model.h5",
         "autoencoder/custom_objects.dill", "autoencoder/params.dill",
         "diffraction_to_obj/model.keras", "diffraction_to_obj/model.h5",
         "diffraction_to_obj/custom_objects.dill", "diffraction_to_obj/params.dill"],
        ["manifest.dill"],
        ["diffraction_to_obj/model.keras"],
    ],
    ids=["full-tf-archive", "manifest.dill-only", "model.keras-only"],
)
def test_tensorflow_archive_refused(tmp_path: Path, names: list[str]) -> None:
    marker = tmp_path / "PWNED"
    payload = hostile_weights(marker, legacy=True)  # every dill member would run code
    path = write_zip(tmp_path / ARCHIVE_NAME, [(n, payload) for n in names])
    for loader in (load_archive, peek_archive):
        message = refused(path, "TensorFlow", "PyTorch", cls=ForeignArchiveError, loader=loader)
        assert "ptycho" in message and "ptychodus-pinn-torch" in message
    assert not marker.exists()


@pytest.mark.spec("ARCH-007")
def test_upstream_pickled_torch_bundle_refused(tmp_path: Path) -> None:
    names = ["manifest.dill", "autoencoder/model.pth", "autoencoder/params.dill",
             "diffraction_to_obj/model.pth", "diffraction_to_obj/params.dill"]
    path = write_zip(tmp_path / ARCHIVE_NAME, [(n, b"\x80\x04N.") for n in names])
    refused(path, "ptycho_torch", "never unpickles", cls=ForeignArchiveError)


@pytest.mark.spec("ARCH-007")
def test_torch_checkpoint_and_npz_recognized(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(hostile_weights(marker))  # a torch zip: last/data.pkl, last/data/0, ...
    refused(ckpt, "torch checkpoint", "never unpickles", cls=ForeignArchiveError)
    npz = tmp_path / "train.npz"
    np.savez(npz, **{f"a{i}": np.zeros(2) for i in range(20)})  # 20 arrays: > 16 members
    refused(npz, ".npz", "not a model archive")
    assert not marker.exists()


@pytest.mark.spec("ARCH-007")
def test_manifest_backend_tensorflow_refused(good: tuple[Path, ModelBundle],
                                             tmp_path: Path) -> None:
    members = with_manifest(read_members(good[0]), lambda m: m.update(backend="tensorflow"))
    path = write_zip(tmp_path / ARCHIVE_NAME, members)
    refused(path, "tensorflow", "PyTorch", cls=ForeignArchiveError)


# --------------------------------------------------------------------------------------------
# ARCH-008: not a zip, corrupt zips


@pytest.mark.spec("ARCH-008")
@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am not a zip", bytes(np.random.default_rng(0).integers(0, 256, 4096,
                                                                           dtype=np.uint8)),
     b"\x89HDF\r\n\x1a\n" + bytes(100)],
    ids=["empty", "text", "random", "hdf5"],
)
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / ARCHIVE_NAME
    path.write_bytes(content)
    refused(path, "not a zip")
    refused(path, "not a zip", loader=peek_archive)


@pytest.mark.spec("ARCH-008")
def test_truncated_and_bitflipped(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    data = good[0].read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    refused(truncated, "zip")
    # flip one byte inside the stored weights: the zip CRC no longer matches
    members = read_members(good[0])
    start = data.find(members[WEIGHTS][:64])
    assert start > 0
    flipped = bytearray(data)
    flipped[start + len(members[WEIGHTS]) // 2] ^= 0xFF
    bad = tmp_path / "flipped.zip"
    bad.write_bytes(bytes(flipped))
    refused(bad, "corrupt")


# --------------------------------------------------------------------------------------------
# ARCH-009: zip-slip names


@pytest.mark.spec("ARCH-009")
@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil", "a/../../evil", "C:/evil", "dir\\..\\evil",
             "diffraction_to_obj/../../../evil"],
)
def test_escaping_member_names(good: tuple[Path, ModelBundle], tmp_path: Path,
                               name: str) -> None:
    members = list(read_members(good[0]).items()) + [(name, b"x")]
    path = write_zip(tmp_path / ARCHIVE_NAME, members)
    refused(path, "escapes", "hostile")
    refused(path, "escapes", loader=peek_archive)
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil").exists()


# --------------------------------------------------------------------------------------------
# ARCH-010: member count, duplicates, unknown members


@pytest.mark.spec("ARCH-010")
def test_too_many_members(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    members = list(read_members(good[0]).items())
    members += [(f"junk/{i}", b"") for i in range(archive.MAX_MEMBERS)]
    path = write_zip(tmp_path / ARCHIVE_NAME, members)
    refused(path, f"{len(members)} members", str(archive.MAX_MEMBERS))
    # far too many: refused from the end record, before zipfile parses a single entry
    many = tmp_path / "many.zip"
    write_zip(many, [(f"j{i}", b"") for i in range(archive.MAX_ENTRIES_PARSED + 1)])
    refused(many, f"{archive.MAX_ENTRIES_PARSED + 1} members", "unread")


@pytest.mark.spec("ARCH-010")
def test_duplicate_and_unknown_members(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    members = list(read_members(good[0]).items())
    dup = write_zip(tmp_path / "dup.zip", members + [(MANIFEST, members[0][1])])
    refused(dup, "twice")
    extra = write_zip(tmp_path / "extra.zip", members + [("notes.txt", b"hi")])
    refused(extra, "unexpected", "notes.txt")
    no_manifest = write_zip(tmp_path / "nomani.zip", [m for m in members if m[0] != MANIFEST])
    refused(no_manifest, "no manifest.json")


# --------------------------------------------------------------------------------------------
# ARCH-011: zip bombs and absurd sizes, refused before decompressing


@pytest.mark.spec("ARCH-011")
def test_declared_size_above_limit(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    forged = patch_declared_size(good[0].read_bytes(), WEIGHTS, 3 << 30)  # 3 GiB
    path = tmp_path / ARCHIVE_NAME
    path.write_bytes(forged)
    refused(path, "declares", str(3 << 30), "limit")


@pytest.mark.spec("ARCH-011")
def test_compression_ratio_bomb_checked_before_reading(
    good: tuple[Path, ModelBundle], tmp_path: Path
) -> None:
    members = read_members(good[0])
    # valid JSON padded with 4 MiB of whitespace: deflates about 1000:1
    members = dict(members)
    members[MANIFEST] = members[MANIFEST] + b" " * (4 << 20)
    path = write_zip(tmp_path / ARCHIVE_NAME, members, compress=zipfile.ZIP_DEFLATED)
    info = zipfile.ZipFile(path).getinfo(MANIFEST)
    assert info.file_size / info.compress_size > archive.MAX_COMPRESSION_RATIO
    # break the deflate stream: had the member been inflated, the error would say "corrupt"
    data = bytearray(path.read_bytes())
    offset = info.header_offset + 30 + len(MANIFEST.encode()) + info.compress_size // 2
    data[offset : offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    message = refused(path, "zip bomb", "compression ratio")
    assert "corrupt" not in message
    refused(path, "zip bomb", loader=peek_archive)


@pytest.mark.spec("ARCH-011")
def test_inner_torch_records_checked(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    """torch.save writes stored records; a deflated record (an inner zip bomb) or records
    declaring more bytes than the file holds are refused before torch.load."""
    members = dict(read_members(good[0]))
    inner = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(members[WEIGHTS])) as src, \
            zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    members[WEIGHTS] = inner.getvalue()
    path = write_zip(tmp_path / ARCHIVE_NAME, resign(members))
    refused(path, "compressed", "hostile")
    members = dict(read_members(good[0]))
    members[WEIGHTS] = patch_declared_size(members[WEIGHTS], "archive/data.pkl", 1 << 31)
    path = write_zip(tmp_path / ARCHIVE_NAME, resign(members))
    refused(path, "declare", "hostile")


# --------------------------------------------------------------------------------------------
# ARCH-012: the manifest


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.pop(key)


@pytest.mark.spec("ARCH-012")
@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_drop("backend"), ["backend"]),
        (lambda m: m.update(backend="jax"), ["backend", "jax"]),
        (lambda m: m.update(format_version=2), ["format_version", "2", "upgrade"]),
        (lambda m: m.update(format_version="1"), ["format_version"]),
        (lambda m: m.update(models=["autoencoder"]), ["diffraction_to_obj"]),
        (lambda m: m["model_config"].pop("N"), ["N", "gridsize", "model_config"]),
        (lambda m: m["model_config"].pop("gridsize"), ["gridsize", "model_config"]),
        (lambda m: m.update(intensity_scale=-1.0), ["intensity_scale"]),
        (_drop("weights"), ["weights"]),
        (lambda m: m["weights"].update(sha256="abc"), ["sha256"]),
        (lambda m: m["weights"].update(member="../x"), ["member"]),
        (lambda m: m["model_config"].update(fancy=1), ["unknown", "fancy"]),
        (lambda m: m["model_config"].update(N=100), ["N", "100"]),
        (lambda m: m["training_config"]["model"].update(n_filters_scale=2),
         ["training_config.model", "model_config"]),
    ],
    ids=["no-backend", "backend-jax", "version-2", "version-str", "no-d2o", "no-N",
         "no-gridsize", "scale", "no-weights", "bad-sha", "member-path", "unknown-field", "N100",
         "nested-model"],
)
def test_invalid_manifest(good: tuple[Path, ModelBundle], tmp_path: Path,
                          edit: Callable[[dict[str, Any]], None], words: list[str]) -> None:
    path = write_zip(tmp_path / ARCHIVE_NAME, with_manifest(read_members(good[0]), edit))
    refused(path, "manifest", *words)


@pytest.mark.spec("ARCH-012")
@pytest.mark.parametrize(
    "text", [b"{not json", b"[1, 2]", b'{"backend": "pytorch", "x": NaN}', b"\xff\xfe{}",
             b"[" * 100000 + b"]" * 100000],
    ids=["syntax", "array", "nan", "not-utf8", "deep"],
)
def test_unparsable_manifest(good: tuple[Path, ModelBundle], tmp_path: Path,
                             text: bytes) -> None:
    members = dict(read_members(good[0]))
    members[MANIFEST] = text
    path = write_zip(tmp_path / ARCHIVE_NAME, members)
    refused(path, "manifest.json")


# --------------------------------------------------------------------------------------------
# ARCH-013: integrity


@pytest.mark.spec("ARCH-013")
@pytest.mark.parametrize("member", [WEIGHTS, PROBE])
def test_sha256_mismatch(good: tuple[Path, ModelBundle], tmp_path: Path, member: str) -> None:
    members = dict(read_members(good[0]))
    data = bytearray(members[member])
    data[-8] ^= 0x01  # one bit of the last tensor / probe value
    members[member] = bytes(data)
    path = write_zip(tmp_path / ARCHIVE_NAME, members)  # valid zip CRCs, stale manifest digest
    refused(path, "sha256", member)
    assert peek_archive(path)["N"] == N  # the manifest alone is still fine


# --------------------------------------------------------------------------------------------
# ARCH-014: the weights must fit the rebuilt model


def _state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.mark.spec("ARCH-014")
@pytest.mark.parametrize("change", ["missing", "unexpected", "shape", "dtype", "config", "probe",
                                    "scale"])
def test_weights_must_fit(good: tuple[Path, ModelBundle], tmp_path: Path, change: str) -> None:
    path, bundle = good
    state = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    members = dict(read_members(path))
    key = next(k for k in state if k.endswith("weight"))
    if change == "missing":
        del state[key]
    elif change == "unexpected":
        state["extra.weight"] = torch.zeros(3)
    elif change == "shape":
        state[key] = torch.zeros(2, 2)
    elif change == "dtype":
        state[key] = state[key].double()
    if change == "probe":  # a valid probe.npy that is not the probe in the weights
        buf = io.BytesIO()
        np.save(buf, 2 * bundle.model.probe.detach().numpy(), allow_pickle=False)
        members[PROBE] = buf.getvalue()
        word = "differs from the probe held in the weights"
    elif change == "scale":  # the manifest's scale is not exp(log_scale) of the weights
        members = with_manifest(members, lambda m: m.update(intensity_scale=2 * m[
            "intensity_scale"]))
        word = "exp(log_scale)"
    elif change == "config":  # weights of n_filters_scale=1 declared as n_filters_scale=2
        members = with_manifest(members, lambda m: m["model_config"].update(n_filters_scale=2))
        members = with_manifest(
            members, lambda m: m["training_config"]["model"].update(n_filters_scale=2))
        word = "rebuilt from the manifest"
    else:
        members[WEIGHTS] = _state_bytes(state)
        word = "extra.weight" if change == "unexpected" else key
    path = write_zip(tmp_path / ARCHIVE_NAME, resign(members))
    refused(path, word)


@pytest.mark.spec("ARCH-010")
def test_central_directory_and_zip64_records(good: tuple[Path, ModelBundle],
                                             tmp_path: Path) -> None:
    members = read_members(good[0])
    big = tmp_path / "bigcd.zip"
    with zipfile.ZipFile(big, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.comment = b"c" * 65535  # entry comments of 64 kB each
            zf.writestr(info, data)
        for i in range(14):
            info = zipfile.ZipInfo(f"pad{i}")
            info.comment = b"c" * 65535  # 17 x 64 kB: a directory above 1 MiB
            zf.writestr(info, b"")
    refused(big, "central directory")
    data = bytearray(good[0].read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = b"\xff\xff\xff\xff"  # entry counts 0xFFFF: the zip64 marker
    forged = tmp_path / "zip64.zip"
    forged.write_bytes(bytes(data))
    refused(forged, "zip64")
    data = bytearray(good[0].read_bytes())
    data[eocd - 20 : eocd - 16] = b"PK\x06\x07"  # a zip64 end-record locator
    forged.write_bytes(bytes(data))
    refused(forged, "zip64")


# --------------------------------------------------------------------------------------------
# ARCH-015: one clear sentence


@pytest.mark.spec("ARCH-015")
def test_refusals_are_one_line_value_errors(good: tuple[Path, ModelBundle],
                                            tmp_path: Path) -> None:
    members = read_members(good[0])
    cases: dict[str, Path] = {
        "not-zip": tmp_path / "a.zip",
        "slip": write_zip(tmp_path / "b.zip", list(members.items()) + [("../x", b"")]),
        "tf": write_zip(tmp_path / "c.zip", {"manifest.dill": b"x"}),
        "manifest": write_zip(tmp_path / "d.zip", with_manifest(members, _drop("models"))),
        "sha": write_zip(tmp_path / "e.zip", {**members, PROBE: members[PROBE][:-1] + b"\0"}),
    }
    cases["not-zip"].write_bytes(b"nope")
    for name, path in cases.items():
        for loader in (load_archive, peek_archive):
            if name == "sha" and loader is peek_archive:
                continue
            with pytest.raises(ValueError) as info:
                loader(path)
            assert isinstance(info.value, ArchiveError), name
            message = str(info.value)
            assert "\n" not in message and str(path) in message, (name, message)
            assert 40 < len(message) < 600, (name, message)
    with pytest.raises(FileNotFoundError) as missing:
        load_archive(tmp_path / "nowhere" / ARCHIVE_NAME)
    assert "\n" not in str(missing.value) and "nowhere" in str(missing.value)


# --------------------------------------------------------------------------------------------
# ARCH-016: saving refuses what could not be loaded back


@pytest.mark.spec("ARCH-016")
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("suffix", ["model.npz", ".zip"]),
        ("scale-mismatch", ["intensity_scale", "log_scale"]),
        ("scale-nan", ["intensity_scale", "finite"]),
        ("config-mismatch", ["model_config", "model.config"]),
        ("training-mismatch", ["training_config.model"]),
        ("extra-set", ["bundle.extra", "set"]),
        ("history-object", ["bundle.history[1]"]),
        ("legacy-object", ["bundle.legacy_params", "object"]),
        ("invalid-training", ["bundle.training_config", "batch_size"]),
    ],
)
def test_save_refusals(tmp_path: Path, change: str, words: list[str]) -> None:
    bundle = make_bundle()
    target: Path = tmp_path / "out"
    if change == "suffix":
        target = tmp_path / "model.npz"
    elif change == "scale-mismatch":
        bundle.intensity_scale *= 1.01
    elif change == "scale-nan":
        bundle.intensity_scale = float("nan")
    elif change == "config-mismatch":
        bundle.model_config = spec.ModelConfig(N=N, gridsize=1, n_filters_scale=2)
    elif change == "training-mismatch":
        bundle.training_config = spec.TrainingConfig(model=spec.ModelConfig(N=128))
    elif change == "extra-set":
        bundle.extra = {"tags": {"a", "b"}}
    elif change == "history-object":
        bundle.history = [{"epoch": 1}, {"epoch": object()}]
    elif change == "legacy-object":
        bundle.legacy_params = {"weird": object()}
    elif change == "invalid-training":  # spec_from_dict would refuse it on loading
        bundle.training_config = dataclasses.replace(bundle.training_config, batch_size=10)
    with pytest.raises(ArchiveError) as info:
        save_archive(target, bundle)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a folder or temp file


# --------------------------------------------------------------------------------------------
# ARCH-120/121: declared sizes before building, finite weights


@pytest.mark.spec("ARCH-120")
@pytest.mark.parametrize(("n", "nfs", "words"), [
    (256, 64, ["n_filters_scale=64", "MiB", "limit"]),
    (256, 100000, ["n_filters_scale=100000", "MiB", "limit"]),
    (128, 1, ["probe.npy", "(128, 128)"]),
])
def test_declared_sizes_before_building(
    good: tuple[Path, ModelBundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    n: int, nfs: int, words: list[str],
) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["N"] = m["model_config"]["N"] = n
        m["model_config"]["n_filters_scale"] = nfs
        m["probe"]["shape"] = [n, n]
        m["training_config"]["model"] = m["model_config"]

    path = write_zip(tmp_path / ARCHIVE_NAME, resign(with_manifest(read_members(good[0]), edit)))
    built: list[str] = []
    real_build = archive.load.rebuild_model  # the real (not meta-device) model of load_archive
    monkeypatch.setattr(archive.load, "rebuild_model",
                        lambda *a, **k: built.append("real") or real_build(*a, **k))
    refused(path, *words)
    assert built == []  # refused before the real model was built


@pytest.mark.spec("ARCH-121")
def test_non_finite_weights_refused(good: tuple[Path, ModelBundle], tmp_path: Path) -> None:
    bundle = load_archive(good[0])
    with torch.no_grad():
        bundle.model.log_scale.fill_(float("nan"))
        bundle.intensity_scale = 1.0
    members = read_members(save_archive(tmp_path / "ok.zip", load_archive(good[0])))
    buffer = io.BytesIO()
    torch.save({k: v.clone() for k, v in bundle.model.state_dict().items()}, buffer)
    members[WEIGHTS] = buffer.getvalue()
    path = write_zip(tmp_path / ARCHIVE_NAME, resign(members))
    refused(path, "NaN or Inf", "log_scale (1 of 1)")
