"""DATA-182..184: mapped scans (larger than memory), pinn-torch convert, bounded resident set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.data import DataError, RawData, paging
from ptychodus_pinn_torch.data.mapped import MANIFEST, write_mapped
from ptychodus_pinn_torch.data.simulate import simulate_scan

CONTRACT = ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d", "probeGuess",
            "scan_index", "objectGuess")


def _same(a: RawData, b: RawData, rtol: float = 0.0) -> None:
    for key in CONTRACT:
        x, y = getattr(a, key), getattr(b, key)
        if x is None or y is None:
            assert x is None and y is None, key
            continue
        assert x.dtype == y.dtype, key
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0, err_msg=key)
    assert a.metadata == b.metadata


@pytest.fixture(scope="module")
def scan_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mapped") / "scan.npz"
    simulate_scan(N=64, object_shape=(128, 128), seed=4).to_file(path)
    return path


@pytest.mark.spec("DATA-182")
def test_mapped_folder_layout_and_reader(scan_npz: Path, tmp_path: Path) -> None:
    folder = write_mapped(scan_npz, tmp_path / "scan.mapped")
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == "ptychodus-pinn-torch-mapped" and manifest["version"] == 1
    source = RawData.from_file(scan_npz)
    assert manifest["n_positions"] == source.n_positions and manifest["N"] == 64
    assert manifest["arrays"]["diff3d"] == {"file": "diff3d.npy",
                                           "shape": [source.n_positions, 64, 64],
                                           "dtype": "float32"}
    # plain .npy files: numpy alone can map them
    raw_np = np.load(folder / "diff3d.npy", mmap_mode="r")
    np.testing.assert_array_equal(raw_np, source.diff3d)
    mapped = RawData.from_file(folder)
    assert isinstance(mapped.diff3d, np.memmap) and not mapped.diff3d.flags.writeable
    _same(mapped, source)
    assert RawData.from_file(folder / MANIFEST).n_positions == source.n_positions

    # damaged folders are one DataError naming the problem
    (folder / "probeGuess.npy").unlink()
    with pytest.raises(DataError, match="'probeGuess' file 'probeGuess.npy' is missing"):
        RawData.from_file(folder)
    manifest["version"] = 99
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="version 99 is not supported"):
        RawData.from_file(folder, format="mapped")


@pytest.mark.spec("DATA-183")
def test_convert_streams_every_format(scan_npz: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ptychodus_pinn_torch.data.fixtures import write_fixtures
    from ptychodus_pinn_torch.host.sample_data import simulate_scan as ptychodus_scan
    from ptychodus_pinn_torch.host.sample_data import write_standard_layout

    monkeypatch.setattr(paging, "CHUNK_BYTES", 5 * 64 * 64 * 4)  # 5 patterns per chunk
    rs = np.random.RandomState(0)
    source = RawData.from_file(scan_npz)
    counts = tmp_path / "counts.npz"  # float64 integer counts: DATA-004 says intensity
    np.savez(counts, xcoords=source.xcoords, ycoords=source.ycoords,
             diff3d=np.round(source.diff3d.astype(np.float64) ** 2) + 1,
             probeGuess=source.probeGuess)
    uint = tmp_path / "uint.npz"  # deflated uint16 counts
    np.savez_compressed(uint, xcoords=source.xcoords, ycoords=source.ycoords,
                        diff3d=rs.poisson(20, source.diff3d.shape).astype(np.uint16) + 1,
                        probeGuess=source.probeGuess)
    export = write_fixtures(tmp_path / "fx")[2]  # ptychodus' export layout
    standard = write_standard_layout(tmp_path / "std", ptychodus_scan(n_side=4, N=64,
                                                                      bad_pixel_count=2))
    for path in (scan_npz, counts, uint, export, standard):
        out = write_mapped(path, tmp_path / f"{path.stem}.mapped")
        _same(RawData.from_file(out), RawData.from_file(path), rtol=1e-6)

    from ptychodus_pinn_torch.cli.main import main

    assert main(["convert", str(standard), "--out", str(tmp_path / "std.npz")]) == 0
    _same(RawData.from_file(tmp_path / "std.npz"), RawData.from_file(standard))
    assert main(["convert", str(scan_npz), "--out", str(tmp_path / "cli.mapped")]) == 0
    assert main(["convert", str(scan_npz), "--out", str(tmp_path / "cli.mapped")]) == 2
    assert main(["convert", str(scan_npz), "--out", str(tmp_path / "cli.mapped"),
                 "--overwrite"]) == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, xcoords=source.xcoords, ycoords=source.ycoords,
             diff3d=np.where(np.arange(source.n_positions)[:, None, None] == 7, np.nan,
                             source.diff3d), probeGuess=source.probeGuess)
    with pytest.raises(DataError, match="non-finite values \\(first in pattern 7\\)"):
        write_mapped(bad, tmp_path / "bad.mapped")
    assert not (tmp_path / "bad.mapped").exists()
    assert not list(tmp_path.glob(".bad.mapped*"))  # the partial folder is removed


def _rss_file_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    pytest.skip("no /proc/self/status RssFile (not Linux)")
    return 0


@pytest.mark.spec("DATA-184")
def test_mapped_scans_keep_the_resident_set_bounded(tmp_path: Path) -> None:
    M, N = 6400, 64  # 105 MB of float32 patterns
    folder = tmp_path / "big"
    folder.mkdir()
    rs = np.random.RandomState(1)
    diff = np.lib.format.open_memmap(folder / "diff3d.npy", "w+", np.float32, (M, N, N))
    for lo in range(0, M, 800):
        diff[lo:lo + 800] = rs.uniform(0.1, 1.0, (800, N, N))
    diff.flush()
    del diff
    side = np.arange(80, dtype=np.float64) * 3 + 40
    x, y = np.meshgrid(side, side)
    small = {"xcoords": x.ravel(), "ycoords": y.ravel(),
             "probeGuess": np.ones((N, N), np.complex64)}
    entries = {"diff3d": {"file": "diff3d.npy", "shape": [M, N, N], "dtype": "float32"}}
    for key, value in small.items():
        np.save(folder / f"{key}.npy", value)
        entries[key] = {"file": f"{key}.npy", "shape": list(value.shape),
                        "dtype": str(value.dtype)}
    (folder / MANIFEST).write_text(json.dumps({
        "format": "ptychodus-pinn-torch-mapped", "version": 1, "n_positions": M, "N": N,
        "arrays": entries, "metadata": {}}))

    before = _rss_file_kib()
    raw = RawData.from_file(folder)  # validates every pattern, chunk by chunk
    assert isinstance(raw.diff3d, np.memmap)
    nn = raw.group_indices(K=4, nsamples=M, seed=0, gridsize=2)  # coordinates only
    totals = paging.pattern_totals(raw.diff3d)
    grown_mib = (_rss_file_kib() - before) / 1024
    assert nn.shape == (M, 4) and totals.shape == (M,)
    assert grown_mib < 40, f"{grown_mib:.0f} MiB of a 105 MB file stayed resident"
    np.testing.assert_allclose(totals[:3], np.sum(np.asarray(raw.diff3d[:3], np.float64) ** 2,
                                                  axis=(1, 2)))
    # control: a plain pass over the memory map (no release) leaves it resident
    float(np.asarray(raw.diff3d).sum())
    assert (_rss_file_kib() - before) / 1024 > 80
