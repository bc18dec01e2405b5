"""Bring a model trained by upstream's TensorFlow PtychoPINN into our ``cnn`` generator.

The Keras graph (``engine.keras_archive``) is walked to give every Conv2D its role, from the
structure alone (reference §5.1): the convolutions feeding both heads form the encoder; the
layer ``obj`` combines the amplitude head (first input) and the phase head (second); in a head,
the convolution feeding the activation layer ``amp``/``phi`` is the centre convolution (with
``pad_object``), the other sink is the border convolution of ``probe.big``, their common
ancestors are the decoder blocks. Chains are ordered by how many convolutions precede each one.
N and C come from the input layer ``input`` (``(None, N, N, C)``, gridsize = sqrt(C)), the
amplitude activation from layer ``amp``, ``n_filters_scale`` from the first encoder width, and
``object.big`` from the heads' output channels (C or 1). Every kernel shape is checked against
the network built from those settings before anything is copied; Keras' HWIO kernels become
torch's OIHW by a transpose (both are cross-correlations with symmetric 'same' padding).

The intensity scale is data-independent upstream: ``sqrt(nphotons) / (N/2)`` from
``nphotons``, else the archive's ``model.h5`` attribute (under Keras 3 the trainable
``log_scale`` is an untracked tf.Variable, so its initial value is what the model used).

The probe is the one saved with the autoencoder's ``ProbeIllumination`` layer when the archive
holds it (Keras 2 saves it; ``engine.keras_archive``), kept exactly as upstream normalized it
(``probe_scale`` is set to ``1 / mean|disk * P|`` so that our normalization is the identity);
a probe passed by the caller (a scan's ``probeGuess``) overrides it and is normalized as ours.
Keras 3 archives save no probe: then the caller must pass one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.engine.archive.format import ArchiveError, ModelBundle
from ptychodus_pinn_torch.engine.keras_archive import KerasModel, TFArchive, read_tf_archive
from ptychodus_pinn_torch.model import build_model
from ptychodus_pinn_torch.model.generators.cnn import widths_for

#: upstream ``amp_activation`` names as they appear in the ``amp`` layer's config.
ACTIVATION_NAMES = {"sigmoid": "sigmoid", "swish": "swish", "silu": "swish",
                    "softplus": "softplus", "relu": "relu"}


@dataclass(frozen=True)
class HeadRoles:
    """The Conv2D layer names of one decoder head, in our module order."""

    blocks: tuple[str, ...]
    centre: str | None
    border_up: tuple[str, ...]
    border: str | None
    full_up: tuple[str, ...]
    full: str | None


@dataclass(frozen=True)
class ImportedNetwork:
    """What the Keras graph says: the model settings and each Conv2D's role."""

    model_config: ModelConfig
    encoder: tuple[str, ...]
    amp: HeadRoles
    phase: HeadRoles


def _conv_ancestors(model: KerasModel) -> dict[str, set[str]]:
    """Layer name -> names of the Conv2D layers among it and its ancestors."""
    by_name = {layer.name: layer for layer in model.layers}
    memo: dict[str, set[str]] = {}

    def visit(name: str, stack: frozenset[str]) -> set[str]:
        if name in memo:
            return memo[name]
        if name in stack:
            raise ArchiveError(f"the Keras graph has a cycle through {name!r}")
        layer = by_name.get(name)
        found: set[str] = set()
        if layer is not None:
            if layer.class_name == "Conv2D":
                found.add(name)
            for parent in layer.inputs:
                found |= visit(parent, stack | {name})
        memo[name] = found
        return found

    for layer in model.layers:
        visit(layer.name, frozenset())
    return memo


def _head(
    convs: set[str], act_name: str, model: KerasModel, anc: dict[str, set[str]], n_blocks: int,
) -> HeadRoles:
    """The roles of one head's convolutions (``convs``), see the module docstring."""
    act = model.layer(act_name)
    if act is None:
        raise ArchiveError(f"the Keras model has no activation layer {act_name!r}")
    feeding = [c for c in act.inputs if c in convs]
    if len(feeding) != 1:
        raise ArchiveError(f"layer {act_name!r} is not fed by exactly one head convolution")
    act_conv = feeding[0]
    order = lambda names: tuple(sorted(names, key=lambda c: len(anc[c])))  # noqa: E731
    sinks = [c for c in convs if not any(c in anc[o] and o != c for o in convs)]
    if len(sinks) == 2 and act_conv in sinks:
        border = next(c for c in sinks if c != act_conv)
        blocks = (anc[act_conv] & convs) - {act_conv}
        border_up = (anc[border] & convs) - blocks - {border}
        roles = HeadRoles(order(blocks), act_conv, order(border_up), border, (), None)
    elif sinks == [act_conv] and len(convs) == 2 * n_blocks + 1:
        roles = HeadRoles(order(convs - {act_conv}), act_conv, (), None, (), None)
    elif sinks == [act_conv] and len(convs) == 2 * n_blocks + 3:
        chain = order(convs - {act_conv})
        roles = HeadRoles(chain[: 2 * n_blocks], None, (), None, chain[2 * n_blocks:], act_conv)
    else:
        raise ArchiveError(
            f"the {act_name!r} head has {len(convs)} convolutions in a layout that is not "
            "upstream's create_decoder_last; only upstream's TF PtychoPINN can be imported"
        )
    if len(roles.blocks) != 2 * n_blocks or (roles.border and len(roles.border_up) != 2):
        raise ArchiveError(f"the {act_name!r} head does not have upstream's decoder depth")
    return roles


