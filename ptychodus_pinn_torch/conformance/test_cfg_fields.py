"""CFG-100: every field of every configuration class is read or refused (specs/CFG.md).

The classes are enumerated by introspection (``dataclasses.fields``); ``config.fields`` records
each field's status. Per field this module proves the status:

- ``acts``: the configuration with only this field changed (``probe_base`` -> ``probe_base +
  {field: probe}``) gives a different observation: the network's output (``model``), a tiny
  training (``train``: losses, learning rates, loss terms, checkpoints written, weights,
  warnings, or the error it raised), the memory layout after set-up (``setup``), the training
  pipeline's files (``pipeline``) or the inference pipeline's output (``inference``); and a
  non-default value outside its ``only_with`` conditions is refused by name.
- ``carried``: the bridge's translation changes the engine field it names, which acts.
- ``refused``: a non-default value raises ValueError naming ``Class.field`` and "not supported".
- ``warned``: a non-default value makes the bridge warn naming ``Class.field``.

To add a field: give it an entry in ``ptychodus_pinn_torch/config/fields.py`` (for ``acts``, a
non-default ``probe`` and, when it shows only with other settings, a ``probe_base``); this
module then checks it without further edits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config import bridge, fields, params, spec
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.conformance.helpers import tiny_scan

CLASSES: dict[str, type] = {
    "spec.ModelConfig": spec.ModelConfig,
    "spec.TrainingConfig": spec.TrainingConfig,
    "spec.InferenceConfig": spec.InferenceConfig,
    "engine.EngineConfig": EngineConfig,
    "params.DataConfig": params.DataConfig,
    "params.ModelConfig": params.ModelConfig,
    "params.TrainingConfig": params.TrainingConfig,
    "params.InferenceConfig": params.InferenceConfig,
    "params.ExecutionConfig": params.ExecutionConfig,
}
REGISTRY = fields.registry()
ENGINE_FIELDS = {f.name for f in dataclasses.fields(EngineConfig)}
TRAINING_FIELDS = {f.name for f in dataclasses.fields(spec.TrainingConfig)}
#: the tiny training every ``train`` observation starts from (2 batches per epoch)
TINY = {"batch_size": 4, "nepochs": 1, "nphotons": 1e6, "n_groups": 8}


def _entries(*statuses: str) -> list[tuple[str, str]]:
    return [(k, n) for k, table in REGISTRY.items() for n, e in table.items()
            if e.status in statuses]


# ------------------------------------------------------------------ enumeration


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize("key", sorted(CLASSES))
def test_every_field_has_a_status(key: str) -> None:
    cls = CLASSES[key]
    names = {f.name for f in dataclasses.fields(cls)}
    table = REGISTRY.get(key, {})
    assert not names - set(table), f"{key}: fields without a status in config/fields.py: " \
        f"{sorted(names - set(table))}"
    assert not set(table) - names, f"{key}: statuses of no field: {sorted(set(table) - names)}"
    for name, entry in table.items():
        assert entry.status in fields.STATUSES and entry.note, (key, name)
        default = fields.default_of(cls, name)
        if entry.status in ("acts", "carried", "refused", "warned"):
            assert entry.probe != default, f"{key}.{name}: the probe is the default"
        if entry.status == "carried":
            target_key, _, target = str(entry.to).rpartition(".")
            assert REGISTRY[target_key][target].status == "acts", (key, name, entry.to)


# ------------------------------------------------------------------ building configs


def _split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, training, engine) keyword dicts of a flat ``{name: value}`` (``model.X`` keys
    for the model; EngineConfig fields for the engine; the rest for TrainingConfig)."""
    model: dict[str, Any] = {}
    training: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    for k, v in values.items():
        if k.startswith("model."):
            model[k[len("model."):]] = v
        elif k in ENGINE_FIELDS:
            engine[k] = v
        else:
            training[k] = v
    return model, training, engine


def _engine(values: dict[str, Any]) -> EngineConfig:
    model, training, engine = _split(values)
    model = {"N": 64, "n_filters_scale": 1, **model}
    kw = {"device": "cpu", "early_stop_patience": None, **engine}
    tr = {**TINY, **training}
    if model.get("model_type") == "supervised":
        tr.setdefault("torch_loss_mode", "mae")
    return EngineConfig(training=spec.TrainingConfig(model=spec.ModelConfig(**model), **tr), **kw)


