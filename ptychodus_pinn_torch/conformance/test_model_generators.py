"""Conformance tests of specs/MODEL.md MODEL-220..229: the generator registry (cnn, unet, fno),
the attention switches, the output modes and gridsize >= 2 for every generator."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config import bridge, legacy, spec
from ptychodus_pinn_torch.config import params as pt
from ptychodus_pinn_torch.engine.archive import ModelBundle, load_archive, save_archive
from ptychodus_pinn_torch.model import GENERATORS, build_model
from ptychodus_pinn_torch.model.generators import CBAM, ECA, heads_to_complex
from ptychodus_pinn_torch.model.generators.fno import SpectralConv2d

ATTENTION = ("cbam_encoder", "cbam_bottleneck", "cbam_decoder", "eca_encoder", "eca_decoder")


def probe(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    return np.exp(-(xx**2 + yy**2) / (2 * (n / 5) ** 2)).astype(np.complex64)


def make(**fields: object) -> torch.nn.Module:
    cfg = replace(spec.ModelConfig(), **fields)
    torch.manual_seed(0)
    return build_model(cfg, probe=probe(cfg.N), intensity_scale=3.0)


def inputs(c: int, b: int = 2, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, c, n, n, generator=g) * 3.0, (torch.rand(b, c, 2, generator=g) - 0.5) * 4


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- MODEL-220
@pytest.mark.spec("MODEL-220")
@pytest.mark.parametrize("arch", ["cnn", "unet", "fno"])
@pytest.mark.parametrize("object_big", [True, False])
def test_generator_contract(arch: str, object_big: bool) -> None:
    model = make(architecture=arch, gridsize=2, n_filters_scale=1, object_big=object_big,
                 fno_width=8, fno_modes=4) if arch == "fno" else make(
        architecture=arch, gridsize=2, n_filters_scale=1, object_big=object_big)
    x, _ = inputs(4)
    first, second = model.generator(x)
    nf = 4 if object_big else 1
    assert first.shape == second.shape == (2, nf, 64, 64)
    assert first.dtype == second.dtype == torch.float32
    patches = model.generator.patches(x)
    assert patches.shape == (2, nf, 64, 64) and patches.dtype == torch.complex64
    torch.testing.assert_close(patches, heads_to_complex(first, second,
                                                         model.generator.output_mode))


@pytest.mark.spec("MODEL-220")
def test_registry_names_match_the_config_lists() -> None:
    assert tuple(GENERATORS) == spec.ARCHITECTURES == pt.ARCHITECTURES == ("cnn", "unet", "fno")


@pytest.mark.spec("MODEL-220")
@pytest.mark.parametrize("bad", ["resnet", "ffno", "CNN"])
def test_unknown_architecture_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=r"ModelConfig\.architecture.*'cnn', 'unet', 'fno'"):
        make(architecture=bad)
    with pytest.raises(ValueError, match="architecture"):
        pt.ModelConfig(architecture=bad)
    with pytest.raises(ValueError, match="architecture"):
        spec.validate_model_config(spec.ModelConfig(architecture=bad))


# ----------------------------------------------------------------------------- MODEL-221
@pytest.mark.spec("MODEL-221")
def test_cnn_default_is_the_tf_network() -> None:
    model = make()
    assert model.architecture == "cnn" and model.generator.output_mode == "amp_phase"
    assert model.n_network_weights() == 2_331_772
    names = {k for k, _ in model.generator.named_parameters()}
    assert all(k.split(".")[0] in {"encoder", "amp_decoder", "phase_decoder"} for k in names)
    assert not any(isinstance(m, CBAM | ECA) for m in model.generator.modules())


# ----------------------------------------------------------------------------- MODEL-222
@pytest.mark.spec("MODEL-222")
def test_fields_travel_through_bridge_legacy_and_archive(tmp_path: Path) -> None:
    fields = dict(architecture="fno", fno_modes=6, fno_width=8, fno_blocks=2, fno_cnn_blocks=1,
                  generator_output_mode="amp_phase")
    mc = spec.ModelConfig(n_filters_scale=1, **fields)
    back = bridge.to_model_config(bridge.from_spec(mc).data, bridge.from_spec(mc).model)
    assert {k: getattr(back, k) for k in fields} == fields
    ptm = pt.ModelConfig(architecture="unet", cbam_decoder=True, cnn_output_mode="real_imag")
    sm = bridge.to_model_config(pt.DataConfig(), ptm)
    assert (sm.architecture, sm.cbam_decoder, sm.cnn_output_mode) == ("unet", True, "real_imag")
    flat = legacy.dataclass_to_legacy_dict(mc)
    assert flat["architecture"] == "fno" and flat["fno_modes"] == 6

    torch.manual_seed(0)
    model = build_model(mc, probe=probe(), intensity_scale=3.0)
    bundle = ModelBundle(model=model, model_config=mc, intensity_scale=3.0, probe=probe())
    loaded = load_archive(save_archive(tmp_path, bundle))
    assert loaded.model_config == mc and loaded.model.architecture == "fno"
    x, _ = inputs(1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.diffraction_to_obj(x),
                                   model.eval().diffraction_to_obj(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------- MODEL-223
@pytest.mark.spec("MODEL-223")
@pytest.mark.parametrize(("n", "s", "gridsize", "expected"), [
    (64, 2, 1, 2_628_988), (64, 1, 1, 660_124), (64, 2, 2, 2_644_336), (128, 2, 1, 5_399_644),
])
def test_unet_weight_counts(n: int, s: int, gridsize: int, expected: int) -> None:
    model = make(architecture="unet", N=n, n_filters_scale=s, gridsize=gridsize)
    assert model.n_network_weights() == expected
    cnn = make(N=n, n_filters_scale=s, gridsize=gridsize)
    widths = cnn.generator.widths
    # skips add enc[depth-j] input channels to up-block j >= 1 and enc[1] to decoder-last
    depth = len(widths.encoder)
    extra_in = [widths.encoder[depth - j] for j in range(1, len(widths.decoder))]
    extra = sum(9 * e * f for e, f in zip(extra_in, widths.decoder[1:], strict=True))
    extra += 9 * widths.encoder[1] * gridsize**2  # decoder-last centre conv -> nf = C outputs
    assert model.n_network_weights() - cnn.n_network_weights() == 2 * extra


@pytest.mark.spec("MODEL-223")
def test_unet_skip_carries_encoder_features() -> None:
    """Perturbing the input changes the unet output through the skip even when the bottleneck
    path is cut (its first up-block's weights zeroed); the cnn output then does not change."""
    x, _ = inputs(1, b=1)
    x2 = x.clone()
    x2[..., 24:40, 24:40] += 1.0
    for arch, changes in (("unet", True), ("cnn", False)):
        model = make(architecture=arch, n_filters_scale=1)
        with torch.no_grad():
            for head in (model.generator.amp_decoder, model.generator.phase_decoder):
                first = head.blocks[0]
                for p in first.parameters():
                    p.zero_()
            a = model.generator(x)[0]
            b = model.generator(x2)[0]
        assert bool((a - b).abs().max() > 1e-6) is changes


# ----------------------------------------------------------------------------- MODEL-224
@pytest.mark.spec("MODEL-224")
def test_fno_structure_and_weight_count() -> None:
    w, m, blocks, cnn_blocks, c = 8, 5, 3, 2, 4
    model = make(architecture="fno", gridsize=2, fno_width=w, fno_modes=m, fno_blocks=blocks,
                 fno_cnn_blocks=cnn_blocks)
    conv3 = 9 * w * w + w
    expected = (9 * c * w + w) + conv3  # lifter
    expected += blocks * (2 * w * w * m * m * 2 + conv3)  # spectral (2 row signs, re/im) + local
    expected += w * w + w  # 1x1 mix
    expected += cnn_blocks * conv3  # refiner
    expected += w * 2 * c + 2 * c  # head
    assert model.n_network_weights() == expected
    assert make(architecture="fno").n_network_weights() == 2_425_474
    assert model.generator.output_mode == "real_imag"


@pytest.mark.spec("MODEL-224")
def test_spectral_conv_matches_numpy() -> None:
    torch.manual_seed(3)
    layer = SpectralConv2d(3, 4)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        got = layer(x).numpy()
    wgt = torch.view_as_complex(layer.weight.detach()).numpy()  # (2, in, out, m, m)
    ft = np.fft.rfft2(x.numpy().astype(np.float64))
    out = np.zeros((2, 3, 16, 9), complex)
    out[:, :, :4, :4] = np.einsum("bixy,ioxy->boxy", ft[:, :, :4, :4], wgt[0])
    out[:, :, -4:, :4] = np.einsum("bixy,ioxy->boxy", ft[:, :, -4:, :4], wgt[1])
    np.testing.assert_allclose(got, np.fft.irfft2(out, s=(16, 16)), rtol=1e-4, atol=1e-5)


@pytest.mark.spec("MODEL-224")
def test_fno_support_and_modes_limit() -> None:
    model = make(architecture="fno", fno_width=4, fno_modes=4, probe_big=False)
    with torch.no_grad():
        first, second = model.generator(inputs(1)[0])
    assert float(first[..., :16, :].abs().max()) == 0.0 and float(first[..., 20:40, 20:40]
                                                                    .abs().max()) > 0
    with pytest.raises(ValueError, match=r"ModelConfig\.fno_modes = 33 .* 1\.\.32"):
        make(architecture="fno", fno_modes=33)


# ----------------------------------------------------------------------------- MODEL-225
@pytest.mark.spec("MODEL-225")
@pytest.mark.parametrize("arch", ["cnn", "unet"])
@pytest.mark.parametrize("switch", ATTENTION)
def test_attention_switch_inserts_blocks_where_it_says(arch: str, switch: str) -> None:
    model = make(architecture=arch, n_filters_scale=1, **{switch: True})
    gen = model.generator
    kind = CBAM if switch.startswith("cbam") else ECA
    where = {"encoder": gen.encoder, "bottleneck": gen.bottleneck,
             "decoder": torch.nn.ModuleList([gen.amp_decoder.blocks, gen.phase_decoder.blocks])}
    part = switch.split("_")[1]
    found = {k: sum(isinstance(m, kind) for m in mod.modules()) for k, mod in where.items()}
    n_enc, n_dec = len(gen.widths.encoder), 2 * len(gen.widths.decoder)
    assert found == {k: {"encoder": n_enc, "bottleneck": 1, "decoder": n_dec}[k] if k == part
                     else 0 for k in where}
    assert sum(isinstance(m, CBAM | ECA) for m in gen.modules()) == found[part]
    # in the encoder/decoder the block sits after the convs and right before the pool/upsample
    if part != "bottleneck":
        block = gen.encoder[0] if part == "encoder" else gen.amp_decoder.blocks[0]
        assert isinstance(block[-2], kind) and isinstance(block[-1], torch.nn.MaxPool2d
                                                          | torch.nn.Upsample)
    x, _ = inputs(1)
    out = model(x)
    assert bool(torch.isfinite(out.pred_amp).all())


@pytest.mark.spec("MODEL-225")
def test_cbam_and_eca_match_numpy() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 32, 9, 9)
    cbam, eca = CBAM(32), ECA()
    with torch.no_grad():
        got_c, got_e = cbam(x).numpy(), eca(x).numpy()
    xn = x.numpy().astype(np.float64)
    w1 = cbam.mlp[0].weight.detach().numpy()[:, :, 0, 0]
    b1 = cbam.mlp[0].bias.detach().numpy()
    w2 = cbam.mlp[2].weight.detach().numpy()[:, :, 0, 0]
    b2 = cbam.mlp[2].bias.detach().numpy()

    def sig(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    def mlp(v: np.ndarray) -> np.ndarray:
        return np.maximum(v @ w1.T + b1, 0) @ w2.T + b2

    gate = sig(mlp(xn.mean((2, 3))) + mlp(xn.max((2, 3))))[:, :, None, None]
    y = xn * gate
    pooled = np.stack([y.max(1), y.mean(1)], 1)  # (B, 2, H, W)
    k = cbam.spatial.weight.detach().numpy()[0]  # (2, 7, 7)
    padded = np.pad(pooled, ((0, 0), (0, 0), (3, 3), (3, 3)))
    sp = np.zeros((2, 9, 9))
    for r in range(9):
        for c in range(9):
            sp[:, r, c] = (padded[:, :, r:r + 7, c:c + 7] * k).sum((1, 2, 3))
    sp += float(cbam.spatial.bias.detach())
    np.testing.assert_allclose(got_c, y * sig(sp)[:, None], rtol=1e-4, atol=1e-5)
    ke = eca.conv.weight.detach().numpy()[0, 0]  # (3,)
    avg = np.pad(xn.mean((2, 3)), ((0, 0), (1, 1)))
    conv = np.stack([(avg[:, i:i + 3] * ke).sum(1) for i in range(32)], 1)
    np.testing.assert_allclose(got_e, xn * sig(conv)[:, :, None, None], rtol=1e-4, atol=1e-5)


@pytest.mark.spec("MODEL-225")
@pytest.mark.parametrize("switch", ATTENTION)
def test_attention_refused_for_fno(switch: str) -> None:
    pattern = rf"ModelConfig\.{switch} = True.*'fno'.*\['cnn', 'unet'\]"
    with pytest.raises(ValueError, match=pattern):
        make(architecture="fno", **{switch: True})


# ----------------------------------------------------------------------------- MODEL-226
@pytest.mark.spec("MODEL-226")
@pytest.mark.parametrize("arch", ["cnn", "unet"])
def test_real_imag_heads_of_the_cnns(arch: str) -> None:
    model = make(architecture=arch, n_filters_scale=1, cnn_output_mode="real_imag",
                 probe_big=False)
    with torch.no_grad():
        first, second = model.generator(inputs(1)[0] * 50)
    centre = (slice(None), slice(None), slice(16, 48), slice(16, 48))
    eps = 1e-6  # tanh saturates to +-1 in float32
    assert float(first[centre].min()) >= -0.8 - eps and float(first[centre].max()) <= 1.2 + eps
    assert float(second[centre].abs().max()) <= 1.2 + eps
    obj = model.generator.patches(inputs(1)[0])
    a, b = model.generator(inputs(1)[0])
    torch.testing.assert_close(obj, torch.complex(a, b))


@pytest.mark.spec("MODEL-226")
def test_fno_amp_phase_mode() -> None:
    model = make(architecture="fno", fno_width=4, fno_modes=4, generator_output_mode="amp_phase")
    a, p = model.generator(inputs(1)[0])
    assert float(a.min()) >= 0 and float(a.max()) <= 1  # sigmoid (spec default amp_activation)
    assert float(p.abs().max()) < math.pi
    torch.testing.assert_close(model.generator.patches(inputs(1)[0]), torch.polar(a, p))


# ----------------------------------------------------------------------------- MODEL-227
@pytest.mark.spec("MODEL-227")
@pytest.mark.parametrize(("arch", "field", "value", "pattern"), [
    ("cnn", "fno_modes", 8, r"ModelConfig\.fno_modes = 8 has no effect on architecture 'cnn'"),
    ("unet", "fno_width", 16, r"ModelConfig\.fno_width = 16 .*\['fno'\]"),
    ("cnn", "generator_output_mode", "amp_phase",
     r"ModelConfig\.generator_output_mode .* ModelConfig\.cnn_output_mode"),
    ("fno", "cnn_output_mode", "real_imag",
     r"ModelConfig\.cnn_output_mode .* ModelConfig\.generator_output_mode"),
])
def test_switches_an_architecture_cannot_honour_are_refused(
        arch: str, field: str, value: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make(architecture=arch, **{field: value})


# ----------------------------------------------------------------------------- MODEL-228
@pytest.mark.spec("MODEL-228")
@pytest.mark.parametrize("arch", ["cnn", "unet", "fno"])
@pytest.mark.parametrize("gridsize", [2, 3])
def test_gridsize_two_and_more_trains(arch: str, gridsize: int) -> None:
    """A few Adam steps on one batch at gridsize >= 2 lower the Poisson loss of every
    generator."""
    from ptychodus_pinn_torch.engine.losses import LossWeights, compute_loss

    extra = dict(fno_width=8, fno_modes=6, fno_blocks=2) if arch == "fno" else {}
    model = make(architecture=arch, gridsize=gridsize, n_filters_scale=1, **extra)
    c = gridsize * gridsize
    target_model = make(architecture="cnn", gridsize=gridsize, n_filters_scale=1)
    x, pos = inputs(c, b=2)
    with torch.no_grad():
        y = target_model(x, pos).pred_amp  # a consistent diffraction target
    out = model(y, pos)
    assert out.obj.shape == (2, 64, 64) and out.obj_patches.shape == (2, c, 64, 64)
    assert out.pred_amp.shape == (2, c, 64, 64)
    weights = LossWeights(nll=1.0, mae=0.0, realspace=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss, _ = compute_loss(model(y, pos), y, None, weights, supervised=False, positions=pos)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
