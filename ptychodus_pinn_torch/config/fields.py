"""Field truth: what every field of every configuration class does (the one place it is recorded).

Each field of the spec, PyTorch, execution and engine dataclasses has one :class:`Field` entry:

- ``acts``: changes behaviour. The conformance rule CFG-100 changes only this field (from
  ``probe_base`` to ``probe_base + {field: probe}``) and requires a different observation
  (``observe``: ``"model"`` the network's output, ``"train"`` a tiny training, ``"pipeline"``
  the training pipeline's files, ``"inference"`` the inference pipeline); a field that cannot
  change alone (the stage lengths must add up to the epochs) names the conformance rule that
  proves its effect (``proven_by``).
- ``carried``: an interop field that the bridge translates into the engine field ``to``
  (which must act); CFG-100 requires the translated configuration to change.
- ``refused``: any non-default value raises ValueError naming the field, where the
  configuration enters the engine (``EngineConfig``, ``run_inference``).
- ``warned``: an interop field upstream's translator ignores as well; a non-default value makes
  the bridge warn (UserWarning naming the field) that it has no effect here.
- ``recorded``: names and notes without behaviour (kept in configs and archives); listed so the
  rule knows they were looked at.

``only_with``: conditions under which an acting field acts; a non-default value when a condition
does not hold is refused by name (``momentum`` acts with ``optimizer='sgd'`` only, say).

Adding a field to a config class: add its entry here (status, a one-line note; for ``acts``
a non-default ``probe`` value, and ``probe_base`` if it only shows with other settings); for
``acts`` make the engine read it. CFG-100 fails for a field without an entry, an acting field
whose probe shows no difference, and a refused field that is accepted. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Literal

Status = Literal["acts", "carried", "refused", "warned", "recorded"]
Observation = Literal["model", "train", "pipeline", "inference", "bridge"]
STATUSES: tuple[str, ...] = ("acts", "carried", "refused", "warned", "recorded")


@dataclass(frozen=True)
class Requires:
    """``field`` (of the same config; ``model.X`` for the nested model) must be one of
    ``values``; ``values=None`` means "set to a non-default value"."""

    field: str
    values: tuple[Any, ...] | None = None

    def text(self) -> str:
        if self.values is None:
            return f"{self.field} set"
        return f"{self.field} in {self.values!r}" if len(self.values) > 1 else (
            f"{self.field}={self.values[0]!r}")


@dataclass(frozen=True)
class Field:
    """The status of one configuration field (see the module text)."""

    status: Status
    note: str
    probe: Any = None
    probe_base: Mapping[str, Any] = field(default_factory=dict)
    observe: Observation | None = None
    only_with: tuple[Requires, ...] = ()
    to: str | None = None
    owner: str = "cfg"
    proven_by: str | None = None


def acts(note: str, probe: Any, *, base: Mapping[str, Any] | None = None,
         observe: Observation | None = None, only_with: tuple[Requires, ...] = (),
         owner: str = "cfg", proven_by: str | None = None) -> Field:
    return Field("acts", note, probe, dict(base or {}), observe, only_with, owner=owner,
                 proven_by=proven_by)


def carried(to: str, probe: Any, note: str = "", *, base: Mapping[str, Any] | None = None
            ) -> Field:
    return Field("carried", note or f"translated to {to}", probe, dict(base or {}), "bridge",
                 to=to)


def refused(note: str, probe: Any = None, *, owner: str = "cfg") -> Field:
    return Field("refused", note, probe, owner=owner)


def warned(note: str, probe: Any = None) -> Field:
    return Field("warned", note, probe, observe="bridge")


def recorded(note: str) -> Field:
    return Field("recorded", note)


SGD = (Requires("optimizer", ("sgd",)),)
ADAM = (Requires("optimizer", ("adam", "adamw")),)
PLATEAU = (Requires("scheduler", ("ReduceLROnPlateau",)),)
COSINE = (Requires("scheduler", ("WarmupCosine",)),)
FNO = {"model.architecture": "fno"}
STAGED = {"nepochs": 5, "stage_1_epochs": 1, "stage_2_epochs": 3, "stage_3_epochs": 1}
NO_DATALOADER = "no DataLoader: the groups are tensors on the device"

#: spec ModelConfig (upstream ``ptycho.config.config.ModelConfig``); observed on the network.
SPEC_MODEL: Mapping[str, Field] = {
    "N": acts("patch size (pixels): the network's input and output size", 128),
    "gridsize": acts("group side: gridsize**2 channels per group", 2),
    "n_filters_scale": acts("width multiplier of the encoder/decoders", 1),
    "model_type": acts("'supervised' trains on the Y labels (amplitude/phase MAE)",
                       "supervised", observe="train"),
    "amp_activation": acts("activation of the amplitude decoder", "relu"),
    "object_big": acts("decode one patch per channel and merge them", False,
                       base={"gridsize": 2}),
    "probe_big": acts("without it the object is kept only in the centre N/2 square", False),
    "probe_mask": acts("multiply the probe by the N/4 disk", True),
    "pad_object": acts("pad the decoded object to the full patch (else crop)", False),
    "probe_scale": acts("probe normalization divisor", 2.0),
    "gaussian_smoothing_sigma": acts("Gaussian smoothing of the illuminated object (px)", 1.0),
    "architecture": acts("generator: cnn, unet or fno (model.generators)", "unet", owner="gen"),
    "probe_mask_sigma": refused("upstream HEAD's soft probe-mask edge is not implemented; "
                                "probe_mask uses the hard N/4 disk", 2.0),
    "probe_mask_diameter": refused("upstream HEAD's probe-mask diameter is not implemented; "
                                   "probe_mask uses the hard N/4 disk", 20.0),
    "fno_modes": acts("Fourier modes per FNO block", 6, base=FNO, owner="gen"),
    "fno_width": acts("channels of the FNO blocks", 16, base=FNO, owner="gen"),
    "fno_blocks": acts("number of FNO blocks", 2, base=FNO, owner="gen"),
    "fno_cnn_blocks": acts("conv3x3+GELU refiner blocks after the FNO blocks", 1, base=FNO,
                           owner="gen"),
    "generator_output_mode": acts("output heads of the fno generator", "amp_phase",
                                  base=FNO, owner="gen"),
    "cnn_output_mode": acts("output heads of the cnn and unet generators", "real_imag",
                            owner="gen"),
    "cbam_encoder": acts("CBAM attention in the encoder", True, owner="gen"),
    "cbam_bottleneck": acts("CBAM attention at the bottleneck", True, owner="gen"),
    "cbam_decoder": acts("CBAM attention in the decoders", True, owner="gen"),
    "eca_encoder": acts("ECA attention in the encoder", True, owner="gen"),
    "eca_decoder": acts("ECA attention in the decoders", True, owner="gen"),
}

#: spec TrainingConfig (upstream ``ptycho.config.config.TrainingConfig``); observed on a tiny
#: training (``model.X`` keys of a base set the nested ModelConfig).
SPEC_TRAINING: Mapping[str, Field] = {
    "model": recorded("the nested ModelConfig (its fields are listed on their own)"),
    "train_data_file": acts("the scan the pipeline trains on when none is passed",
                            "other.npz", observe="pipeline"),
    "test_data_file": acts("the scan whose loss the pipeline reports after training",
                           "test.npz", observe="pipeline"),
    "batch_size": acts("groups per optimizer step and process", 8),
    "nepochs": acts("epochs", 3),
    "mae_weight": acts("weight of MAE(sX, A)", 0.5),
    "nll_weight": acts("weight of the Poisson NLL", 0.5),
    "realspace_mae_weight": acts("weight of the complex MAE inside the real-space term", 0.25,
                                 base={"realspace_weight": 0.5},
                                 only_with=(Requires("realspace_weight"),)),
    "realspace_weight": acts("weight of the real-space term (needs labels)", 1.0,
                             base={"realspace_weight": 0.5, "realspace_mae_weight": 0.5}),
    "nphotons": acts("photons per pattern: the intensity scale", 1e8),
    "n_groups": acts("groups drawn for training", 12),
    "n_images": carried("spec.TrainingConfig.n_groups", 12,
                        "deprecated alias of n_groups (when n_groups is not given)"),
    "n_subsample": acts("train on this many randomly chosen scan positions", 12),
    "subsample_seed": acts("seed of the n_subsample draw", 7, base={"n_subsample": 12},
                           only_with=(Requires("n_subsample"),)),
    "neighbor_count": acts("K nearest neighbours a group is drawn from", 6,
                           base={"model.gridsize": 2}),
    "positions_provided": refused("the engine always uses the scan positions (upstream's "
                                  "position learning is not implemented)", False),
    "probe_trainable": acts("train the probe with the network", True),
    "intensity_scale_trainable": acts("train log(intensity_scale)", False),
    "output_dir": acts("the pipeline's output folder when none is passed", "elsewhere",
                       observe="pipeline"),
    "sequential_sampling": acts("draw group seeds in scan order instead of randomly", True),
    "enable_oversampling": acts("K-choose-C groups beyond the scan points (gridsize > 1)",
                                True, base={"model.gridsize": 2, "n_groups": 20}),
    "neighbor_pool_size": acts("neighbours an oversampled group is drawn from", 5,
                               base={"model.gridsize": 2, "n_groups": 20,
                                     "enable_oversampling": True},
                               only_with=(Requires("enable_oversampling", (True,)),)),
    "backend": recorded("upstream's trainer dispatch; this package is the PyTorch trainer "
                        "whatever it says"),
    "torch_loss_mode": acts("'mae' (PINN): the amplitude MAE replaces the Poisson NLL "
                            "(supervised requires 'mae')", "mae"),
    "torch_mae_pred_l2_match_target": refused("upstream HEAD's L2-matched MAE prediction is "
                                              "not implemented", True),
    "gradient_clip_val": acts("clip gradients (see gradient_clip_algorithm)", 1e-3),
    "gradient_clip_algorithm": acts("'norm' (total norm), 'value' (elementwise) or 'agc' "
                                    "(unit-wise, relative to the weights)", "value",
                                    base={"gradient_clip_val": 1e-3},
                                    only_with=(Requires("gradient_clip_val"),)),
    "optimizer": acts("adam, adamw (decoupled weight decay) or sgd", "sgd"),
    "momentum": acts("SGD momentum", 0.5, base={"optimizer": "sgd"}, only_with=SGD),
    "weight_decay": acts("L2 (adam, sgd) or decoupled (adamw) weight decay", 0.1),
    "adam_beta1": acts("Adam beta1", 0.5, only_with=ADAM),
    "adam_beta2": acts("Adam beta2", 0.9, only_with=ADAM),
    "scheduler": acts("Default (Keras plateau), ReduceLROnPlateau (plateau_*), Exponential "
                      "(x0.95 per epoch) or WarmupCosine", "Exponential", base={"nepochs": 2}),
    "lr_warmup_epochs": acts("linear warm-up from lr/10 over this many epochs", 2),
    "lr_min_ratio": acts("WarmupCosine's final lr / lr", 0.5,
                         base={"scheduler": "WarmupCosine", "nepochs": 2}, only_with=COSINE),
    "plateau_factor": acts("lr factor on a plateau", 0.2, base={
        "scheduler": "ReduceLROnPlateau", "plateau_patience": 0, "plateau_threshold": 1e9,
        "nepochs": 3}, only_with=PLATEAU),
    "plateau_patience": acts("epochs without improvement before the lr drops", 0, base={
        "scheduler": "ReduceLROnPlateau", "plateau_threshold": 1e9, "plateau_patience": 1,
        "nepochs": 3}, only_with=PLATEAU),
    "plateau_min_lr": acts("the plateau's lr floor", 8e-4, base={
        "scheduler": "ReduceLROnPlateau", "plateau_patience": 0, "plateau_threshold": 1e9,
        "nepochs": 3}, only_with=PLATEAU),
    "plateau_threshold": acts("absolute improvement that counts", 1e9, base={
        "scheduler": "ReduceLROnPlateau", "plateau_patience": 0, "nepochs": 3},
        only_with=PLATEAU),
}

#: spec InferenceConfig (upstream ``ptycho.config.config.InferenceConfig``); read by
#: ``engine.run.run_inference`` and ``pinn-torch reconstruct --config`` (CFG-260).
SPEC_INFERENCE: Mapping[str, Field] = {
    "model": acts("must match the archive's model configuration (a mismatch is an error "
                  "naming the field)", "gridsize=2", observe="inference"),
    "model_path": acts("the model folder or archive", "other", observe="inference"),
    "test_data_file": acts("the scan to reconstruct", "other", observe="inference"),
    "n_groups": refused("inference reconstructs one group per scan position (ENG-008); "
                        "use n_subsample for fewer positions", 10),
    "n_images": refused("inference reconstructs one group per scan position (ENG-008); "
                        "use n_subsample for fewer positions", 10),
    "n_subsample": acts("reconstruct from this many randomly chosen positions", 8,
                        observe="inference"),
    "subsample_seed": acts("seed of the n_subsample draw", 3, base={"n_subsample": 8},
                           observe="inference", only_with=(Requires("n_subsample"),)),
    "neighbor_count": acts("K nearest neighbours of a group (gridsize > 1)", 6,
                           observe="inference", base={"model.gridsize": 2}),
    "debug": refused("upstream's debug images are not written", True),
    "output_dir": acts("where reconstruction.npz is written", "elsewhere",
                       observe="inference"),
    "enable_oversampling": refused("inference reconstructs one group per scan position",
                                   True),
    "neighbor_pool_size": refused("inference reconstructs one group per scan position", 5),
    "backend": recorded("upstream's dispatch; this package is the PyTorch backend"),
}

#: the engine's own settings (``config.engine.EngineConfig``).
ENGINE: Mapping[str, Field] = {
    "training": recorded("the spec TrainingConfig (its fields are listed on their own)"),
    "learning_rate": acts("optimizer step size", 1e-2),
    "validation_fraction": acts("share of the groups held out for val_loss", 0.25),
    # the probe freezes the weights (SGD steps of 1e-3 x 1e-45 underflow) so no epoch improves
    "early_stop_patience": acts("epochs without train-loss improvement before stopping", 1,
                                base={"shuffle": False, "optimizer": "sgd", "nepochs": 3,
                                      "gradient_clip_val": 1e-45,
                                      "gradient_clip_algorithm": "value"}),
    "seed": acts("seeds weights, grouping, split and shuffling", 1),
    "device": acts("where training runs", "cuda:7"),
    "channels_last": acts("memory format of the convolutions (None: channels-last on the CPU)",
                          False),
    "bf16": acts("bfloat16 autocast on CUDA (on another device: a warning)", True),
    "checkpoint_every": acts("checkpoint every this many epochs (and at the end)", 2,
                             base={"nepochs": 3}),
    "shuffle": acts("shuffle the training groups every epoch", False),
    "deterministic": acts("deterministic algorithms on CUDA (CPU kernels are already)", False,
                          base={"device": "cuda"}),
    "tv_weight": acts("total-variation weight inside the real-space term", 0.5,
                      base={"realspace_weight": 0.5, "realspace_mae_weight": 0.5},
                      only_with=(Requires("training.realspace_weight"),)),
    "accum_steps": acts("optimizer step every this many batches (loss / accum_steps)", 2),
    "init_model": acts("a wts.h5.zip whose weights training starts from (fine-tuning)",
                       "model", observe="pipeline", owner="track"),
    "epochs_fine_tune": acts("with init_model: the epochs to run (0: nepochs)", 2,
                             base={"init_model": "model"}, observe="pipeline", owner="track"),
    "fine_tune_gamma": acts("with init_model: the learning rate is learning_rate x gamma", 0.5,
                            base={"init_model": "model"}, observe="pipeline", owner="track"),
    "stage_1_epochs": acts("warm-up stage length (the stages add up to nepochs)", 1,
                           owner="gen", proven_by="ENG-220"),
    "stage_2_epochs": acts("blend stage length", 1, owner="gen", proven_by="ENG-220"),
    "stage_3_epochs": acts("physics-only stage length", 1, owner="gen", proven_by="ENG-220"),
    "physics_weight_schedule": acts("the stage-2 blend of the physics loss", "linear",
                                    base=STAGED, owner="gen"),
    "stage_3_lr_factor": acts("lr factor when stage 3 begins", 0.5, base=STAGED, owner="gen"),
    "threads": acts("CPU threads torch uses while training", 1, owner="perf",
                    proven_by="ENG-205"),
    "train_data_files": acts("several training scans (files or folders): one model over all "
                             "of them, instead of train_data_file", ("scan.npz", "other.npz"),
                             observe="pipeline"),
}

WARN_DL = warned(NO_DATALOADER, 2)

#: PyTorch DataConfig (upstream ``ptycho_torch.config_params``); read by ``config.bridge``.
PARAMS_DATA: Mapping[str, Field] = {
    "nphotons": carried("spec.TrainingConfig.nphotons", 1e7),
    "N": carried("spec.ModelConfig.N", 128),
    "C": warned("C is gridsize**2 here (from grid_size); another value is ignored", 9),
    "K": carried("spec.TrainingConfig.neighbor_count", 8),
    "K_quadrant": warned("the 4_quadrant neighbour search is not implemented", 10),
    "n_subsample": warned("a coordinate-subsampling factor upstream, never copied (the spec's "
                          "n_subsample is a count)", 3),
    "grid_size": carried("spec.ModelConfig.gridsize", (3, 3)),
    "neighbor_function": warned("grouping is upstream TF's nearest-neighbour draw", "Min_dist"),
    "min_neighbor_distance": warned("grouping is upstream TF's nearest-neighbour draw", 1.0),
    "max_neighbor_distance": warned("grouping is upstream TF's nearest-neighbour draw", 5.0),
    "scan_pattern": warned("read from the data, not configured", "Rectangular"),
    "normalize": warned("X_full is normalized per scan as upstream TF", "Group"),
    "probe_scale": carried("spec.ModelConfig.probe_scale", 2.0),
    "probe_normalize": warned("the probe is always normalized as upstream TF", False),
    "data_scaling": warned("X_full is normalized per scan as upstream TF (Parseval)", "Max"),
    "phase_subtraction": warned("the phase is synchronized at stitching (ENG-013)", False),
    "x_bounds": warned("no position cropping", (0.2, 0.8)),
    "y_bounds": warned("no position cropping", (0.2, 0.8)),
    "subsample_seed": carried("spec.TrainingConfig.subsample_seed", 5),
}

#: PyTorch ModelConfig.
PARAMS_MODEL: Mapping[str, Field] = {
    "mode": carried("spec.ModelConfig.model_type", "Supervised"),
    "intensity_scale_trainable": carried("spec.TrainingConfig.intensity_scale_trainable", True),
    "intensity_scale": warned("the intensity scale follows from nphotons and N", 5.0),
    "max_position_jitter": warned("no position jitter", 3),
    "C_model": warned("the channels follow from grid_size", 4),
    "n_filters_scale": carried("spec.ModelConfig.n_filters_scale", 1),
    "amp_activation": carried("spec.ModelConfig.amp_activation", "relu"),
    "batch_norm": warned("the TF network has no batch norm", True),
    "probe_mask": carried("spec.ModelConfig.probe_mask", True),
    "edge_pad": warned("the object padding is upstream TF's (pad_object)", 4),
    "decoder_last_c_outer_fraction": warned("the decoder is upstream TF's (c_outer = 4)", 0.25),
    "decoder_last_amp_channels": warned("the decoder is upstream TF's", 2),
    "eca_encoder": carried("spec.ModelConfig.eca_encoder", True),
    "cbam_encoder": carried("spec.ModelConfig.cbam_encoder", True),
    "cbam_bottleneck": carried("spec.ModelConfig.cbam_bottleneck", True),
    "cbam_decoder": carried("spec.ModelConfig.cbam_decoder", True),
    "eca_decoder": carried("spec.ModelConfig.eca_decoder", True),
    "spatial_decoder": warned("no spatial-attention decoder", True),
    "decoder_spatial_kernel": warned("no spatial-attention decoder", 5),
    "object_big": carried("spec.ModelConfig.object_big", True),
    "probe_big": carried("spec.ModelConfig.probe_big", False),
    "offset": warned("group offsets come from the scan positions", 4),
    "C_forward": warned("the channels follow from grid_size", 9),
    "loss_function": warned("the objective follows TrainingConfig.torch_loss_mode", "MAE"),
    "amp_loss": warned("no amplitude regularizer", "Total_Variation"),
    "phase_loss": warned("no phase regularizer", "Total_Variation"),
    "amp_loss_coeff": warned("no amplitude regularizer", 0.5),
    "phase_loss_coeff": warned("no phase regularizer", 0.5),
    "pad_object": carried("spec.ModelConfig.pad_object", False),
    "gaussian_smoothing_sigma": carried("spec.ModelConfig.gaussian_smoothing_sigma", 1.0),
    "architecture": carried("spec.ModelConfig.architecture", "unet"),
    "fno_modes": carried("spec.ModelConfig.fno_modes", 6),
    "fno_width": carried("spec.ModelConfig.fno_width", 16),
    "fno_blocks": carried("spec.ModelConfig.fno_blocks", 2),
    "fno_cnn_blocks": carried("spec.ModelConfig.fno_cnn_blocks", 1),
    "cnn_output_mode": carried("spec.ModelConfig.cnn_output_mode", "real_imag"),
    "generator_output_mode": carried("spec.ModelConfig.generator_output_mode", "amp_phase"),
}

#: PyTorch TrainingConfig.
PARAMS_TRAINING: Mapping[str, Field] = {
    "training_directories": carried("engine.EngineConfig.train_data_files", ["a", "b"],
                                    "folders (or files) of training scans, one model over all"),
    "nll": carried("spec.TrainingConfig.nll_weight", False),
    "device": carried("engine.EngineConfig.device", "cpu"),
    "strategy": warned("torchrun selects DDP by itself", "fsdp"),
    "n_devices": warned("launch with torchrun --nproc-per-node K", 2),
    "learning_rate": carried("engine.EngineConfig.learning_rate", 1e-2),
    "epochs": carried("spec.TrainingConfig.nepochs", 3),
    "batch_size": carried("spec.TrainingConfig.batch_size", 8),
    "epochs_fine_tune": carried("engine.EngineConfig.epochs_fine_tune", 2,
                                "acts with a model to fine-tune (to_engine_config(init_model=), "
                                "train --init-model); without one refused by name"),
    "fine_tune_gamma": carried("engine.EngineConfig.fine_tune_gamma", 0.5,
                               "acts with a model to fine-tune (to_engine_config(init_model=), "
                               "train --init-model); without one refused by name"),
    "scheduler": carried("spec.TrainingConfig.scheduler", "Exponential"),
    "num_workers": WARN_DL,
    "accum_steps": carried("engine.EngineConfig.accum_steps", 2),
    "gradient_clip_val": carried("spec.TrainingConfig.gradient_clip_val", 1.0),
    "stage_1_epochs": carried("engine.EngineConfig.stage_1_epochs", 2),
    "stage_2_epochs": carried("engine.EngineConfig.stage_2_epochs", 2),
    "stage_3_epochs": carried("engine.EngineConfig.stage_3_epochs", 2),
    "physics_weight_schedule": carried("engine.EngineConfig.physics_weight_schedule", "linear"),
    "stage_3_lr_factor": carried("engine.EngineConfig.stage_3_lr_factor", 0.5),
    "experiment_name": recorded("a run name for tracking"),
    "notes": recorded("free text"),
    "model_name": recorded("a model name for tracking"),
    "torch_loss_mode": carried("spec.TrainingConfig.torch_loss_mode", "mae"),
    "train_data_file": carried("spec.TrainingConfig.train_data_file", "u.npz"),
    "test_data_file": carried("spec.TrainingConfig.test_data_file", "u.npz"),
    "output_dir": carried("spec.TrainingConfig.output_dir", "elsewhere"),
    "n_groups": carried("spec.TrainingConfig.n_groups", 12),
}

#: PyTorch InferenceConfig (upstream's translator reads none of it).
PARAMS_INFERENCE: Mapping[str, Field] = {
    "middle_trim": warned("stitching weights by the probe (ENG-011), no trim", 16),
    "batch_size": warned("pass batch_size to reconstruct", 10),
    "experiment_number": warned("one scan per call", 1),
    "pad_eval": warned("stitching is upstream TF's reassemble_position grid", False),
    "window": warned("stitching is upstream TF's reassemble_position grid", 10),
}

#: PyTorch execution config (upstream ``PyTorchExecutionConfig``); read by
#: ``config.bridge.to_engine_config``.
PARAMS_EXECUTION: Mapping[str, Field] = {
    "accelerator": carried("engine.EngineConfig.device", "cpu",
                           "resolve_accelerator: auto -> cuda or cpu, gpu -> cuda"),
    "strategy": warned("torchrun selects DDP by itself", "ddp"),
    "deterministic": carried("engine.EngineConfig.deterministic", False),
    "gradient_clip_val": carried("spec.TrainingConfig.gradient_clip_val", 1.0),
    "accum_steps": carried("engine.EngineConfig.accum_steps", 2),
    "num_workers": WARN_DL,
    "pin_memory": warned(NO_DATALOADER, True),
    "persistent_workers": warned(NO_DATALOADER, True),
    "prefetch_factor": warned(NO_DATALOADER, 2),
    "learning_rate": carried("engine.EngineConfig.learning_rate", 1e-2),
    "scheduler": carried("spec.TrainingConfig.scheduler", "Exponential"),
    "enable_progress_bar": warned("pinn-torch train shows its own progress", True),
    "enable_checkpointing": warned("the pipeline always writes checkpoints/checkpoint.pt",
                                   False),
    "checkpoint_save_top_k": warned("one checkpoint: the last epoch's", 3),
    "checkpoint_monitor_metric": warned("one checkpoint: the last epoch's", "train_loss"),
    "checkpoint_mode": warned("one checkpoint: the last epoch's", "max"),
    "early_stop_patience": carried("engine.EngineConfig.early_stop_patience", 5),
    "logger_backend": warned("history.json is written; MLflow is a callback", None),
    "inference_batch_size": warned("pass batch_size to reconstruct", 10),
    "middle_trim": warned("stitching weights by the probe (ENG-011), no trim", 16),
    "pad_eval": warned("stitching is upstream TF's reassemble_position grid", True),
}

_REGISTRY: Mapping[str, Mapping[str, Field]] = MappingProxyType({
    "spec.ModelConfig": SPEC_MODEL,
    "spec.TrainingConfig": SPEC_TRAINING,
    "spec.InferenceConfig": SPEC_INFERENCE,
    "engine.EngineConfig": ENGINE,
    "params.DataConfig": PARAMS_DATA,
    "params.ModelConfig": PARAMS_MODEL,
    "params.TrainingConfig": PARAMS_TRAINING,
    "params.InferenceConfig": PARAMS_INFERENCE,
    "params.ExecutionConfig": PARAMS_EXECUTION,
})


def registry() -> Mapping[str, Mapping[str, Field]]:
    """Every class's table, read-only: ``{"spec.ModelConfig": {"N": Field(...), ...}, ...}``."""
    return _REGISTRY