def _probe_values(key: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = REGISTRY[key][name]
    dotted = f"model.{name}" if key == "spec.ModelConfig" else name
    base = dict(entry.probe_base)
    return base, {**base, dotted: entry.probe}


# ------------------------------------------------------------------ observations


@pytest.fixture(scope="module")
def scan() -> Any:
    return tiny_scan()


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_TRAIN_CACHE: dict[str, Any] = {}


def observe_train(scan: Any, values: dict[str, Any], tmp: Path) -> Any:
    """What a tiny training shows: per-epoch losses, lrs and terms, the epochs whose
    checkpoint was written, why it stopped, the weights, warnings logged, or its error."""
    from ptychodus_pinn_torch.engine.events import TrainCallbacks
    from ptychodus_pinn_torch.engine.training import train_model

    try:
        config = _engine(values)
    except ValueError as exc:
        return ("config error", str(exc))
    key = repr(config)
    if key in _TRAIN_CACHE:
        return _TRAIN_CACHE[key]
    written: list[int] = []
    records = _Records()
    logging.getLogger("ptychodus_pinn_torch").addHandler(records)
    folder = tmp / f"ckpt{len(_TRAIN_CACHE)}"
    try:
        res = train_model(scan, config, checkpoint_dir=folder, callbacks=TrainCallbacks(
            on_checkpoint=(lambda e: written.append(e.report.epoch),)))
        seen: Any = (
            [(h.train_loss, h.val_loss, h.lr, sorted(h.terms)) for h in res.history],
            written, res.stopped, _digest(res.bundle.model), records.messages,
        )
    except (ValueError, RuntimeError, AssertionError) as exc:
        seen = ("error", type(exc).__name__, str(exc))
    finally:
        logging.getLogger("ptychodus_pinn_torch").removeHandler(records)
    _TRAIN_CACHE[key] = seen
    return seen


def observe_setup(scan: Any, values: dict[str, Any], tmp: Path) -> Any:
    """The memory layout of the 4-D weights after the engine's set-up."""
    from ptychodus_pinn_torch.engine import distributed as distmod
    from ptychodus_pinn_torch.engine.session import setup

    session = setup(scan, _engine(values), torch.device("cpu"), distmod.DistContext())
    return [p.is_contiguous(memory_format=torch.channels_last)
            for p in session.model.parameters() if p.ndim == 4]


def observe_model(values: dict[str, Any]) -> Any:
    """The network's outputs on a fixed seeded input (or the error building it)."""
    from ptychodus_pinn_torch.data.simulate import make_probe
    from ptychodus_pinn_torch.model import build_model

    model_values, _, _ = _split(values)
    cfg = spec.ModelConfig(**model_values)
    n, c = cfg.N, cfg.gridsize**2
    torch.manual_seed(0)
    try:
        model = build_model(cfg, probe=make_probe("pinhole", n), intensity_scale=10.0)
    except ValueError as exc:
        return ("error", str(exc))
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, c, n, n, generator=gen) * 10
    pos = (torch.rand(2, c, 2, generator=gen) - 0.5) * 8
    with torch.no_grad():
        out = model(x, pos)
    return [out.pred_amp.numpy(), out.obj.numpy()]


def _differ(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list) and a and isinstance(a[0], np.ndarray):
        return any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b,
                                                                                 strict=True))
    return a != b


# ------------------------------------------------------------------ acts


def _model_acts() -> list[tuple[str, str]]:
    return [(k, n) for k, n in _entries("acts") if k == "spec.ModelConfig"
            and REGISTRY[k][n].observe is None]


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _model_acts())
def test_model_field_changes_the_network(key: str, name: str) -> None:
    base, changed = _probe_values(key, name)
    assert _differ(observe_model(base), observe_model(changed)), f"{key}.{name} changed nothing"


def _train_acts() -> list[tuple[str, str]]:
    out = []
    for k, n in _entries("acts"):
        e = REGISTRY[k][n]
        if e.proven_by is not None:
            continue
        if k in ("spec.TrainingConfig", "engine.EngineConfig") and e.observe is None:
            out.append((k, n))
        elif e.observe == "train":
            out.append((k, n))
    return out


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _train_acts())
def test_training_field_changes_the_training(key: str, name: str, scan: Any,
                                             tmp_path: Path) -> None:
    base, changed = _probe_values(key, name)
    if base.get("device") == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"{key}.{name} acts on CUDA only and this machine has none")
    if name == "channels_last":
        seen = observe_setup(scan, base, tmp_path), observe_setup(scan, changed, tmp_path)
    else:
        seen = observe_train(scan, base, tmp_path), observe_train(scan, changed, tmp_path)
    assert seen[0][0] != "config error", seen[0]
    assert seen[1][0] != "config error", seen[1]
    assert _differ(*seen), f"{key}.{name}={REGISTRY[key][name].probe!r} changed nothing"


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), [(k, n) for k, n in _entries("acts")
                                           if REGISTRY[k][n].proven_by])
def test_field_proven_by_another_rule_names_a_tested_rule(key: str, name: str) -> None:
    rule = REGISTRY[key][name].proven_by
    suite = Path(__file__).resolve().parent
    marker = f'spec("{rule}")'
    assert any(marker in p.read_text(encoding="utf-8") for p in suite.glob("test_*.py")), (
        f"{key}.{name}: no conformance test is marked {rule}")


