"""ptychodus settings groups of the PtychoPINN-PyTorch reconstructor library.

Four groups are created in ptychodus' :class:`~ptychodus.api.settings.SettingsRegistry`:
``PINNTorchModel``, ``PINNTorchTraining``, ``PINNTorchInference`` and ``PINNTorchExecution``.
Parameter names mirror ptychodus' TensorFlow PtychoPINN panel (``GridSize``, ``NumPhotons``,
...), so a user who knows that panel finds the same knobs; the group names differ from every
built-in group (``PtychoPINN*`` belong to the TensorFlow library, ``PtychoPINNTorch*`` to the
built-in ``PtychoPINN-Torch`` slot), because ``create_group`` refuses duplicates.

Everything the GUI panel needs is in :data:`PARAMETERS`: for each parameter its group, name,
kind, default, range and, for enumerated values, the ``choices`` a combo box offers. The live
parameter objects are attributes of :class:`SettingsGroup` instances, e.g.
``library.model_settings.grid_size`` (an ``IntegerParameter``).

Values reach the engine through :meth:`PINNTorchSettings.spec_values`, a dict of TensorFlow-style
spec field names (``gridsize``, ``nphotons``, ...) that ``config.bridge`` translates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ptychodus.api.parameters import Parameter, ParameterGroup
from ptychodus.api.settings import SettingsRegistry

__all__ = [
    "GROUP_NAMES",
    "PARAMETERS",
    "ParameterSpec",
    "PINNTorchSettings",
    "SettingsGroup",
    "parameters_of_group",
]

Kind = Literal["int", "real", "bool", "choice"]
Section = Literal["model", "training", "inference", "execution"]

GROUP_NAMES: Mapping[Section, str] = {
    "model": "PINNTorchModel",
    "training": "PINNTorchTraining",
    "inference": "PINNTorchInference",
    "execution": "PINNTorchExecution",
}


@dataclass(frozen=True)
class ParameterSpec:
    """One settings parameter: where it lives, its type, default, range and meaning.

    ``spec_field`` is the TensorFlow-style spec field (``ModelConfig``/``TrainingConfig``/
    ``InferenceConfig`` of upstream ``ptycho/config/config.py``) or, for the execution group,
    the key of the execution options; ``config.bridge`` translates it to the PyTorch configs.
    """

    section: Section
    name: str
    kind: Kind
    default: int | float | bool | str
    spec_field: str
    label: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def group(self) -> str:
        return GROUP_NAMES[self.section]

    @property
    def attribute(self) -> str:
        """Attribute name on :class:`SettingsGroup` (``GridSize`` -> ``grid_size``)."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", self.name).lower()


_p = ParameterSpec  # short name for the table below