def class_key(obj: Any) -> str:
    """``"spec.TrainingConfig"`` for an instance or class of ``config.spec.TrainingConfig``."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def default_of(cls: type, name: str) -> Any:
    """The dataclass default of ``cls.name`` (MISSING for a required field)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            return MISSING
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _default_dotted(obj: Any, dotted: str) -> Any:
    head, _, rest = dotted.rpartition(".")
    owner = _get(obj, head) if head else obj
    return default_of(type(owner), rest)


def check_supported(obj: Any, *, where: str | None = None) -> None:
    """Raise ValueError naming the field for every ``refused`` field of ``obj`` (a config
    dataclass) holding a non-default value, and for an acting field set away from its default
    while one of its ``only_with`` conditions does not hold."""
    if not is_dataclass(obj):
        raise ValueError(f"expected a configuration dataclass, got {type(obj).__name__}")
    key = class_key(obj)
    table = registry().get(key)
    if table is None:
        return
    owner = type(obj).__name__
    refusals: list[str] = []
    for f in fields(obj):
        entry = table.get(f.name)
        if entry is None:
            continue
        value = getattr(obj, f.name)
        default = default_of(type(obj), f.name)
        if default is MISSING or value == default:
            continue
        if entry.status == "refused":
            refusals.append(f"{owner}.{f.name}={value!r} is not supported"
                            f"{'' if where is None else ' by ' + where}: {entry.note}; leave "
                            f"it at {default!r}")
            continue
        for req in entry.only_with:
            other = _get(obj, req.field)
            ok = (other != _default_dotted(obj, req.field)) if req.values is None else (
                other in req.values)
            if not ok:
                raise ValueError(
                    f"{owner}.{f.name}={value!r} acts only with {owner}.{req.text()} "
                    f"(it is {other!r}); set that too or leave {f.name} at {default!r}"
                )
    if refusals:
        raise ValueError("; ".join(refusals))


