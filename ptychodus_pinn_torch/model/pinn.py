"""The PtychoPINN module: generator, object merge, probe illumination and far-field model.

Forward chain (upstream TF autoencoder, reference §5.1, in channels-first layout):

1. ``x / exp(log_scale)`` (upstream ``IntensityScaler``);
2. generator (``ModelConfig.architecture``, ``model/generators``) -> two real heads
   ``(B, nf, N, N)``: amplitude ``A`` and phase ``phi`` (object ``O = A exp(i phi)``) or real
   and imaginary part (``real_imag`` output mode);
3. ``object_big``: merge the nf = C patches onto a ``(B, P, P)`` canvas with ``-positions``;
   otherwise zero-pad the single patch to ``P``;
4. centre ``N x N`` of the canvas -> ``obj`` (upstream ``trimmed_obj``);
5. extract one patch per channel with ``+positions`` -> ``obj_patches (B, C, N, N)``;
6. multiply by the probe, optional 3x3 Gaussian smoothing, optional hard disk mask;
7. far-field amplitude ``|FFT|/N`` (fftshifted) -> ``(B, C, N, N)``;
8. ``exp(log_scale) * amplitude`` -> ``pred_amp``; ``pred_amp**2`` -> ``pred_intensity``.

The convolutions may run in bfloat16 under autocast and in channels_last memory format; every
complex and FFT step runs in float32 / complex64 with autocast disabled.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch.model.generators import (
    build_generator,
    generator_settings,
    heads_to_complex,
)
from ptychodus_pinn_torch.model.generators.cnn import (
    check_activation,
    check_filters_scale,
    check_n,
)
from ptychodus_pinn_torch.model.ops import (
    extract_patches,
    merge_patches,
    pad_to_canvas,
    padded_size,
    trim_canvas,
)
from ptychodus_pinn_torch.physics import (
    disk_mask,
    gaussian_smooth,
    normalize_probe,
    pad_and_diffract,
)

#: Fields of the TF-style spec ModelConfig that the module reads.
CONFIG_FIELDS: tuple[str, ...] = (
    "N",
    "gridsize",
    "n_filters_scale",
    "amp_activation",
    "object_big",
    "probe_big",
    "probe_mask",
    "pad_object",
    "probe_scale",
    "gaussian_smoothing_sigma",
)
#: Fields read when present (the generator registry; absent = upstream default).
GENERATOR_FIELDS: tuple[str, ...] = (
    "architecture", "cnn_output_mode", "generator_output_mode", "fno_modes", "fno_width",
    "fno_blocks", "fno_cnn_blocks", "cbam_encoder", "cbam_bottleneck", "cbam_decoder",
    "eca_encoder", "eca_decoder",
)


class ModelOutput(NamedTuple):
    """What ``PtychoPINN.forward`` returns (a tuple, so DDP and ``torch.jit`` handle it).

    - ``obj``: ``(B, N, N)`` complex64, merged object, centre of the canvas (``trimmed_obj``);
    - ``pred_amp``: ``(B, C, N, N)`` float32, predicted amplitude times ``exp(log_scale)``;
    - ``pred_intensity``: ``(B, C, N, N)`` float32, ``pred_amp ** 2``;
    - ``obj_patches``: ``(B, C, N, N)`` complex64, the object patch each channel's probe sees.
    """

    obj: torch.Tensor
    pred_amp: torch.Tensor
    pred_intensity: torch.Tensor
    obj_patches: torch.Tensor


def _field(cfg: Any, name: str) -> Any:
    if not hasattr(cfg, name):
        raise ValueError(
            f"model config {type(cfg).__name__} has no field {name!r}; pass a "
            "ptychodus_pinn_torch.config.spec.ModelConfig (fields: "
            + ", ".join(CONFIG_FIELDS)
            + ")"
        )
    return getattr(cfg, name)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"ModelConfig.{name} = {value!r} must be True or False")
    return bool(value)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"ModelConfig.{name} = {value!r} must be a positive integer")
    return int(value)


def _check_real(name: str, value: Any, *, positive: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    bad = not math.isfinite(number) or (number <= 0 if positive else number < 0)
    if bad:
        need = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"ModelConfig.{name} = {value!r} must be {need}")
    return number


def _probe_tensor(probe: Any, n: int) -> torch.Tensor:
    """``probe`` (array-like or tensor, (N, N) or (1, N, N)) -> ``(N, N)`` complex64 tensor."""
    if isinstance(probe, torch.Tensor):
        tensor = probe.detach().to("cpu")
    else:
        tensor = torch.from_numpy(np.array(probe))
    if tensor.ndim == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tuple(tensor.shape) != (n, n):
        raise ValueError(
            f"probe has shape {tuple(tensor.shape)}; the model needs one ({n}, {n}) complex "
            f"probe for ModelConfig.N = {n} (pass the first mode, resampled to N x N)"
        )
    tensor = tensor.to(torch.complex64)
    if not bool(torch.isfinite(torch.view_as_real(tensor)).all()):
        raise ValueError("probe contains NaN or infinite values; pass a finite complex probe")
    return tensor


class PtychoPINN(nn.Module):
    """Physics-informed PtychoPINN network (upstream TF ``autoencoder`` and ``diffraction_to_obj``).

    Attributes:
        config: the spec ModelConfig it was built from.
        N: patch side; C: channels per group (``gridsize**2``); padded_size: canvas side P.
        generator: the network of ``config.architecture`` (``cnn``: encoder and two decoders).
        probe_ri: ``(N, N, 2)`` float32 parameter holding the normalized probe as
            ``[real, imag]`` (trainable iff ``probe_trainable``); ``probe`` is its complex view.
        log_scale: scalar float32 parameter, ``log(intensity_scale)``, trainable iff
            ``intensity_scale_trainable``.
    """

    def __init__(
        self,
        config: Any,
        probe: Any,
        intensity_scale: float,
        *,
        probe_trainable: bool = False,
        intensity_scale_trainable: bool = True,
        probe_normalized: bool = False,
    ) -> None:
        super().__init__()
        n = check_n(_field(config, "N"))
        gridsize = _check_positive_int("gridsize", _field(config, "gridsize"))
        n_filters_scale = check_filters_scale(_field(config, "n_filters_scale"))
        amp_activation = check_activation(_field(config, "amp_activation"))
        object_big = _check_bool("object_big", _field(config, "object_big"))
        probe_big = _check_bool("probe_big", _field(config, "probe_big"))
        use_probe_mask = _check_bool("probe_mask", _field(config, "probe_mask"))
        pad_object = _check_bool("pad_object", _field(config, "pad_object"))
        probe_scale = _check_real("probe_scale", _field(config, "probe_scale"), positive=True)
        sigma = _check_real(
            "gaussian_smoothing_sigma", _field(config, "gaussian_smoothing_sigma"), positive=False
        )
        scale = _check_real_scale(intensity_scale)

        self.config = config
        self.N = n
        self.C = gridsize * gridsize
        self.padded_size = padded_size(n, gridsize)
        self.object_big = object_big
        self.smoothing_sigma = sigma
        self.use_probe_mask = use_probe_mask
        settings = generator_settings(
            config,
            n=n,
            channels=self.C,
            out_channels=self.C if object_big else 1,
            n_filters_scale=n_filters_scale,
            amp_activation=amp_activation,
            pad_object=pad_object,
            probe_big=probe_big,
        )
        self.architecture = str(getattr(config, "architecture", "cnn"))
        self.generator = build_generator(self.architecture, settings)
        probe_t = _probe_tensor(probe, n)
        if not probe_normalized:
            probe_t = normalize_probe(probe_t, probe_scale)
        self.probe_ri = nn.Parameter(
            torch.view_as_real(probe_t).clone().contiguous(), requires_grad=bool(probe_trainable)
        )
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(scale), dtype=torch.float32),
            requires_grad=bool(intensity_scale_trainable),
        )
        self.register_buffer("probe_disk", disk_mask(n), persistent=False)

    # ------------------------------------------------------------------ properties
    @property
    def probe(self) -> torch.Tensor:
        """``(N, N)`` complex64 view of the normalized probe (differentiable when trainable)."""
        return torch.view_as_complex(self.probe_ri)

    @property
    def intensity_scale(self) -> float:
        """``exp(log_scale)`` as a Python float (photon-count scale ``s``, reference §3.2)."""
        return float(torch.exp(self.log_scale.detach()).item())

    # ------------------------------------------------------------------ pieces
    def _check_inputs(
        self, x: torch.Tensor, positions: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        expected = ("B", self.C, self.N, self.N)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected[1:]:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"x has shape {shape}; expected (B, C, N, N) = (B, {self.C}, {self.N}, {self.N}) "
                "float32 diffraction amplitudes X_full * intensity_scale, channels first"
            )
        if not x.is_floating_point():
            raise ValueError(f"x has dtype {x.dtype}; expected float32 amplitudes")
        if positions is None:
            positions = torch.zeros(x.shape[0], self.C, 2, device=x.device)
        if not isinstance(positions, torch.Tensor) or tuple(positions.shape) != (
            x.shape[0],
            self.C,
            2,
        ):
            shape = tuple(positions.shape) if isinstance(positions, torch.Tensor) else positions
            raise ValueError(
                f"positions has shape {shape}; expected (B, C, 2) = ({x.shape[0]}, {self.C}, 2) "
                "float32 [x, y] pixel offsets (coords_relative, channels first)"
            )
        return x, positions.to(device=x.device, dtype=torch.float32)

    def _canvas(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Network object on the padded canvas: ``(B, P, P)`` complex64."""
        first, second = self.generator(x / torch.exp(self.log_scale).to(x.dtype))
        patches = heads_to_complex(first, second, self.generator.output_mode)  # (B, nf, N, N)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if self.object_big:
                return merge_patches(patches, positions, self.padded_size)
            return pad_to_canvas(patches[:, 0], self.padded_size)

    def illuminate(
        self, obj_patches: torch.Tensor, probe: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Exit waves ``(B, C, N, N)`` complex64 = probe x patches, smoothed and masked.

        Upstream ``ProbeIllumination``: multiply by the probe, then the 3x3 complex Gaussian
        filter when ``gaussian_smoothing_sigma != 0``, then the hard disk mask when
        ``probe_mask``.
        """
        b, c, n = obj_patches.shape[0], obj_patches.shape[1], self.N
        waves = obj_patches * (self.probe if probe is None else probe)
        if self.smoothing_sigma != 0:
            waves = gaussian_smooth(waves.reshape(b * c, n, n), self.smoothing_sigma).reshape(
                b, c, n, n
            )
        if self.use_probe_mask:
            waves = waves * self.probe_disk
        return waves

    # ------------------------------------------------------------------ public API
    def diffraction_to_obj(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference: ``x (B, C, N, N)`` float32 = X_full * s, ``positions (B, C, 2)`` float32
        ``[x, y]`` pixels (None = zeros) -> merged object ``(B, N, N)`` complex64.

        The probe is not involved (upstream ``diffraction_to_obj``).
        """
        x, positions = self._check_inputs(x, positions)
        canvas = self._canvas(x, positions)
        return trim_canvas(canvas, self.N)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor | None = None,
        probe: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Training forward pass (upstream ``autoencoder``).

        Args:
            x: ``(B, C, N, N)`` float32 diffraction amplitudes ``X_full * intensity_scale``.
            positions: ``(B, C, 2)`` float32 ``coords_relative`` ``[x, y]`` pixels (None =
                zeros).
            probe: None (the model's probe), or ``(B, 1, N, N)`` complex64 normalized probes,
                one per sample (training over several scans with their own probes, ENG-183).

        Returns:
            ``ModelOutput(obj (B, N, N) c64, pred_amp (B, C, N, N) f32,
            pred_intensity (B, C, N, N) f32, obj_patches (B, C, N, N) c64)``.
        """
        x, positions = self._check_inputs(x, positions)
        if probe is not None and tuple(probe.shape) != (x.shape[0], 1, self.N, self.N):
            raise ValueError(
                f"probe has shape {tuple(probe.shape)}; expected (B, 1, N, N) = "
                f"({x.shape[0]}, 1, {self.N}, {self.N}) normalized complex probes, or None"
            )
        canvas = self._canvas(x, positions)
        with torch.autocast(device_type=x.device.type, enabled=False):
            obj = trim_canvas(canvas, self.N)
            obj_patches = extract_patches(canvas, positions, self.N)
            waves = self.illuminate(obj_patches, probe)
            amplitude = pad_and_diffract(waves).to(torch.float32)
            pred_amp = torch.exp(self.log_scale) * amplitude
            return ModelOutput(obj, pred_amp, pred_amp * pred_amp, obj_patches)

    def n_network_weights(self) -> int:
        """Trainable real weights of the generator (excludes the probe and ``log_scale``)."""
        return sum(p.numel() for p in self.generator.parameters() if p.requires_grad)


def _check_real_scale(intensity_scale: Any) -> float:
    try:
        value = float(intensity_scale)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"intensity_scale = {intensity_scale!r} must be a finite number > 0 "
            "(sqrt(nphotons) / (N/2) from data.intensity_scale, reference §3.2)"
        )
    return value


def build_model(
    cfg: Any,
    *,
    probe: Any,
    intensity_scale: float,
    probe_trainable: bool = False,
    intensity_scale_trainable: bool = True,
    probe_normalized: bool = False,
) -> PtychoPINN:
    """Build the PtychoPINN module from a spec ``ModelConfig``.

    Args:
        cfg: ``ptychodus_pinn_torch.config.spec.ModelConfig`` (or any object with its fields
            N, gridsize, n_filters_scale, amp_activation, object_big, probe_big, probe_mask,
            pad_object, probe_scale, gaussian_smoothing_sigma).
        probe: ``(N, N)`` complex probe (numpy array or tensor). It is divided by
            ``probe_scale * mean|disk(N/4) * probe|`` (``physics.normalize_probe``) unless
            ``probe_normalized`` is True.
        intensity_scale: initial ``s`` (> 0); ``log_scale`` starts at ``log(s)``.
        probe_trainable: make the probe a trainable parameter (2 real weights per pixel).
        intensity_scale_trainable: make ``log_scale`` trainable (upstream default True).
        probe_normalized: the probe is already normalized; store it as given.

    Raises:
        ValueError: unsupported N, unknown activation, bad field values, bad probe shape or
            non-positive intensity_scale; the message names the field and the fix.
    """
    return PtychoPINN(
        cfg,
        probe,
        intensity_scale,
        probe_trainable=probe_trainable,
        intensity_scale_trainable=intensity_scale_trainable,
        probe_normalized=probe_normalized,
    )