def _conditional() -> list[tuple[str, str]]:
    return [(k, n) for k, n in _entries("acts") if REGISTRY[k][n].only_with
            and k != "spec.InferenceConfig"]


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _conditional())
def test_field_outside_its_conditions_is_refused(key: str, name: str) -> None:
    from ptychodus_pinn_torch.config.choices import OPTIMIZERS, SCHEDULERS

    entry = REGISTRY[key][name]
    choices = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "enable_oversampling": (False,)}
    outside: dict[str, Any] = {}
    for req in entry.only_with:
        if req.values is not None:  # a value the condition does not allow
            outside[req.field] = next(v for v in choices[req.field] if v not in req.values)
    with pytest.raises(ValueError, match=rf"\.{name}=.*acts only with"):
        _engine({**outside, name: entry.probe})


# ------------------------------------------------------------------ pipelines


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two training scans, a test scan, and three tiny archives (gridsize 1 twice, 2)."""
    from ptychodus_pinn_torch.engine.run import run_training

    folder = tmp_path_factory.mktemp("fields")
    out: dict[str, Path] = {"root": folder}
    for name, seed in (("scan", 5), ("other", 8), ("test", 9)):
        out[name] = folder / f"{name}.npz"
        tiny_scan(seed).to_file(out[name])
    for name, seed, g in (("model", 0, 1), ("model_other", 1, 1), ("model_g2", 0, 2)):
        cfg = _engine({"nepochs": 1, "seed": seed, "model.gridsize": g})
        run_training(out["scan"], cfg, folder / name)
        out[name] = folder / name
    return out


def observe_pipeline(files: dict[str, Path], values: dict[str, Any], tag: str) -> Any:
    from ptychodus_pinn_torch.engine.run import run_training

    given = {"train_data_file": "scan.npz", "output_dir": "out", "nepochs": 1, **values}
    for k in ("train_data_file", "test_data_file"):
        if k in given:
            given[k] = files["root"] / Path(str(given[k]))
    if "train_data_files" in given:
        given["train_data_files"] = tuple(str(files["root"] / f)
                                          for f in given["train_data_files"])
    if given.get("init_model") == "model":
        given["init_model"] = str(files["model"] / "wts.h5.zip")
    given["output_dir"] = files["root"] / f"{given['output_dir']}_{tag}"
    run = run_training(None, _engine(given))
    assert run.archive is not None
    return ([h.train_loss for h in run.result.history], run.result.test_loss,
            run.archive.parent.name.rsplit("_", 1)[0])


def observe_inference(files: dict[str, Path], values: dict[str, Any], tag: str) -> Any:
    from ptychodus_pinn_torch.engine.archive import load_archive
    from ptychodus_pinn_torch.engine.run import run_inference

    model_values, _, _ = _split(values)
    g = int(model_values.get("gridsize", 1))
    folder = files["model_g2" if g == 2 else "model"]
    kw = {k: v for k, v in values.items() if not k.startswith("model.")}
    if kw.get("model_path") == "other":
        folder = files["model_other"]
    kw["model_path"] = folder
    model = load_archive(folder).model_config
    if kw.get("model") == "gridsize=2":
        model = dataclasses.replace(model, gridsize=2)
    kw["model"] = model
    kw["test_data_file"] = files["other" if kw.get("test_data_file") == "other" else "scan"]
    kw["output_dir"] = files["root"] / f"{kw.get('output_dir', 'inf')}_{tag}"
    try:
        rec, path = run_inference(spec.InferenceConfig(**kw), device="cpu")
    except ValueError as exc:
        return ("error", str(exc))
    return [rec.object, rec.coverage], path.parent.name.rsplit("_", 1)[0]


def _pipeline_acts() -> list[tuple[str, str]]:
    return [(k, n) for k, n in _entries("acts")
            if REGISTRY[k][n].observe in ("pipeline", "inference")]


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _pipeline_acts())
def test_pipeline_field_changes_the_output(key: str, name: str, files: dict[str, Path]) -> None:
    base, changed = _probe_values(key, name)
    observe = observe_pipeline if REGISTRY[key][name].observe == "pipeline" else (
        observe_inference)
    a, b = observe(files, base, "a"), observe(files, changed, "b")
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], list):
        differs = _differ(a[0], b[0]) if isinstance(b[0], list) else True
        differs = differs or a[1] != b[1]
    else:
        differs = _differ(a, b)
    assert differs, f"{key}.{name} changed nothing"


# ------------------------------------------------------------------ interop


def _bridge_inputs(changes: dict[str, dict[str, Any]]) -> Iterator[Any]:
    data = {"nphotons": 1e6, "grid_size": (1, 1), "C": 1, **changes.get("params.DataConfig", {})}
    model = {"C_model": 1, "C_forward": 1, **changes.get("params.ModelConfig", {})}
    training = {"n_groups": 16, "train_data_file": "t.npz", "test_data_file": "s.npz",
                **changes.get("params.TrainingConfig", {})}
    yield params.DataConfig(**data)
    yield params.ModelConfig(**model)
    yield params.TrainingConfig(**training)
    yield params.InferenceConfig(**changes.get("params.InferenceConfig", {}))
    yield params.ExecutionConfig(**changes.get("params.ExecutionConfig", {}))


def translate(changes: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """(spec TrainingConfig, EngineConfig or the error making it) of the PyTorch configs."""
    data, model, training, inference, execution = _bridge_inputs(changes)
    sm = bridge.to_model_config(data, model)
    bridge.to_inference_config(sm, data, inference, {"model_path": "m", "test_data_file": "t"})
    st = bridge.to_training_config(sm, data, model, training)
    try:
        engine: Any = bridge.to_engine_config(sm, data, model, training, execution)
    except ValueError as exc:
        engine = ("error", str(exc))
    return st, engine


def _target(st: Any, engine: Any, to: str) -> Any:
    """The translated value of ``to`` (from the EngineConfig when it could be made)."""
    key, _, name = to.rpartition(".")
    training = engine.training if isinstance(engine, EngineConfig) else st
    if key == "spec.ModelConfig":
        return getattr(training.model, name)
    if key == "spec.TrainingConfig":
        return getattr(training, name)
    return engine if isinstance(engine, tuple) else getattr(engine, name)


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _entries("carried"))
def test_bridge_carries_the_field(key: str, name: str) -> None:
    entry = REGISTRY[key][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if key.startswith("spec."):  # an alias inside the spec class itself
            base = spec.TrainingConfig(model=spec.ModelConfig())
            a = _target(base, None, entry.to)
            b = _target(spec.TrainingConfig(model=spec.ModelConfig(), **{name: entry.probe}),
                        None, entry.to)
        else:
            a = _target(*translate({}), entry.to)
            b = _target(*translate({key: {name: entry.probe}}), entry.to)
    assert a != b, f"{key}.{name} -> {entry.to}: the translation did not change"


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _entries("warned"))
def test_bridge_warns_about_a_field_it_cannot_carry(key: str, name: str) -> None:
    entry = REGISTRY[key][name]
    owner = key.split(".")[1]
    with pytest.warns(UserWarning, match=rf"{owner}\.{name}=.*has no effect here"):
        translate({key: {name: entry.probe}})


def _refuse_at_entrance(key: str, name: str, value: Any) -> None:
    if key.startswith("params."):
        translate({key: {name: value}})
    elif key == "spec.InferenceConfig":
        from ptychodus_pinn_torch.engine.run import run_inference

        run_inference(spec.InferenceConfig(model=spec.ModelConfig(), model_path=Path("m"),
                                           test_data_file=Path("t"), **{name: value}))
    else:
        dotted = f"model.{name}" if key == "spec.ModelConfig" else name
        _engine({dotted: value})


@pytest.mark.spec("CFG-100")
@pytest.mark.parametrize(("key", "name"), _entries("refused"))
def test_refused_field_is_refused_by_name(key: str, name: str) -> None:
    entry = REGISTRY[key][name]
    owner = key.split(".")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=rf"{owner}\.{name}=.*not supported"):
            _refuse_at_entrance(key, name, entry.probe)


# ------------------------------------------------------------------ ptychodus settings


@pytest.mark.spec("CFG-100")
def test_every_ptychodus_setting_reaches_an_acting_field() -> None:
    from ptychodus_pinn_torch.host.settings import PARAMETERS

    tables = {"model": REGISTRY["spec.ModelConfig"], "training": REGISTRY["spec.TrainingConfig"],
              "inference": REGISTRY["spec.InferenceConfig"],
              "execution": REGISTRY["engine.EngineConfig"]}
    # read by the host itself (HOST rules): inference batching and refinement, the worker's
    # timeouts, model backups, starting from the loaded model (EngineConfig.init_model), MLflow
    host_only = {"inference_batch_size", "refine_epochs", "worker_start_timeout_s",
                 "worker_stall_timeout_s", "overwrite_model", "train_from_loaded_model",
                 "mlflow"}
    for p in PARAMETERS:
        if p.section == "execution" and p.spec_field in host_only:
            continue  # read by the host itself (HOST rules)
        entry = tables[p.section].get(p.spec_field)
        assert entry is not None, f"[{p.group}] {p.name} -> {p.spec_field}: no such field"
        assert entry.status == "acts", f"[{p.group}] {p.name} offers a {entry.status} field"
