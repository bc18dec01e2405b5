"""EVAL-160..167: evaluation of reconstructions (specs/EVAL.md), checked against scikit-image
and against independent per-pixel computations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.registration import phase_cross_correlation

from ptychodus_pinn_torch import eval as ev
from ptychodus_pinn_torch.cli.main import main


def _object(seed: int = 0, size: int = 96) -> np.ndarray:
    """A smooth complex test object: amplitude in [0.5, 1], phase within +-1.5 rad."""
    rs = np.random.RandomState(seed)
    amp = gaussian_filter(rs.rand(size, size), 2.5)
    amp = (amp - amp.min()) / (amp.max() - amp.min()) * 0.5 + 0.5
    phase = gaussian_filter(rs.standard_normal((size, size)), 2.5)
    phase = phase / np.abs(phase).max() * 1.5
    return amp * np.exp(1j * phase)


@pytest.mark.spec("EVAL-160")
def test_eval_imports_neither_torch_nor_matplotlib(tmp_path: Path) -> None:
    obj = _object(size=48)
    np.savez(tmp_path / "a.npz", object=obj)
    code = (
        "import sys; from ptychodus_pinn_torch.cli.main import main; "
        f"rc = main(['evaluate', '--recon', {str(tmp_path / 'a.npz')!r}, '--reference', "
        f"{str(tmp_path / 'a.npz')!r}]); "
        "print('RC', rc, 'torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "RC 0 False False" in proc.stdout


@pytest.mark.spec("EVAL-161")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_psnr_rmse_equal_scikit_image(seed: int) -> None:
    rs = np.random.RandomState(seed)
    ref = np.abs(_object(seed, 64))
    test = ref + rs.normal(0, 0.05 * (seed + 1), ref.shape)
    for data_range in (None, 2.0):
        sk_range = float(ref.max() - ref.min()) if data_range is None else data_range
        assert ev.ssim(ref, test, data_range=data_range) == pytest.approx(
            structural_similarity(ref, test, data_range=sk_range), abs=1e-10
        )
        assert ev.psnr(ref, test, data_range=data_range) == pytest.approx(
            peak_signal_noise_ratio(ref, test, data_range=sk_range), abs=1e-10
        )
    assert ev.rmse(ref, test) == pytest.approx(float(np.sqrt(np.mean((ref - test) ** 2))))
    assert ev.ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert ev.psnr(ref, ref) == float("inf")
    assert ev.ssim(np.ones((16, 16)), np.ones((16, 16))) == pytest.approx(1.0)  # range 1


@pytest.mark.spec("EVAL-162")
@pytest.mark.parametrize("shift", [(3.37, -5.61), (0.25, 0.5), (-10.05, 7.9)])
@pytest.mark.parametrize("normalization", ["phase", "none"])
def test_register_shift_agrees_with_scikit_image(
    shift: tuple[float, float], normalization: str
) -> None:
    obj = _object(3, 96)
    moving = ev.fourier_shift(obj, shift)
    mine = ev.register_shift(obj, moving, upsample=50, normalization=normalization)  # type: ignore[arg-type]
    theirs = phase_cross_correlation(
        obj, moving, upsample_factor=50, normalization="phase" if normalization == "phase" else None
    )[0]
    assert np.allclose(mine, theirs, atol=1 / 50 + 1e-9)
    assert np.allclose(mine, [-shift[0], -shift[1]], atol=1 / 50 + 1e-9)


@pytest.mark.spec("EVAL-162")
def test_fourier_shift_moves_content_by_plus_shift() -> None:
    image = np.zeros((32, 32))
    image[10, 12] = 1.0
    moved = ev.fourier_shift(image, (3, -4))
    assert np.unravel_index(np.argmax(np.abs(moved)), moved.shape) == (13, 8)
    assert np.allclose(moved.real, np.roll(image, (3, -4), axis=(0, 1)), atol=1e-12)


@pytest.mark.spec("EVAL-163")
@pytest.mark.parametrize("shift", [(1.3, -0.7), (-2.45, 0.2)])
def test_align_recovers_shift_phase_ramp_and_gain(shift: tuple[float, float]) -> None:
    ref = _object(5, 128)
    rows, cols = np.mgrid[:128, :128].astype(float)
    rows -= rows.mean()
    cols -= cols.mean()
    # a ramp of whole cycles over the array is periodic, so shifting it back adds no ringing
    b, c = 2 * np.pi / 128, -2 * 2 * np.pi / 128
    recon = 0.6 * ev.fourier_shift(ref, shift) * np.exp(1j * (0.9 + b * rows + c * cols))
    box = (slice(24, 104), slice(24, 104))
    aligned, a = ev.align(recon, ref, box=box)
    assert np.allclose(a.shift_px, [-shift[0], -shift[1]], atol=0.02)
    assert a.phase_ramp_rad_per_px[0] == pytest.approx(b, abs=1e-3)
    assert a.phase_ramp_rad_per_px[1] == pytest.approx(c, abs=1e-3)
    assert a.amplitude_gain == pytest.approx(1 / 0.6, rel=0.01)
    result = ev.evaluate(recon, ref, box=box)
    assert result.amplitude_ssim > 0.99 and result.phase_ssim > 0.99
    assert aligned.shape == (80, 80)


@pytest.mark.spec("EVAL-163")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_registration_never_worsens_a_blurred_reconstruction(seed: int) -> None:
    ref = _object(20 + seed, 96)
    rs = np.random.RandomState(seed)
    blurred = gaussian_filter(ref.real, 4.0) + 1j * gaussian_filter(ref.imag, 4.0)
    recon = 0.7 * blurred + 0.1 * (rs.randn(96, 96) + 1j * rs.randn(96, 96))
    box = (slice(16, 80), slice(16, 80))
    registered = ev.evaluate(recon, ref, box=box)
    fixed = ev.evaluate(recon, ref, box=box, register=False)
    assert registered.complex_relative_error <= fixed.complex_relative_error + 1e-12
    if registered.alignment.shift_px != (0.0, 0.0):
        assert registered.complex_relative_error < fixed.complex_relative_error


@pytest.mark.spec("EVAL-163")
def test_align_without_registration_uses_the_grid_as_is() -> None:
    ref = _object(6, 64)
    recon = 2.0 * ref * np.exp(0.4j)
    aligned, a = ev.align(recon, ref, register=False)
    assert a.shift_px == (0.0, 0.0)
    assert a.phase_offset_rad == pytest.approx(0.4, abs=1e-12)
    assert a.amplitude_gain == pytest.approx(0.5, abs=1e-12)
    assert np.allclose(aligned, ref, atol=1e-12)


@pytest.mark.spec("EVAL-164")
def test_phase_compared_through_the_wrapped_difference() -> None:
    ref = _object(7, 64)
    rows, cols = np.mgrid[:64, :64]
    ref = np.abs(ref) * np.exp(1j * (np.pi - 0.3 + 0.6 * (cols / 63.0)))  # crosses +-pi
    assert np.angle(ref).min() < -2.5 and np.angle(ref).max() > 2.5
    rec = ref * np.exp(1j * 0.05 * np.sin(rows / 5.0))  # small true phase error
    result = ev.evaluate(rec, ref, register=False)
    naive = np.angle(result.aligned)
    assert np.abs(naive - np.angle(ref)).max() > 6.0  # np.angle alone would wrap
    assert result.phase_rmse_rad < 0.06
    assert result.phase_ssim > 0.9
    assert ev.evaluate(ref, ref, register=False).phase_ssim == pytest.approx(1.0, abs=1e-9)


def _direct_square_frc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel loop over the centred spectrum with rings round(radius), as upstream's
    spinavej builds them, for a square image."""
    n = a.shape[0]
    fa = np.fft.fftshift(np.fft.fft2(a))
    fb = np.fft.fftshift(np.fft.fft2(b))
    centre = n // 2
    rings = n // 2 + 1
    cross = np.zeros(rings, complex)
    pa = np.zeros(rings)
    pb = np.zeros(rings)
    for r in range(n):
        for c in range(n):
            k = int(round(float(np.hypot(r - centre, c - centre))))
            if k < rings:
                cross[k] += fa[r, c] * np.conj(fb[r, c])
                pa[k] += abs(fa[r, c]) ** 2
                pb[k] += abs(fb[r, c]) ** 2
    return np.abs(cross) / np.sqrt(pa * pb)