def _input_shape(model: KerasModel) -> tuple[int, int]:
    layer = model.layer("input")
    if layer is None:
        layer = next((x for x in model.layers if x.class_name == "InputLayer"), None)
    shape = None if layer is None else (
        layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
    )
    if not isinstance(shape, list) or len(shape) != 4 or shape[1] != shape[2]:
        raise ArchiveError(f"the Keras model's input is not (None, N, N, C): {shape}")
    return int(shape[1]), int(shape[3])


def analyse(model: KerasModel) -> ImportedNetwork:
    """The settings and conv roles of an upstream TF PtychoPINN Keras model."""
    n, channels = _input_shape(model)
    gridsize = math.isqrt(channels)
    if gridsize * gridsize != channels:
        raise ArchiveError(f"input has {channels} channels, not gridsize**2")
    unit = widths_for(n, 1)
    obj = model.layer("obj")
    if obj is None or len(obj.inputs) != 2:
        raise ArchiveError("the Keras model has no layer 'obj' combining amplitude and phase")
    anc = _conv_ancestors(model)
    amp_all, phase_all = anc[obj.inputs[0]], anc[obj.inputs[1]]
    encoder = amp_all & phase_all
    if len(encoder) != 2 * len(unit.encoder):
        raise ArchiveError(
            f"the encoder has {len(encoder)} convolutions; upstream's has "
            f"{2 * len(unit.encoder)} at N = {n}"
        )
    enc = tuple(sorted(encoder, key=lambda c: len(anc[c])))
    first = model.layer(enc[0])
    assert first is not None
    filters = int(first.config.get("filters", 0))
    scale = filters // unit.encoder[0]
    if scale < 1 or scale * unit.encoder[0] != filters:
        raise ArchiveError(f"first encoder width {filters} is not a multiple of {unit.encoder[0]}")
    amp = _head(amp_all - encoder, "amp", model, anc, len(unit.decoder))
    phase = _head(phase_all - encoder, "phi", model, anc, len(unit.decoder))
    act_layer = model.layer("amp")
    assert act_layer is not None
    act_name = act_layer.config.get("activation_name", act_layer.config.get("activation"))
    if act_name not in ACTIVATION_NAMES:
        raise ArchiveError(f"amplitude activation {act_name!r} is not one of upstream's")
    last = model.layer(amp.centre or amp.full or "")
    out_channels = int(last.config.get("filters", 0)) if last is not None else 0
    if out_channels not in (1, channels):
        raise ArchiveError(f"heads emit {out_channels} channels; expected 1 or {channels}")
    config = ModelConfig(
        N=n, gridsize=gridsize, n_filters_scale=scale,
        amp_activation=ACTIVATION_NAMES[str(act_name)],
        object_big=out_channels == channels if channels > 1 else True,
        # without pad_object upstream ignores probe.big; keep its default (True) then
        probe_big=amp.border is not None or amp.full is not None, pad_object=amp.full is None,
    )
    return ImportedNetwork(config, enc, amp, phase)


def _targets(net: ImportedNetwork) -> dict[str, str]:
    """Keras Conv2D name -> our parameter prefix (``<prefix>.weight`` / ``.bias``)."""
    out = {}
    for i, name in enumerate(net.encoder):
        out[name] = f"generator.encoder.{i // 2}.{0 if i % 2 == 0 else 2}"
    for head, roles in (("amp_decoder", net.amp), ("phase_decoder", net.phase)):
        p = f"generator.{head}"
        for i, name in enumerate(roles.blocks):
            out[name] = f"{p}.blocks.{i // 2}.{0 if i % 2 == 0 else 2}"
        if roles.centre:
            out[roles.centre] = f"{p}.last.centre_conv"
        for i, name in enumerate(roles.border_up):
            out[name] = f"{p}.last.border_up.{0 if i == 0 else 2}"
        if roles.border:
            out[roles.border] = f"{p}.last.border_conv"
        for i, name in enumerate(roles.full_up):
            out[name] = f"{p}.last.full_up.{0 if i == 0 else 2}"
        if roles.full:
            out[roles.full] = f"{p}.last.full_conv"
    return out