def warn_uncarried(obj: Any, *, skip: tuple[str, ...] = (), where: str = "the bridge") -> None:
    """One UserWarning per ``warned`` field of ``obj`` holding a non-default value (fields in
    ``skip`` are checked by the caller)."""
    import warnings

    table = registry().get(class_key(obj), {})
    owner = type(obj).__name__
    for f in fields(obj):
        entry = table.get(f.name)
        if entry is None or entry.status != "warned" or f.name in skip:
            continue
        value = getattr(obj, f.name)
        default = default_of(type(obj), f.name)
        if default is not MISSING and value != default:
            warnings.warn(
                f"{owner}.{f.name}={value!r} has no effect here ({where} does not carry it): "
                f"{entry.note}",
                UserWarning,
                stacklevel=3,
            )


TABLE_BEGIN = "<!-- field table: generated by config.fields.markdown_table(); do not edit -->"
TABLE_END = "<!-- end of field table -->"


def markdown_table() -> str:
    """The field table of specs/CFG.md (CFG-100), one row per field of every class."""
    rows = [TABLE_BEGIN, "", "| class | field | status | what it does / why not | owner |",
            "|---|---|---|---|---|"]
    for key, table in _REGISTRY.items():
        for name, entry in table.items():
            note = entry.note
            if entry.to:
                note = f"-> `{entry.to}`" + (f"; {note}" if not note.startswith("translated")
                                            else "")
            if entry.only_with:
                note += " (acts only with " + ", ".join(r.text() for r in entry.only_with) + ")"
            rows.append(f"| {key} | `{name}` | {entry.status} | {note.replace('|', '/')} | "
                        f"{entry.owner} |")
    rows += ["", TABLE_END]
    return "\n".join(rows)


def status_counts() -> dict[str, int]:
    """How many fields have each status (all classes together)."""
    counts = dict.fromkeys(STATUSES, 0)
    for table in _REGISTRY.values():
        for entry in table.values():
            counts[entry.status] += 1
    return counts


__all__ = [
    "STATUSES",
    "TABLE_BEGIN",
    "TABLE_END",
    "markdown_table",
    "status_counts",
    "Field",
    "Requires",
    "check_supported",
    "class_key",
    "default_of",
    "registry",
    "warn_uncarried",
]