@pytest.mark.spec("EVAL-165")
def test_frc_equals_a_direct_ring_sum() -> None:
    rs = np.random.RandomState(8)
    a = _object(8, 48)
    b = a + 0.3 * (rs.randn(48, 48) + 1j * rs.randn(48, 48))
    curve = ev.frc(a, b, taper=0.0)
    assert curve.frc.shape == (25,) and curve.side == 48
    assert np.allclose(curve.frc, _direct_square_frc(a, b), atol=1e-12)
    assert np.allclose(curve.frequency, np.arange(25) / 48)
    assert ev.frc(a, a).frc == pytest.approx(np.ones(25), abs=1e-12)
    assert curve.n_pixels[0] == 1 and curve.n_pixels[1] == 8  # the 3x3 ring minus the centre


@pytest.mark.spec("EVAL-166")
def test_thresholds_follow_their_formulas() -> None:
    n = np.array([1.0, 8.0, 100.0, 1e6])
    general = lambda s, m: (s + 2 * np.sqrt(s) / np.sqrt(m) + 1 / np.sqrt(m)) / (  # noqa: E731
        s + 2 * np.sqrt(s) / np.sqrt(m) + 1
    )
    assert np.allclose(ev.half_bit_threshold(n), general(0.2071, n), atol=1e-4)
    assert ev.half_bit_threshold(np.array([1.0]))[0] == pytest.approx(1.0, abs=1e-4)
    t = ev.snrt_threshold(4, 0.1)
    # ring 1 by hand: n = 2 pi, (0.1 + 2 sqrt(0.1)/(2 pi) + 1/sqrt(2 pi)) / (0.1 + ... + 1)
    assert t[1] == pytest.approx(0.599609 / 1.200658, abs=1e-5)
    assert t[0] == pytest.approx(1.0, abs=1e-9)
    assert t[3] == pytest.approx(
        (0.1 + 2 * np.sqrt(0.1) / (6 * np.pi) + 1 / np.sqrt(6 * np.pi))
        / (0.1 + 2 * np.sqrt(0.1) / (6 * np.pi) + 1),
        abs=1e-12,
    )


