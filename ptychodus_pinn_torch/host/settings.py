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
    unit: str = ""

    @property
    def upstream_name(self) -> str:
        """Where upstream PtychoPINN has this setting (``ModelConfig.gridsize``, ...)."""
        owner = {"model": "ModelConfig", "training": "TrainingConfig",
                 "inference": "InferenceConfig"}.get(self.section)
        if owner is None:
            return "none (PyTorch backend only)"
        return f"{owner}.{self.spec_field}"

    @property
    def tooltip(self) -> str:
        """The panel row's tooltip: what it does, its unit, upstream's and settings.ini's names."""
        lines = [self.help[:1].upper() + self.help[1:] + "." if self.help else self.label]
        if self.unit:
            lines.append(f"Unit: {self.unit}.")
        if self.choices:
            lines.append(f"Choices: {', '.join(self.choices)}.")
        lines.append(f"Upstream: {self.upstream_name}. settings.ini: [{self.group}] {self.name}.")
        return "\n".join(lines)

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
# `label` is what the panel shows (plain words; README "In ptychodus" lists the same labels),
# `help` says what the row does, `unit` its unit; the tooltip adds upstream's name (specs HOST-142).
PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model (upstream ModelConfig) ---
    _p("model", "GridSize", "int", 1, "gridsize", "Patterns per group (side)", minimum=1,
       maximum=5, unit="patterns along one side",
       help="neighbouring scan positions the network sees together: a group is a "
       "gridsize x gridsize set (1 = one pattern at a time)"),
    _p("model", "NumFiltersScale", "int", 2, "n_filters_scale", "Network width", minimum=1,
       maximum=4, unit="multiplier",
       help="multiplies the number of filters of every encoder/decoder layer (upstream's "
       "default 2); smaller trains faster, larger is slower and may resolve finer detail"),
    _p("model", "AmpActivation", "choice", "sigmoid", "amp_activation",
       "Amplitude output function", choices=("sigmoid", "swish", "softplus", "relu"),
       unit="none",
       help="function that makes the network's amplitude output; sigmoid keeps amplitudes in "
       "(0, 1) (transmission objects), the others allow amplitudes above 1"),
    _p("model", "ObjectBig", "bool", True, "object_big", "Merge per-pattern object patches",
       unit="on/off",
       help="on: the network predicts one object patch per pattern of a group and merges them "
       "at their scan positions; off: one shared patch per group (matters for gridsize > 1)"),
    _p("model", "ProbeBig", "bool", True, "probe_big", "Predict object outside the centre",
       unit="on/off",
       help="on: the decoder also predicts the object in the border outside the central "
       "N/2 x N/2 square (a probe wider than N/2 lights it); off: that border is zero"),
    _p("model", "ProbeMask", "bool", False, "probe_mask", "Cut probe to a disk", unit="on/off",
       help="multiply the illuminated object by a disk of diameter N/2 before the far-field "
       "model (suppresses probe tails outside the disk)"),
    _p("model", "PadObject", "bool", True, "pad_object", "Decode centre, pad border",
       unit="on/off",
       help="on: the decoder's main branch predicts the central N/2 x N/2 square and the rest is "
       "padded (or predicted by the border branch, see 'Predict object outside the centre'); "
       "off: one branch predicts the full N x N patch"),
    _p("model", "ProbeScale", "real", 4.0, "probe_scale", "Probe normalization divisor",
       minimum=1e-6, unit="none (> 0)",
       help="the probe is divided by probe_scale x its mean amplitude inside the central "
       "disk before training"),
    _p("model", "GaussianSmoothingSigma", "real", 0.0, "gaussian_smoothing_sigma",
       "Exit-wave smoothing", minimum=0.0, unit="pixels (sigma; 0 = off)",
       help="smooth the exit wave with a 3x3 Gaussian filter of this width before the "
       "far-field model"),
    # generator registry (specs/MODEL.md MODEL-220..227); defaults = the TF network
    _p("model", "Architecture", "choice", "cnn", "architecture", "Network architecture",
       choices=("cnn", "unet", "fno"), unit="none",
       help="cnn: the TF PtychoPINN network; unet: cnn with skip connections; fno: Fourier "
            "neural operator"),
    _p("model", "CNNOutputMode", "choice", "amp_phase", "cnn_output_mode",
       "CNN/U-Net output heads", choices=("amp_phase", "real_imag"), unit="none",
       help="what the cnn/unet heads predict: amplitude and phase, or real and imaginary part"),
    _p("model", "GeneratorOutputMode", "choice", "real_imag", "generator_output_mode",
       "FNO output heads", choices=("amp_phase", "real_imag"), unit="none",
       help="what the fno heads predict: amplitude and phase, or real and imaginary part"),
    _p("model", "FNOModes", "int", 12, "fno_modes", "FNO Fourier modes", minimum=1,
       maximum=128, unit="modes per axis and sign (<= N/2)",
       help="Fourier modes the fno keeps per axis and sign (fno only)"),
    _p("model", "FNOWidth", "int", 32, "fno_width", "FNO width", minimum=1, maximum=512,
       unit="channels", help="hidden channels of the fno (fno only)"),
    _p("model", "FNOBlocks", "int", 4, "fno_blocks", "FNO spectral blocks", minimum=1,
       maximum=64, unit="blocks", help="spectral blocks of the fno (fno only)"),
    _p("model", "FNOCNNBlocks", "int", 2, "fno_cnn_blocks", "FNO refiner blocks", minimum=1,
       maximum=64, unit="blocks",
       help="conv3x3+GELU refiner blocks after the spectral blocks (fno only)"),
    _p("model", "CBAMEncoder", "bool", False, "cbam_encoder", "Attention in encoder (CBAM)",
       unit="on/off", help="channel+spatial attention in every encoder block (cnn/unet)"),
    _p("model", "CBAMBottleneck", "bool", False, "cbam_bottleneck",
       "Attention at bottleneck (CBAM)", unit="on/off",
       help="channel+spatial attention on the encoder output (cnn/unet)"),
    _p("model", "CBAMDecoder", "bool", False, "cbam_decoder", "Attention in decoders (CBAM)",
       unit="on/off", help="channel+spatial attention in every decoder up-block (cnn/unet)"),
    _p("model", "ECAEncoder", "bool", False, "eca_encoder",
       "Channel attention in encoder (ECA)", unit="on/off",
       help="efficient channel attention in every encoder block (cnn/unet)"),
    _p("model", "ECADecoder", "bool", False, "eca_decoder",
       "Channel attention in decoders (ECA)", unit="on/off",
       help="efficient channel attention in every decoder up-block (cnn/unet)"),
    # --- training (upstream TrainingConfig) ---
    _p("training", "NumPhotons", "real", 1e6, "nphotons", "Photons per pattern", minimum=1e-6,
       unit="photons",
       help="expected photon count per diffraction pattern; sets the intensity scale the "
       "Poisson loss assumes (> 0)"),
    _p("training", "BatchSize", "choice", "16", "batch_size", "Batch size",
       choices=("1", "2", "4", "8", "16", "32", "64", "128", "256", "512"), unit="groups",
       help="groups per optimizer step (a power of two)"),
    _p("training", "NumEpochs", "int", 50, "nepochs", "Epochs", minimum=1, maximum=100000,
       unit="passes over the training groups",
       help="training length; the network's object is coarse (often flat) for the first ~10 "
       "epochs, 50+ is typical; each epoch adds a point to the loss plot"),
    _p("training", "MAEWeight", "real", 0.0, "mae_weight", "Amplitude MAE weight",
       minimum=0.0, maximum=1.0, unit="weight",
       help="weight of the mean absolute error between predicted and measured amplitudes"),
    _p("training", "NLLWeight", "real", 1.0, "nll_weight", "Poisson loss weight", minimum=0.0,
       maximum=1.0, unit="weight",
       help="weight of the Poisson negative log-likelihood of the measured counts (the "
       "physics loss; it is negative by construction, see README)"),
    _p("training", "RealspaceMAEWeight", "real", 0.0, "realspace_mae_weight",
       "Object MAE weight (labels)", minimum=0.0, maximum=1.0, unit="weight",
       help="weight of the mean absolute error against the known object (needs labels; "
       "needs 'Object loss weight' > 0)"),
    _p("training", "RealspaceWeight", "real", 0.0, "realspace_weight",
       "Object loss weight (labels)", minimum=0.0, maximum=1.0, unit="weight",
       help="weight of the real-space loss against the known object (needs labels)"),
    # No PositionsProvided: the engine always uses the scan positions; upstream's False
    # (position learning) is refused by name (config.fields, specs/CFG.md CFG-100).
    _p("training", "ProbeTrainable", "bool", False, "probe_trainable", "Refine the probe",
       unit="on/off", help="let training adjust the probe as well as the network"),
    _p("training", "IntensityScaleTrainable", "bool", True, "intensity_scale_trainable",
       "Learn the intensity scale", unit="on/off",
       help="let training adjust the factor between network amplitudes and measured counts"),
    _p("training", "NumGroups", "int", 512, "n_groups", "Groups", minimum=1, unit="groups",
       help="number of scan-point groups drawn for training (one epoch = one pass over them)"),
    _p("training", "NeighborCount", "int", 4, "neighbor_count", "Neighbours per group draw",
       minimum=1, unit="scan positions",
       help="nearest neighbours a training group is drawn from (gridsize > 1 only)"),
    # --- inference (upstream InferenceConfig + ptychodus TF panel) ---
    _p("inference", "NumNearestNeighbors", "int", 7, "neighbor_count", "Nearest neighbours",
       minimum=1, unit="scan positions",
       help="nearest neighbours an inference group is drawn from (gridsize > 1 only)"),
    # No NumGroups/NumSamples here: inference reconstructs one group per scan point, so that
    # every position contributes (specs/ENGINE.md ENG-008); a knob that changed nothing would lie.
    # --- execution (PyTorch only; never part of the TF spec) ---
    _p("execution", "Device", "choice", "auto", "device", "Device",
       choices=("auto", "cpu", "cuda"), unit="none",
       help="where training and inference run: auto = cuda when available, else cpu"),
    _p("execution", "LearningRate", "real", 1e-3, "learning_rate", "Learning rate",
       minimum=1e-12, unit="per step (Adam)", help="step size of the optimizer"),
    _p("execution", "InferenceBatchSize", "int", 64, "inference_batch_size",
       "Inference batch size", minimum=1, unit="groups",
       help="groups per network call during Infer (memory vs. speed; same result)"),
    _p("execution", "RefineEpochs", "int", 0, "refine_epochs",
       "Refine after inference (epochs)", minimum=0, maximum=10000,
       unit="passes over the patterns (0 = off)",
       help="after the network, refine its object against the measured patterns with the "
       "physics model alone (an LSQML-style iterative solver, not PtychoPINN). Trade-off: 10 "
       "passes take seconds and turn a coarse network object (few training epochs) into a "
       "sharp one, but the result is then no longer the network's own prediction"),
    _p("execution", "Seed", "int", 0, "seed", "Random seed", minimum=0, unit="integer",
       help="seed of the weight initialization and group draws (same seed, same model)"),
    # multi-stage training (specs/ENGINE.md ENG-220..222): 0/0/0 = one stage
    _p("execution", "Stage1Epochs", "int", 0, "stage_1_epochs", "Stage 1 (warm-up) epochs",
       minimum=0, maximum=100000, unit="epochs (0/0/0 = one stage)",
       help="epochs of the warm-up loss; the three stages must add up to Epochs"),
    _p("execution", "Stage2Epochs", "int", 0, "stage_2_epochs", "Stage 2 (blend) epochs",
       minimum=0, maximum=100000, unit="epochs",
       help="epochs blending from the warm-up loss to the physics loss"),
    _p("execution", "Stage3Epochs", "int", 0, "stage_3_epochs", "Stage 3 (physics) epochs",
       minimum=0, maximum=100000, unit="epochs",
       help="epochs of the physics loss alone, at a lower learning rate"),
    _p("execution", "PhysicsWeightSchedule", "choice", "cosine", "physics_weight_schedule",
       "Physics weight schedule", choices=("linear", "cosine", "exponential"), unit="none",
       help="how stage 2 moves the weight from the warm-up loss to the physics loss"),
    _p("execution", "Stage3LRFactor", "real", 0.1, "stage_3_lr_factor",
       "Stage 3 learning-rate factor", minimum=1e-6, maximum=1.0, unit="x Learning rate",
       help="stage 3 trains at Learning rate times this factor"),
    _p("execution", "Threads", "int", 0, "threads", "CPU threads", minimum=0, maximum=1024,
       unit="threads (0 = automatic)",
       help="CPU threads torch uses for training, the network and the refinement (0 = "
       "$OMP_NUM_THREADS if set, else torch's default for the network and 1 for the "
       "refinement)"),
    _p("execution", "WorkerStartTimeout", "real", 120.0, "worker_start_timeout_s",
       "Worker start timeout", minimum=1.0, unit="seconds",
       help="how long the training worker may take to report its first message"),
    _p("execution", "OverwriteModel", "bool", False, "overwrite_model",
       "Overwrite the previous model", unit="on/off",
       help="off (default): a new training keeps an existing model.zip of the training "
       "folder as model.1.zip, model.2.zip, ...; on: it replaces model.zip"),
    _p("execution", "TrainFromLoadedModel", "bool", False, "train_from_loaded_model",
       "Train starting from the loaded model", unit="on/off",
       help="fine-tuning: Train starts from the loaded model's network (its settings, not the "
       "model group's) on the new data, at learning rate x FineTuneGamma"),
    _p("execution", "FineTuneEpochs", "int", 0, "epochs_fine_tune", "Fine-tuning epochs",
       minimum=0, unit="epochs",
       help="epochs when training starts from the loaded model (0 = Epochs)"),
    _p("execution", "FineTuneGamma", "real", 0.1, "fine_tune_gamma",
       "Fine-tuning learning-rate factor", minimum=1e-6, maximum=1.0, unit="factor",
       help="the learning rate is multiplied by this when training starts from the loaded "
       "model (upstream fine_tune_gamma)"),
    _p("execution", "MlflowTracking", "bool", False, "mlflow", "Track training with MLflow",
       unit="on/off",
       help="log settings, per-epoch losses and the model to MLflow ($MLFLOW_TRACKING_URI, "
       "else ./mlruns of the folder ptychodus was started in)"),
    _p("execution", "WorkerStallTimeout", "real", 600.0, "worker_stall_timeout_s",
       "Worker stall timeout", minimum=1.0, unit="seconds",
       help="a training worker that finishes no batch for this long (or is stopped by "
       "SIGSTOP for 5 s) is reported as stalled and ended; its last checkpoint's model is kept"),
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