# Defaults of the model and training groups are those of ptychodus' TensorFlow PtychoPINN panel
# (reference ptychopinn-upstream.md §1.3), which equal upstream ModelConfig/TrainingConfig (§6.1)
# except NumPhotons (panel 1e6, TrainingConfig 1e9; we follow the panel a ptychodus user knows).
PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model (upstream ModelConfig) ---
    _p("model", "GridSize", "int", 1, "gridsize", "Grid size", minimum=1, maximum=5,
       help="patterns per group along one side (gridsize**2 channels)"),
    _p("model", "NumFiltersScale", "int", 2, "n_filters_scale", "Filter scale", minimum=1,
       maximum=4, help="multiplier of the encoder/decoder widths"),
    _p("model", "AmpActivation", "choice", "sigmoid", "amp_activation", "Amplitude activation",
       choices=("sigmoid", "swish", "softplus", "relu")),
    _p("model", "ObjectBig", "bool", True, "object_big", "Object big",
       help="decode one object patch per channel and merge them"),
    _p("model", "ProbeBig", "bool", True, "probe_big", "Probe big"),
    _p("model", "ProbeMask", "bool", False, "probe_mask", "Probe mask"),
    _p("model", "PadObject", "bool", True, "pad_object", "Pad object"),
    _p("model", "ProbeScale", "real", 4.0, "probe_scale", "Probe scale", minimum=1e-6,
       help="probe normalization divisor (> 0)"),
    _p("model", "GaussianSmoothingSigma", "real", 0.0, "gaussian_smoothing_sigma",
       "Gaussian smoothing sigma", minimum=0.0),
    # generator registry (specs/MODEL.md MODEL-220..227); defaults = the TF network
    _p("model", "Architecture", "choice", "cnn", "architecture", "Architecture",
       choices=("cnn", "unet", "fno"),
       help="cnn: the TF PtychoPINN network; unet: cnn with skip connections; fno: Fourier "
            "neural operator"),
    _p("model", "CNNOutputMode", "choice", "amp_phase", "cnn_output_mode", "CNN output mode",
       choices=("amp_phase", "real_imag"), help="heads of cnn/unet: amplitude+phase or re+im"),
    _p("model", "GeneratorOutputMode", "choice", "real_imag", "generator_output_mode",
       "FNO output mode", choices=("amp_phase", "real_imag"), help="heads of fno"),
    _p("model", "FNOModes", "int", 12, "fno_modes", "FNO modes", minimum=1, maximum=128,
       help="Fourier modes kept per axis and sign (fno only, <= N/2)"),
    _p("model", "FNOWidth", "int", 32, "fno_width", "FNO width", minimum=1, maximum=512,
       help="hidden channels (fno only)"),
    _p("model", "FNOBlocks", "int", 4, "fno_blocks", "FNO blocks", minimum=1, maximum=64,
       help="spectral blocks (fno only)"),
    _p("model", "FNOCNNBlocks", "int", 2, "fno_cnn_blocks", "FNO refiner blocks", minimum=1,
       maximum=64, help="conv3x3+GELU refiner blocks after the spectral blocks (fno only)"),
    _p("model", "CBAMEncoder", "bool", False, "cbam_encoder", "CBAM in encoder",
       help="channel+spatial attention in every encoder block (cnn/unet)"),
    _p("model", "CBAMBottleneck", "bool", False, "cbam_bottleneck", "CBAM at bottleneck",
       help="attention on the encoder output (cnn/unet)"),
    _p("model", "CBAMDecoder", "bool", False, "cbam_decoder", "CBAM in decoders",
       help="attention in every decoder up-block (cnn/unet)"),
    _p("model", "ECAEncoder", "bool", False, "eca_encoder", "ECA in encoder",
       help="efficient channel attention in every encoder block (cnn/unet)"),
    _p("model", "ECADecoder", "bool", False, "eca_decoder", "ECA in decoders",
       help="efficient channel attention in every decoder up-block (cnn/unet)"),
    # --- training (upstream TrainingConfig) ---
    _p("training", "NumPhotons", "real", 1e6, "nphotons", "Photons per pattern", minimum=1e-6,
       help="expected photon count per diffraction pattern (> 0)"),
    _p("training", "BatchSize", "choice", "16", "batch_size", "Batch size",
       choices=("1", "2", "4", "8", "16", "32", "64", "128", "256", "512"),
       help="a positive power of two"),
    _p("training", "NumEpochs", "int", 50, "nepochs", "Epochs", minimum=1, maximum=100000),
    _p("training", "MAEWeight", "real", 0.0, "mae_weight", "MAE weight", minimum=0.0,
       maximum=1.0),
    _p("training", "NLLWeight", "real", 1.0, "nll_weight", "Poisson NLL weight", minimum=0.0,
       maximum=1.0),
    _p("training", "RealspaceMAEWeight", "real", 0.0, "realspace_mae_weight",
       "Real-space MAE weight", minimum=0.0, maximum=1.0),
    _p("training", "RealspaceWeight", "real", 0.0, "realspace_weight", "Real-space weight",
       minimum=0.0, maximum=1.0),
    _p("training", "PositionsProvided", "bool", True, "positions_provided",
       "Positions provided"),
    _p("training", "ProbeTrainable", "bool", False, "probe_trainable", "Probe trainable"),
    _p("training", "IntensityScaleTrainable", "bool", True, "intensity_scale_trainable",
       "Intensity scale trainable"),
    _p("training", "NumGroups", "int", 512, "n_groups", "Groups", minimum=1,
       help="number of scan-point groups drawn for training"),
    _p("training", "NeighborCount", "int", 4, "neighbor_count", "Neighbour count", minimum=1,
       help="nearest neighbours a group is drawn from (gridsize > 1)"),
    # --- inference (upstream InferenceConfig + ptychodus TF panel) ---
    _p("inference", "NumNearestNeighbors", "int", 7, "neighbor_count", "Nearest neighbours",
       minimum=1, help="nearest neighbours a group is drawn from (gridsize > 1)"),
    # No NumGroups/NumSamples here: inference reconstructs one group per scan point, so that
    # every position contributes (specs/ENGINE.md ENG-008); a knob that changed nothing would lie.
    # --- execution (PyTorch only; never part of the TF spec) ---
    _p("execution", "Device", "choice", "auto", "device", "Device",
       choices=("auto", "cpu", "cuda"), help="auto = cuda when available, else cpu"),
    _p("execution", "LearningRate", "real", 1e-3, "learning_rate", "Learning rate",
       minimum=1e-12),
    _p("execution", "InferenceBatchSize", "int", 64, "inference_batch_size",
       "Inference batch size", minimum=1),
    _p("execution", "RefineEpochs", "int", 0, "refine_epochs", "Physics refinement epochs",
       minimum=0, maximum=10000,
       help="after the network, refine the object against the patterns with the physics model "
       "alone for this many passes (0 = off)"),
    _p("execution", "Seed", "int", 0, "seed", "Random seed", minimum=0),
    # multi-stage training (specs/ENGINE.md ENG-220..222): 0/0/0 = one stage
    _p("execution", "Stage1Epochs", "int", 0, "stage_1_epochs", "Stage 1 (warm-up) epochs",
       minimum=0, maximum=100000, help="warm-up loss; stages must add up to Epochs"),
    _p("execution", "Stage2Epochs", "int", 0, "stage_2_epochs", "Stage 2 (blend) epochs",
       minimum=0, maximum=100000, help="blend from the warm-up to the physics loss"),
    _p("execution", "Stage3Epochs", "int", 0, "stage_3_epochs", "Stage 3 (physics) epochs",
       minimum=0, maximum=100000, help="physics loss only, at a lower learning rate"),
    _p("execution", "PhysicsWeightSchedule", "choice", "cosine", "physics_weight_schedule",
       "Physics weight schedule", choices=("linear", "cosine", "exponential")),
    _p("execution", "Stage3LRFactor", "real", 0.1, "stage_3_lr_factor",
       "Stage 3 learning-rate factor", minimum=1e-6, maximum=1.0),
    _p("execution", "Threads", "int", 0, "threads", "CPU threads", minimum=0, maximum=1024,
       help="CPU threads torch uses for training, the network and the refinement (0 = "
       "$OMP_NUM_THREADS if set, else torch's default for the network and 1 for the "
       "refinement)"),
    _p("execution", "WorkerStartTimeout", "real", 120.0, "worker_start_timeout_s",
       "Worker start timeout (s)", minimum=1.0,
       help="how long the training worker may take to report its first message"),
)