@pytest.mark.spec("EVAL-166")
@pytest.mark.parametrize("cutoff", [6, 11])
def test_resolution_of_a_sharp_cutoff(cutoff: int) -> None:
    """``b`` keeps the spectrum of the real image ``a`` up to ring kc and applies +-i (odd in q)
    beyond it, so FRC = 1 up to kc and exactly 0 at kc + 1; each threshold T is then crossed at
    kc + (1 - T_kc) / (1 - T_kc + T_kc+1) rings."""
    a = np.abs(_object(9, 64)) + 0.2 * np.random.RandomState(9).randn(64, 64)
    qy, qx = np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij")
    inside = np.rint(np.hypot(qy, qx) * 64) <= cutoff
    odd = np.where(qx != 0, np.sign(qx), np.sign(qy))
    b = np.fft.ifft2(np.fft.fft2(a) * np.where(inside, 1.0, 1j * odd))
    curve = ev.frc(a, b, taper=0.0)
    assert np.allclose(curve.frc[: cutoff + 1], 1.0)
    assert curve.frc[cutoff + 1] == pytest.approx(0.0, abs=1e-12)
    for name in ev.THRESHOLDS:
        t = curve.thresholds[name]
        k = cutoff + (1 - t[cutoff]) / (1 - t[cutoff] + t[cutoff + 1])
        res = curve.resolution(name, pixel_size_m=1e-8)
        assert res.crossed
        assert res.frequency == pytest.approx(k / 64, rel=1e-9)
        assert res.pixels == pytest.approx(64 / k, rel=1e-9)
        assert res.metres == pytest.approx(64 / k * 1e-8, rel=1e-9)
    same = ev.frc(a, a).resolution("half_bit")
    assert not same.crossed and same.pixels == 2.0 and same.metres is None


