"""Conformance tests of specs/MODEL.md: the PtychoPINN network and module.

Numbers are checked against independent numpy/scipy computations (bilinear shifts with
``scipy.ndimage.map_coordinates``, FFTs with ``numpy.fft``), with explicit tolerances.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.model import (
    build_model,
    extract_patches,
    merge_patches,
    padded_size,
    widths_for,
)
from ptychodus_pinn_torch.model.generators.cnn import DecoderLast

# ----------------------------------------------------------------------------- helpers

#: Absolute tolerance for O(1) values that went through ``physics.translate``: its float32
#: ``grid_sample`` sampling grid is exact to about 1e-5 pixel even for integer shifts, which
#: mixes ~1e-5 of a neighbour into each sample.
TRANSLATE_ATOL = 1e-4


def gaussian_probe(n: int) -> np.ndarray:
    """Smooth complex test probe ``(n, n)`` complex64 with a phase ramp."""
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    amp = np.exp(-(xx**2 + yy**2) / (2 * (n / 5) ** 2))
    return (amp * np.exp(1j * 0.03 * (xx + 2 * yy))).astype(np.complex64)


def make(cfg: ModelConfig | None = None, **kwargs: object) -> torch.nn.Module:
    cfg = cfg or ModelConfig()
    torch.manual_seed(0)
    return build_model(cfg, probe=gaussian_probe(cfg.N), intensity_scale=3.0, **kwargs)


def small(**fields: object) -> ModelConfig:
    """A cheap config: N=64, n_filters_scale=1, other fields overridable."""
    return replace(ModelConfig(), n_filters_scale=1, **fields)


def inputs(model: torch.nn.Module, b: int = 2, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, model.C, model.N, model.N, generator=g) * 3.0
    pos = (torch.rand(b, model.C, 2, generator=g) - 0.5) * 6.0
    if model.C == 1:
        pos.zero_()
    return x, pos


def conv_count(cin: int, cout: int) -> int:
    """Real weights of a 3x3 conv with bias."""
    return 9 * cin * cout + cout


def np_shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Independent bilinear shift: content moves by +(dx, dy), zero fill per corner."""
    h, w = img.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.array([rows - dy, cols - dx])

    def one(part: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(part, coords, order=1, mode="grid-constant", cval=0.0)

    if np.iscomplexobj(img):
        return one(img.real.astype(np.float64)) + 1j * one(img.imag.astype(np.float64))
    return one(img.astype(np.float64))


def np_centre_mask(n: int) -> np.ndarray:
    m = np.zeros((n, n))
    m[n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = 1.0
    return m


def capture_heads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Register a hook storing the generator input and its (amp, phase) outputs."""
    store: dict[str, torch.Tensor] = {}

    def hook(_mod: torch.nn.Module, args: tuple, out: tuple) -> None:
        store["x"] = args[0].detach()
        store["amp"], store["phase"] = out[0].detach(), out[1].detach()

    model.generator.register_forward_hook(hook)
    return store


@pytest.fixture(scope="module")
def default_model() -> torch.nn.Module:
    return make()


# ----------------------------------------------------------------------------- MODEL-001


@pytest.mark.spec("MODEL-001")
@pytest.mark.parametrize("s", [1, 2, 3])
def test_widths_table(s: int) -> None:
    w64, w128, w256 = (widths_for(n, s) for n in (64, 128, 256))
    assert w64.encoder == tuple(s * f for f in (32, 64, 128))
    assert w64.decoder == tuple(s * f for f in (64, 32))
    assert w128.encoder == tuple(s * f for f in (16, 32, 64, 128))
    assert w128.decoder == tuple(s * f for f in (128, 64, 32))
    assert w256.encoder == tuple(s * f for f in (8, 16, 32, 64, 128))
    assert w256.decoder == tuple(s * f for f in (256, 128, 64, 32))
    assert (w64.last, w128.last, w256.last) == (32 * s, 16 * s, 8 * s)


@pytest.mark.spec("MODEL-001")
@pytest.mark.parametrize("n", [64, 128, 256])
def test_built_layers_and_spatial_sizes(n: int) -> None:
    model = make(replace(ModelConfig(), N=n, n_filters_scale=1))
    convs = [m for m in model.generator.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    widths = widths_for(n, 1)
    assert [c.out_channels for c in convs] == [f for f in widths.encoder for _ in range(2)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    with torch.no_grad():
        z = model.generator.encoder(torch.zeros(1, 1, n, n))
        assert tuple(z.shape) == (1, widths.encoder[-1], 8, 8)
        up = model.generator.amp_decoder.blocks(z)
        assert tuple(up.shape) == (1, widths.decoder[-1], n // 2, n // 2)


@pytest.mark.spec("MODEL-001")
@pytest.mark.parametrize("bad", [100, 32, 512, 0])
def test_unsupported_n_raises(bad: int) -> None:
    with pytest.raises(ValueError, match="Unsupported input size") as err:
        build_model(replace(ModelConfig(), N=bad), probe=np.ones((64, 64)), intensity_scale=1.0)
    assert "ModelConfig.N" in str(err.value) and str(bad) in str(err.value)
    assert "64" in str(err.value) and "256" in str(err.value)


@pytest.mark.spec("MODEL-001")
@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_bad_filters_scale_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="n_filters_scale"):
        build_model(
            replace(ModelConfig(), n_filters_scale=bad), probe=np.ones((64, 64)), intensity_scale=1
        )


# ----------------------------------------------------------------------------- MODEL-002


def hand_count(n: int, s: int, c: int, nf: int, pad_object: bool, probe_big: bool) -> int:
    """Sum of conv weight+bias sizes from the reference §5.1 table, independent of the model."""
    encoder = {64: [32, 64, 128], 128: [16, 32, 64, 128], 256: [8, 16, 32, 64, 128]}[n]
    decoder = {64: [64, 32], 128: [128, 64, 32], 256: [256, 128, 64, 32]}[n]
    last = s * (2048 // n)
    total, ch = 0, c
    for f in (s * f for f in encoder):
        total += conv_count(ch, f) + conv_count(f, f)
        ch = f
    head = 0
    for f in (s * f for f in decoder):
        head += conv_count(ch, f) + conv_count(f, f)
        ch = f
    if pad_object:
        head += conv_count(ch - 4, nf)
        if probe_big:
            head += conv_count(4, last) + conv_count(last, last) + conv_count(last, nf)
    else:
        head += conv_count(ch, last) + conv_count(last, last) + conv_count(last, nf)
    return total + 2 * head


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.spec("MODEL-002")
def test_weight_count_default_n64(default_model: torch.nn.Module) -> None:
    encoder = (
        conv_count(1, 64) + conv_count(64, 64)
        + conv_count(64, 128) + conv_count(128, 128)
        + conv_count(128, 256) + conv_count(256, 256)
    )
    decoder = (
        conv_count(256, 128) + conv_count(128, 128) + conv_count(128, 64) + conv_count(64, 64)
    )
    centre = conv_count(64 - 4, 1)
    border = conv_count(4, 64) + conv_count(64, 64) + conv_count(64, 1)
    by_hand = encoder + 2 * (decoder + centre + border)
    assert (encoder, decoder, centre, border) == (1_144_256, 553_344, 541, 39_873)
    assert by_hand == 2_331_772
    # the module: probe not trainable (default), log_scale trainable (default)
    assert default_model.probe_ri.requires_grad is False
    assert default_model.log_scale.requires_grad is True
    assert trainable(default_model) - 1 == 2_331_772
    assert default_model.n_network_weights() == 2_331_772


@pytest.mark.spec("MODEL-002")
def test_weight_count_with_trainable_probe_and_frozen_scale() -> None:
    cfg = ModelConfig()
    model = make(cfg, probe_trainable=True, intensity_scale_trainable=False)
    assert trainable(model) == 2_331_772 + 2 * 64 * 64


@pytest.mark.spec("MODEL-002")
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"N": 128}, 4_661_212),
        ({"N": 256}, 12_912_268),
        ({"gridsize": 2}, 2_340_208),
        ({"n_filters_scale": 1}, 585_244),
        ({"probe_big": False}, None),
        ({"pad_object": False}, None),
        ({"gridsize": 2, "object_big": False}, None),
    ],
)
def test_weight_count_other_configs(fields: dict, expected: int | None) -> None:
    cfg = replace(ModelConfig(), **fields)
    c = cfg.gridsize**2
    by_hand = hand_count(
        cfg.N, cfg.n_filters_scale, c, c if cfg.object_big else 1, cfg.pad_object, cfg.probe_big
    )
    if expected is not None:
        assert by_hand == expected
    model = build_model(cfg, probe=np.ones((cfg.N, cfg.N)), intensity_scale=1.0)
    assert trainable(model) - 1 == by_hand


# ----------------------------------------------------------------------------- MODEL-003


@pytest.mark.spec("MODEL-003")
def test_glorot_uniform_zero_bias(default_model: torch.nn.Module) -> None:
    convs = [m for m in default_model.generator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6 + 2 * (4 + 1 + 3)
    for conv in convs:
        assert torch.count_nonzero(conv.bias) == 0
        bound = math.sqrt(6.0 / (9 * conv.in_channels + 9 * conv.out_channels))
        w = conv.weight.detach().numpy()
        assert np.abs(w).max() <= bound + 1e-7
        if w.size > 30_000:  # uniform(-b, b) has std b/sqrt(3)
            assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.03)


# ----------------------------------------------------------------------------- MODEL-004

NP_ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "swish": lambda z: z / (1.0 + np.exp(-z)),
    "silu": lambda z: z / (1.0 + np.exp(-z)),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "relu": lambda z: np.maximum(z, 0.0),
}


@pytest.mark.spec("MODEL-004")
@pytest.mark.parametrize("name", sorted(NP_ACTIVATIONS))
def test_amp_activation_applied(name: str) -> None:
    model = make(small(amp_activation=name, probe_big=False))
    store = capture_heads(model)
    pre: dict[str, torch.Tensor] = {}
    last = model.generator.amp_decoder.last
    assert isinstance(last, DecoderLast)
    last.centre_conv.register_forward_hook(lambda _m, _a, out: pre.update(z=out.detach()))
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        model.diffraction_to_obj(x, pos)
    q = model.N // 4
    expected = NP_ACTIVATIONS[name](pre["z"].double().numpy())
    got = store["amp"][..., q : 3 * q, q : 3 * q].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.spec("MODEL-004")
@pytest.mark.parametrize("bad", ["tanh", "gelu", "", None])
def test_unknown_activation_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="Unknown activation") as err:
        build_model(small(amp_activation=bad), probe=np.ones((64, 64)), intensity_scale=1.0)
    assert "amp_activation" in str(err.value) and "sigmoid" in str(err.value)


# ----------------------------------------------------------------------------- MODEL-005


@pytest.mark.spec("MODEL-005")
def test_object_is_amp_exp_i_phase() -> None:
    model = make(small(probe_big=False))
    store = capture_heads(model)
    pre: dict[str, torch.Tensor] = {}
    last = model.generator.phase_decoder.last
    last.centre_conv.register_forward_hook(lambda _m, _a, out: pre.update(z=out.detach()))
    x, pos = inputs(model, b=2)
    with torch.no_grad():
        obj = model.diffraction_to_obj(x, pos)
    q, n = model.N // 4, model.N
    phase = store["phase"][:, 0].double().numpy()
    amp = store["amp"][:, 0].double().numpy()
    np.testing.assert_allclose(
        phase[:, q : 3 * q, q : 3 * q], math.pi * np.tanh(pre["z"][:, 0].double().numpy()),
        rtol=1e-5, atol=1e-6,
    )
    assert np.all(np.abs(phase) < math.pi)
    # gridsize 1, position 0: the object is the patch itself
    expected = amp * np.exp(1j * phase)
    assert obj.dtype == torch.complex64 and tuple(obj.shape) == (2, n, n)
    # TRANSLATE_ATOL: the merge goes through physics.translate (float32 sampling grid)
    np.testing.assert_allclose(obj.numpy(), expected, rtol=1e-5, atol=TRANSLATE_ATOL)


# ----------------------------------------------------------------------------- MODEL-006


@pytest.mark.spec("MODEL-006")
def test_probe_big_false_zero_border() -> None:
    model = make(small(probe_big=False, amp_activation="softplus"))
    store = capture_heads(model)
    x, pos = inputs(model)
    with torch.no_grad():
        obj = model.diffraction_to_obj(x, pos)
    border = 1.0 - np_centre_mask(model.N)
    for head in ("amp", "phase"):
        assert np.all(store[head].numpy() * border == 0.0)
    assert np.abs(obj.numpy() * border).max() <= TRANSLATE_ATOL  # merged (object_big)
    assert np.all(store["amp"].numpy()[..., 16:48, 16:48] > 0)  # softplus > 0 on the support
    padded = make(small(probe_big=False, object_big=False))
    with torch.no_grad():
        assert np.all(padded.diffraction_to_obj(x, pos).numpy() * border == 0)


@pytest.mark.spec("MODEL-006")
def test_probe_big_border_branch() -> None:
    model = make(small())
    store = capture_heads(model)
    centre: dict[str, torch.Tensor] = {}
    border: dict[str, torch.Tensor] = {}
    last = model.generator.amp_decoder.last
    last.centre_conv.register_forward_hook(lambda _m, _a, out: centre.update(z=out.detach()))
    last.border_conv.register_forward_hook(lambda _m, _a, out: border.update(z=out.detach()))
    conv4 = last.border_up[0]
    assert (conv4.in_channels, conv4.out_channels) == (4, 32)
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        model.diffraction_to_obj(x, pos)
    mask = np_centre_mask(model.N)
    amp = store["amp"].double().numpy()[0, 0]
    z_b = border["z"].double().numpy()[0, 0]
    swish = z_b / (1 + np.exp(-z_b))
    np.testing.assert_allclose(amp * (1 - mask), swish * (1 - mask), rtol=1e-5, atol=1e-6)
    z_c = centre["z"].double().numpy()[0, 0]
    np.testing.assert_allclose(amp[16:48, 16:48], 1 / (1 + np.exp(-z_c)), rtol=1e-5, atol=1e-6)
    assert np.abs(amp * (1 - mask)).max() > 0


@pytest.mark.spec("MODEL-006")
def test_pad_object_false_full_support() -> None:
    model = make(small(pad_object=False))
    last = model.generator.amp_decoder.last
    assert not hasattr(last, "centre_conv") and not hasattr(last, "border_conv")
    store = capture_heads(model)
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        model.diffraction_to_obj(x, pos)
    assert np.all(store["amp"].numpy() > 0)  # sigmoid over the full N x N


# ----------------------------------------------------------------------------- MODEL-007


@pytest.mark.spec("MODEL-007")
@pytest.mark.parametrize(("gridsize", "object_big"), [(1, True), (2, True), (2, False)])
def test_channel_counts(gridsize: int, object_big: bool) -> None:
    model = make(small(gridsize=gridsize, object_big=object_big))
    c = gridsize**2
    first = model.generator.encoder[0][0]
    assert first.in_channels == c
    store = capture_heads(model)
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        out = model(x, pos)
    nf = c if object_big else 1
    assert store["amp"].shape[1] == nf and store["phase"].shape[1] == nf
    assert tuple(out.pred_amp.shape) == (1, c, 64, 64)


# ----------------------------------------------------------------------------- MODEL-008


@pytest.mark.spec("MODEL-008")
def test_padded_size_values() -> None:
    assert [padded_size(64, g) for g in (1, 2, 3)] == [74, 78, 82]
    assert [padded_size(128, g) for g in (1, 2, 3)] == [138, 142, 146]
    assert make(small(gridsize=2)).padded_size == 78


@pytest.mark.spec("MODEL-008")
def test_pad_and_trim_centre() -> None:
    model = make(small(object_big=False, probe_big=False))
    store = capture_heads(model)
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        obj = model.diffraction_to_obj(x, pos)
    patch = store["amp"][0, 0].numpy() * np.exp(1j * store["phase"][0, 0].numpy())
    canvas = np.pad(patch, 5)
    np.testing.assert_allclose(obj[0].numpy(), canvas[5:69, 5:69], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- MODEL-009


@pytest.mark.spec("MODEL-009")
def test_extract_integer_offsets_region() -> None:
    rng = np.random.default_rng(0)
    p, n = 78, 64
    canvas = (rng.normal(size=(1, p, p)) + 1j * rng.normal(size=(1, p, p))).astype(np.complex64)
    offs = np.array([[[3.0, -2.0], [-4.0, 1.0], [0.0, 0.0], [2.0, 5.0]]], dtype=np.float32)
    got = extract_patches(torch.from_numpy(canvas), torch.from_numpy(offs), n).numpy()
    for c, (x, y) in enumerate(offs[0]):
        r0 = int(p // 2 - y - n // 2)
        c0 = int(p // 2 - x - n // 2)
        np.testing.assert_allclose(
            got[0, c], canvas[0, r0 : r0 + n, c0 : c0 + n], atol=TRANSLATE_ATOL
        )


@pytest.mark.spec("MODEL-009")
def test_extract_subpixel_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    p, n = 78, 64
    canvas = (rng.normal(size=(2, p, p)) + 1j * rng.normal(size=(2, p, p))).astype(np.complex64)
    offs = rng.uniform(-6, 6, size=(2, 4, 2)).astype(np.float32)
    got = extract_patches(torch.from_numpy(canvas), torch.from_numpy(offs), n).numpy()
    s = (p - n) // 2
    for b in range(2):
        for c in range(4):
            moved = np_shift(canvas[b], float(offs[b, c, 0]), float(offs[b, c, 1]))
            np.testing.assert_allclose(got[b, c], moved[s : s + n, s : s + n], atol=TRANSLATE_ATOL)


# ----------------------------------------------------------------------------- MODEL-010


def np_merge(patches: np.ndarray, offs: np.ndarray, p: int) -> np.ndarray:
    """Independent numpy version of the MODEL-010 formula for one sample ``(C, N, N)``."""
    n = patches.shape[-1]
    pad = (p - n) // 2
    mask = np_centre_mask(n)
    num_c = np.zeros((p, p), complex)
    num_a = np.zeros((p, p), complex)
    cnt_c = np.zeros((p, p))
    cnt_a = np.zeros((p, p))
    for patch, (x, y) in zip(patches, offs, strict=True):
        num_c += np_shift(np.pad(patch * mask, pad), -x, -y)
        num_a += np_shift(np.pad(patch, pad), -x, -y)
        cnt_c += np_shift(np.pad(mask, pad), -x, -y)
        cnt_a += np_shift(np.pad(np.ones((n, n)), pad), -x, -y)
    plain = np.where(cnt_a > 1e-6, num_a / np.maximum(cnt_a, 1e-6), 0)
    return np.where(cnt_c >= 1, num_c / np.maximum(cnt_c, 1), num_c + (1 - cnt_c) * plain)


@pytest.mark.spec("MODEL-010")
def test_merge_matches_numpy_formula() -> None:
    rng = np.random.default_rng(2)
    n, p = 64, 78
    patches = (rng.normal(size=(2, 4, n, n)) + 1j * rng.normal(size=(2, 4, n, n))).astype(
        np.complex64
    )
    offs = rng.uniform(-4, 4, size=(2, 4, 2)).astype(np.float32)
    got = merge_patches(torch.from_numpy(patches), torch.from_numpy(offs), p).numpy()
    assert got.shape == (2, p, p) and got.dtype == np.complex64
    for b in range(2):
        np.testing.assert_allclose(got[b], np_merge(patches[b], offs[b], p), atol=TRANSLATE_ATOL)
    # a convex combination: never larger than the largest patch modulus (no 1000x gain)
    assert np.abs(got).max() <= np.abs(patches).max() * (1 + 1e-5)


@pytest.mark.spec("MODEL-010")
def test_merge_gridsize1_is_patch() -> None:
    rng = np.random.default_rng(3)
    patch = (rng.normal(size=(3, 1, 64, 64)) + 1j * rng.normal(size=(3, 1, 64, 64))).astype(
        np.complex64
    )
    got = merge_patches(torch.from_numpy(patch), torch.zeros(3, 1, 2), 74).numpy()
    expected = np.pad(patch[:, 0], ((0, 0), (5, 5), (5, 5)))
    np.testing.assert_allclose(got, expected, atol=TRANSLATE_ATOL)


@pytest.mark.spec("MODEL-010")
def test_merge_centre_wins_over_borders() -> None:
    n, p = 64, 78
    patches = np.stack([np.full((n, n), 1.0 + 0j), np.full((n, n), 5.0 + 0j)])[None]
    offs = np.array([[[0.0, 0.0], [20.0, 0.0]]], dtype=np.float32)  # patch 2 moved left by 20
    got = merge_patches(torch.from_numpy(patches.astype(np.complex64)), torch.from_numpy(offs), p)
    row = got[0, p // 2].real.numpy()
    pad = (p - n) // 2
    # canvas col of patch-1 centre square: [pad+16, pad+48); patch 2's: [pad-4, pad+28)
    assert row[pad + 40] == pytest.approx(1.0)  # only patch 1's centre
    assert row[pad + 10] == pytest.approx(5.0)  # only patch 2's centre (patch 1 border there)
    assert row[pad + 20] == pytest.approx(3.0)  # both centres: average
    assert row[pad + 55] == pytest.approx(1.0)  # border of patch 1 only: plain average = 1
    assert row[0] == pytest.approx(5.0)  # border of patch 2 only


# ----------------------------------------------------------------------------- MODEL-011


def np_kernel(sigma: float) -> np.ndarray:
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    k = k / k.sum()
    return np.outer(k, k)


@pytest.mark.spec("MODEL-011")
@pytest.mark.parametrize(
    ("sigma", "mask", "gridsize"), [(0.0, False, 1), (0.0, True, 2), (0.8, False, 2)]
)
def test_forward_chain_against_numpy(sigma: float, mask: bool, gridsize: int) -> None:
    model = make(small(gridsize=gridsize, gaussian_smoothing_sigma=sigma, probe_mask=mask))
    with torch.no_grad():
        model.log_scale.fill_(math.log(2.5))
    store = capture_heads(model)
    x, pos = inputs(model, b=2)
    with torch.no_grad():
        out = model(x, pos)
    np.testing.assert_allclose(store["x"].numpy(), x.numpy() / 2.5, rtol=1e-6)
    # canvas: merge of A exp(i phi) (object_big), obj = its centre, patches = extraction
    patches = (store["amp"] * torch.exp(1j * store["phase"].double())).numpy()
    canvas = np.stack([np_merge(patches[b], pos[b].numpy(), model.padded_size) for b in range(2)])
    s = (model.padded_size - 64) // 2
    np.testing.assert_allclose(out.obj.numpy(), canvas[:, s : s + 64, s : s + 64], atol=3e-5)
    for b in range(2):
        for c in range(model.C):
            x_c, y_c = pos[b, c].numpy()
            ext = np_shift(canvas[b], float(x_c), float(y_c))[s : s + 64, s : s + 64]
            np.testing.assert_allclose(out.obj_patches[b, c].numpy(), ext, atol=3e-5)
    # exit wave and far field, independently of the model's physics
    wave = out.obj_patches.numpy().astype(np.complex128) * model.probe.detach().numpy()
    if sigma:
        k = np_kernel(sigma)
        smooth = np.empty_like(wave)
        for idx in np.ndindex(wave.shape[:2]):
            re = ndimage.convolve(wave[idx].real, k, mode="mirror")
            im = ndimage.convolve(wave[idx].imag, k, mode="mirror")
            smooth[idx] = re + 1j * im
        wave = smooth
    if mask:
        i = np.arange(64)
        r = np.sqrt((i[:, None] - 32 + 0.5) ** 2 + (i[None, :] - 32 + 0.5) ** 2)
        assert int((r < 16).sum()) == 812
        wave = wave * (r < 16)
    amp = np.abs(np.fft.fftshift(np.fft.fft2(wave), axes=(-2, -1))) / 64 * 2.5
    assert out.pred_amp.dtype == torch.float32 and out.pred_intensity.dtype == torch.float32
    np.testing.assert_allclose(out.pred_amp.numpy(), amp, rtol=1e-4, atol=1e-5 * amp.max())
    np.testing.assert_allclose(
        out.pred_intensity.numpy(), out.pred_amp.numpy() ** 2, rtol=1e-6, atol=0
    )


# ----------------------------------------------------------------------------- MODEL-012


@pytest.mark.spec("MODEL-012")
def test_diffraction_to_obj_equals_forward_obj_and_ignores_probe() -> None:
    model = make(small(gridsize=2))
    x, pos = inputs(model)
    with torch.no_grad():
        obj = model.diffraction_to_obj(x, pos)
        full = model(x, pos)
        model.probe_ri.mul_(3.0).add_(0.5)
        obj2 = model.diffraction_to_obj(x, pos)
        full2 = model(x, pos)
    assert obj.dtype == torch.complex64 and tuple(obj.shape) == (2, 64, 64)
    assert torch.equal(obj, full.obj) and torch.equal(obj, obj2)
    assert not torch.allclose(full.pred_amp, full2.pred_amp)


# ----------------------------------------------------------------------------- MODEL-013


@pytest.mark.spec("MODEL-013")
@pytest.mark.parametrize("probe_scale", [4.0, 10.0])
def test_probe_normalized_and_stored_real(probe_scale: float) -> None:
    cfg = small(probe_scale=probe_scale)
    raw = gaussian_probe(64) * 7.0
    model = build_model(cfg, probe=raw, intensity_scale=1.0)
    i = np.arange(64)
    disk = np.sqrt((i[:, None] - 32 + 0.5) ** 2 + (i[None, :] - 32 + 0.5) ** 2) < 16
    expected = raw / (probe_scale * np.mean(np.abs(disk * raw)))
    np.testing.assert_allclose(model.probe.detach().numpy(), expected, rtol=1e-5, atol=1e-7)
    assert model.probe.dtype == torch.complex64
    assert model.probe_ri.dtype == torch.float32 and tuple(model.probe_ri.shape) == (64, 64, 2)
    assert not model.probe_ri.requires_grad
    given = build_model(cfg, probe=raw, intensity_scale=1.0, probe_normalized=True)
    np.testing.assert_array_equal(given.probe.detach().numpy(), raw)


@pytest.mark.spec("MODEL-013")
def test_trainable_probe_gets_gradient() -> None:
    model = make(small(), probe_trainable=True)
    x, pos = inputs(model, b=1)
    model(x, pos).pred_amp.sum().backward()
    assert model.probe_ri.grad is not None and torch.count_nonzero(model.probe_ri.grad) > 0


@pytest.mark.spec("MODEL-013")
@pytest.mark.parametrize("shape", [(32, 32), (64, 65), (2, 64, 64)])
def test_probe_shape_mismatch_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="probe") as err:
        build_model(small(), probe=np.ones(shape, np.complex64), intensity_scale=1.0)
    assert "(64, 64)" in str(err.value)


# ----------------------------------------------------------------------------- MODEL-014


@pytest.mark.spec("MODEL-014")
def test_log_scale_init_gradient_and_property() -> None:
    model = build_model(small(), probe=gaussian_probe(64), intensity_scale=988.21)
    assert model.log_scale.shape == () and model.log_scale.dtype == torch.float32
    assert float(model.log_scale.detach()) == pytest.approx(math.log(988.21), rel=1e-6)
    assert model.intensity_scale == pytest.approx(988.21, rel=1e-6)
    x, pos = inputs(model, b=1)
    model(x * 988.21, pos).pred_intensity.mean().backward()
    assert model.log_scale.grad is not None and float(model.log_scale.grad) != 0.0
    frozen = build_model(
        small(), probe=gaussian_probe(64), intensity_scale=2.0, intensity_scale_trainable=False
    )
    assert not frozen.log_scale.requires_grad


@pytest.mark.spec("MODEL-014")
def test_log_scale_divides_input_multiplies_output() -> None:
    model = make(small())
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        a = model(x, pos)
        model.log_scale.add_(math.log(4.0))
        b = model(x * 4.0, pos)
    # the network sees the same input, the amplitude is 4x larger
    assert torch.allclose(a.obj, b.obj, atol=1e-6)
    assert torch.allclose(b.pred_amp, 4.0 * a.pred_amp, rtol=1e-5, atol=1e-6)


@pytest.mark.spec("MODEL-014")
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_intensity_scale_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="intensity_scale"):
        build_model(small(), probe=gaussian_probe(64), intensity_scale=bad)


# ----------------------------------------------------------------------------- MODEL-015


@pytest.mark.spec("MODEL-015")
def test_state_dict_round_trip_weights_only() -> None:
    model = make(small(gridsize=2), probe_trainable=True)
    with torch.no_grad():
        model.log_scale.add_(0.3)
        model.probe_ri.mul_(1.5)
    state = model.state_dict()
    assert all(not t.is_complex() for t in state.values())
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    other = build_model(small(gridsize=2), probe=np.ones((64, 64)), intensity_scale=1.0)
    other.load_state_dict(loaded)
    x, pos = inputs(model)
    with torch.no_grad():
        a, b = model(x, pos), other(x, pos)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


# ----------------------------------------------------------------------------- MODEL-016


@pytest.mark.spec("MODEL-016")
def test_channels_last_and_bf16_autocast() -> None:
    model = make(small(gridsize=2))
    x, pos = inputs(model, b=1)
    with torch.no_grad():
        ref = model(x, pos)
        model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last), pos)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            bf = model(x.contiguous(memory_format=torch.channels_last), pos)
    for out in (cl, bf):
        assert out.obj.dtype == torch.complex64 and out.obj_patches.dtype == torch.complex64
        assert out.pred_amp.dtype == torch.float32 and out.pred_intensity.dtype == torch.float32
        assert all(bool(torch.isfinite(torch.view_as_real(t)).all()) for t in out[::3])
        assert bool(torch.isfinite(out.pred_amp).all())
    scale = float(ref.pred_amp.abs().max())
    assert float((cl.pred_amp - ref.pred_amp).abs().max()) <= 1e-4 * scale
    # bf16 convs: loose agreement only (8-bit mantissa)
    assert float((bf.pred_amp - ref.pred_amp).abs().max()) <= 0.1 * scale


# ----------------------------------------------------------------------------- MODEL-017


@pytest.mark.spec("MODEL-017")
def test_bad_inputs_raise(default_model: torch.nn.Module) -> None:
    x = torch.rand(2, 1, 64, 64)
    with pytest.raises(ValueError, match=r"^x has shape \(2, 4, 64, 64\)"):
        default_model(torch.rand(2, 4, 64, 64), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match=r"^x has shape \(64, 64\)"):
        default_model.diffraction_to_obj(torch.rand(64, 64), torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match=r"^positions has shape \(2, 2\)"):
        default_model(x, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^positions has shape \(2, 1, 1, 2\)"):
        default_model.diffraction_to_obj(x, torch.zeros(2, 1, 1, 2))


@pytest.mark.spec("MODEL-017")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("object_big", "yes"),
        ("probe_mask", 1),
        ("gridsize", 0),
        ("probe_scale", 0.0),
        ("gaussian_smoothing_sigma", -1.0),
    ],
)
def test_bad_config_fields_raise(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ModelConfig.{field}"):
        build_model(small(**{field: value}), probe=gaussian_probe(64), intensity_scale=1.0)


# ----------------------------------------------------------------------------- MODEL-019


@pytest.mark.spec("MODEL-019")
@pytest.mark.parametrize("seed", range(4))
def test_extract_merge_round_trip_integer_positions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p, c = 64, 82, 9  # gridsize 3
    canvas = (rng.normal(size=(1, p, p)) + 1j * rng.normal(size=(1, p, p))).astype(np.complex64)
    pos = rng.integers(-8, 9, size=(1, c, 2)).astype(np.float32)
    patches = extract_patches(torch.from_numpy(canvas), torch.from_numpy(pos), n)
    merged = merge_patches(patches, torch.from_numpy(pos), p).numpy()[0]
    covered = np.zeros((p, p), bool)
    s = (p - n) // 2
    for x, y in pos[0].astype(int):
        covered[s - y : s - y + n, s - x : s - x + n] = True
    np.testing.assert_allclose(merged[covered], canvas[0][covered], atol=TRANSLATE_ATOL)
    assert np.abs(merged[~covered]).max(initial=0.0) <= TRANSLATE_ATOL