def parameters_of_group(section: Section) -> tuple[ParameterSpec, ...]:
    """The :data:`PARAMETERS` entries of one group, in panel order."""
    return tuple(p for p in PARAMETERS if p.section == section)


class SettingsGroup:
    """One ptychodus parameter group; each parameter is an attribute named ``spec.attribute``.

    Raises ValueError (from ptychodus) if a group of the same name already exists.
    """

    def __init__(self, registry: SettingsRegistry, section: Section) -> None:
        self.section: Section = section
        self.group_name = GROUP_NAMES[section]
        self._group: ParameterGroup = registry.create_group(self.group_name)
        self._specs = parameters_of_group(section)
        self._parameters: dict[str, Parameter[Any]] = {}
        for spec in self._specs:
            parameter: Parameter[Any]
            if spec.kind == "int":
                parameter = self._group.create_integer_parameter(
                    spec.name, int(spec.default),
                    minimum=None if spec.minimum is None else int(spec.minimum),
                    maximum=None if spec.maximum is None else int(spec.maximum),
                )
            elif spec.kind == "real":
                parameter = self._group.create_real_parameter(
                    spec.name, float(spec.default), minimum=spec.minimum, maximum=spec.maximum
                )
            elif spec.kind == "bool":
                parameter = self._group.create_boolean_parameter(spec.name, bool(spec.default))
            else:
                parameter = self._group.create_string_parameter(spec.name, str(spec.default))
            self._parameters[spec.name] = parameter
            setattr(self, spec.attribute, parameter)

    def __iter__(self) -> Iterator[tuple[ParameterSpec, Parameter[Any]]]:
        for spec in self._specs:
            yield spec, self._parameters[spec.name]

    def __getitem__(self, name: str) -> Parameter[Any]:
        """The parameter named ``name`` (the settings.ini key, e.g. ``"GridSize"``)."""
        try:
            return self._parameters[name]
        except KeyError:
            raise KeyError(
                f"{self.group_name} has no parameter {name!r}; known: {sorted(self._parameters)}"
            ) from None

    def values(self) -> dict[str, Any]:
        """Validated values keyed by ``spec_field``.

        Raises ValueError naming ``[group] Name``, the bad value and the allowed ones when an
        enumerated value (e.g. from a hand-edited settings.ini) is not one of its choices.
        """
        out: dict[str, Any] = {}
        for spec, parameter in self:
            value = parameter.get_value()
            if spec.kind == "choice":
                if value not in spec.choices:
                    raise ValueError(
                        f"[{self.group_name}] {spec.name} = {value!r} is not allowed; "
                        f"set it to one of {', '.join(spec.choices)}"
                    )
                if spec.spec_field == "batch_size":
                    value = int(value)
            out[spec.spec_field] = value
        return out


class PINNTorchSettings:
    """All four settings groups of the library (created once per SettingsRegistry)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        self.model = SettingsGroup(registry, "model")
        self.training = SettingsGroup(registry, "training")
        self.inference = SettingsGroup(registry, "inference")
        self.execution = SettingsGroup(registry, "execution")

    def groups(self) -> tuple[SettingsGroup, ...]:
        return (self.model, self.training, self.inference, self.execution)

    def spec_values(self) -> dict[str, dict[str, Any]]:
        """``{"model": {...}, "training": {...}, "inference": {...}, "execution": {...}}``.

        Keys inside each section are TF spec field names (``gridsize``, ``nphotons``, ...).
        Raises ValueError for an enumerated value outside its choices.
        """
        return {g.section: g.values() for g in self.groups()}

    def snapshot(self) -> dict[str, dict[str, str]]:
        """``{group: {Name: value-as-string}}``, what settings.ini holds for our groups."""
        return {
            g.group_name: {spec.name: p.get_value_as_string() for spec, p in g}
            for g in self.groups()
        }