def _write_pair(tmp_path: Path) -> tuple[Path, Path]:
    ref = _object(10, 96)
    rs = np.random.RandomState(10)
    rec = 0.5 * ev.fourier_shift(ref, (0.6, -1.2)) * np.exp(2.0j)
    rec = rec + 0.005 * (rs.randn(96, 96) + 1j * rs.randn(96, 96))
    g = np.arange(20.0, 77.0, 8.0)
    x, y = np.meshgrid(g, g)
    np.savez(tmp_path / "scan.npz", objectGuess=ref.astype(np.complex64), xcoords=x.ravel(),
             ycoords=y.ravel())
    np.savez(tmp_path / "rec.npz", object=rec.astype(np.complex64),
             coverage=np.ones((96, 96), np.float32))
    return tmp_path / "rec.npz", tmp_path / "scan.npz"


@pytest.mark.spec("EVAL-167")
def test_cli_prints_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, scan = _write_pair(tmp_path)
    out_json, out_png = tmp_path / "m.json", tmp_path / "frc.png"
    rc = main(["evaluate", "--recon", str(rec), "--reference", str(scan), "--json", str(out_json),
               "--png", str(out_png), "--pixel-size", "2e-8"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "rows 20:77, cols 20:77 (between the scan positions)" in text
    assert "SSIM" in text and "half_bit" in text and " m" in text
    data = json.loads(out_json.read_text())
    assert data["box"] == {"rows": [20, 77], "cols": [20, 77]}
    assert np.allclose(data["alignment"]["shift_px"], [-0.6, 1.2], atol=0.05)
    assert data["alignment"]["amplitude_gain"] == pytest.approx(2.0, rel=0.02)
    assert data["amplitude_ssim"] > 0.8 and data["phase_ssim"] > 0.9
    res = data["resolution"]["half_bit"]
    assert res["metres"] == pytest.approx(res["pixels"] * 2e-8)
    assert len(data["frc"]["frc"]) == 57 // 2 + 1
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.spec("EVAL-167")
def test_cli_box_from_coverage_and_explicit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _object(11, 64)
    coverage = np.zeros((64, 64), np.float32)
    coverage[10:50, 5:40] = 1.0
    coverage[8:52, 3:42] = np.maximum(coverage[8:52, 3:42], 0.2)  # thin low-coverage rim
    np.savez(tmp_path / "ref.npz", object=ref)
    np.savez(tmp_path / "rec.npz", object=ref, coverage=coverage)
    base = ["evaluate", "--recon", str(tmp_path / "rec.npz"), "--reference",
            str(tmp_path / "ref.npz"), "--json", str(tmp_path / "m.json")]
    assert main(base) == 0
    assert json.loads((tmp_path / "m.json").read_text())["box"] == {"rows": [10, 50],
                                                                   "cols": [5, 40]}
    assert main([*base, "--box", "4:60,8:30"]) == 0
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["box"] == {"rows": [4, 60], "cols": [8, 30]}
    assert data["amplitude_ssim"] == pytest.approx(1.0, abs=1e-9)
    capsys.readouterr()


@pytest.mark.spec("EVAL-167")
def test_infinite_psnr_is_json_null() -> None:
    import dataclasses

    ref = _object(12, 32)
    result = dataclasses.replace(ev.evaluate(ref, ref), amplitude_psnr_db=float("inf"))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["amplitude_psnr_db"] is None and data["phase_psnr_db"] > 200


@pytest.mark.spec("EVAL-167")
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--box", "0:10"], "--box"),
        (["--box", "0:100,0:10"], "outside"),
        (["--pixel-size", "-1"], "--pixel-size"),
        (["--recon-key", "nothere"], "nothere"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    rec, scan = _write_pair(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ptychodus_pinn_torch.cli.main", "evaluate", "--recon", str(rec),
         "--reference", str(scan), *extra],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.spec("EVAL-167")
def test_cli_refuses_different_grids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "a.npz", object=_object(1, 64))
    np.savez(tmp_path / "b.npz", objectGuess=_object(1, 72))
    rc = main(["evaluate", "--recon", str(tmp_path / "a.npz"), "--reference",
               str(tmp_path / "b.npz")])
    assert rc == 2
    assert "one pixel grid" in capsys.readouterr().err