#: what a user is told to pass when the archive saved no probe (CLI flag and ptychodus' way)
NO_PROBE_HINT = ("pass --probe SCAN.npz, a scan whose probeGuess the TF model was trained with")


def probe_scale_of(probe: np.ndarray) -> float:
    """``1 / mean|disk(N/4) * P|`` of an ``(N, N)`` probe normalized by upstream: the
    ``probe_scale`` under which our normalization leaves it unchanged."""
    from ptychodus_pinn_torch.physics.masks import disk_mask

    n = probe.shape[-1]
    mean = float(np.mean(np.abs(disk_mask(n).numpy() * probe)))
    if not (math.isfinite(mean) and mean > 0):
        raise ArchiveError("the archive's probe is zero inside the N/4 disk; "
                           + NO_PROBE_HINT)
    return 1.0 / mean


def import_tf_model(
    archive: TFArchive, probe: np.ndarray | None = None, *, nphotons: float | None = None
) -> ModelBundle:
    """Our model bundle with the TF model's weights.

    Args:
        archive: from :func:`~ptychodus_pinn_torch.engine.keras_archive.read_tf_archive`.
        probe: ``(N, N)`` complex probe the TF model was trained with (normalized as ours is);
            None takes the probe the archive saved (``archive.probe``, kept as stored).
        nphotons: photons per pattern: ``intensity_scale = sqrt(nphotons) / (N/2)``; None uses
            the archive's ``model.h5`` ``intensity_scale``.

    Raises:
        ArchiveError / ValueError: the graph or a kernel shape is not upstream's, no intensity
            scale is available, no probe is given or saved (the message names ``--probe``),
            or the probe does not match N.
    """
    net = analyse(archive.model)
    cfg = net.model_config
    if probe is None and archive.probe is None:
        raise ValueError(
            f"{archive.member}: the archive saved no probe (Keras 3 does not save upstream's "
            "ProbeIllumination variable; only the pickled params hold it, never read); "
            + NO_PROBE_HINT)
    from_archive = probe is None
    if from_archive:
        probe = archive.probe
        assert probe is not None
        if probe.shape == (cfg.N, cfg.N):
            cfg = replace(cfg, probe_scale=probe_scale_of(probe))
    if nphotons is not None:
        if not (math.isfinite(nphotons) and nphotons > 0):
            raise ValueError(f"--nphotons must be a number > 0, got {nphotons!r}")
        scale = math.sqrt(nphotons) / (cfg.N / 2)
    elif archive.intensity_scale is not None:
        scale = archive.intensity_scale
    else:
        raise ValueError(
            f"{archive.member} carries no intensity_scale (model.h5); pass --nphotons P, the "
            "photons per pattern the TF model was trained for (scale sqrt(P)/(N/2))"
        )
    probe = np.asarray(probe)
    if probe.shape != (cfg.N, cfg.N):
        raise ValueError(f"probe is {probe.shape}, the TF model needs ({cfg.N}, {cfg.N})")
    model = build_model(cfg, probe=probe, intensity_scale=scale, probe_normalized=from_archive)
    state = model.state_dict()
    targets = _targets(net)
    missing = sorted(
        k for k in state if k.startswith("generator.")
        and k.rsplit(".", 1)[0] not in set(targets.values())
    )
    if missing:
        raise ArchiveError(f"the TF model has no weights for {missing[:4]}")
    with torch.no_grad():
        for name, prefix in targets.items():
            kernel, bias = archive.model.conv_weights[name]
            weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            for key, value in ((f"{prefix}.weight", weight), (f"{prefix}.bias",
                                                              torch.from_numpy(bias))):
                if tuple(state[key].shape) != tuple(value.shape):
                    raise ArchiveError(
                        f"Keras layer {name!r} has shape {tuple(value.shape)} for our {key} "
                        f"{tuple(state[key].shape)}; the archive does not match its config"
                    )
                state[key].copy_(value)
    model.load_state_dict(state)
    return ModelBundle(
        model=model,
        model_config=cfg,
        intensity_scale=float(model.intensity_scale),
        probe=model.probe.detach().cpu().numpy().astype(np.complex64),
        extra={"imported_from": {"backend": "tensorflow", "member": archive.member,
                                 "intensity_scale_from": "nphotons" if nphotons else "model.h5",
                                 "nphotons": nphotons,
                                 "probe_from": (f"archive {archive.probe_member}"
                                                if from_archive else "given")}},
    )


def import_tf_archive(
    path: str | Path, probe: np.ndarray | None = None, *, nphotons: float | None = None
) -> ModelBundle:
    """:func:`import_tf_model` of the archive at ``path``."""
    return import_tf_model(read_tf_archive(path), probe, nphotons=nphotons)
