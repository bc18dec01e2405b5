"""Reading a TensorFlow PtychoPINN archive without unpickling anything.

Upstream's TF backend writes ``wts.h5.zip`` (reference §7.1) holding, per model,
``<model>/model.keras`` (a Keras 3 zip: ``config.json`` + ``model.weights.h5``),
``<model>/model.h5`` (an HDF5 file whose only content is the attribute ``intensity_scale``) and
``*.dill`` pickles. Only the first two are read here: JSON and HDF5 (through h5py), every member
size-checked before it is inflated; the dill members are never opened.

Keras 3 stores a functional model's weights under ``layers/<snake_case(class)>[_k]/vars/<i>``,
numbered per class in the order of the model's layers (``config.json``'s layer list without the
operation entries) -- not under the layers' own names. Conv2D kernels are ``(3, 3, in, out)``
(HWIO) with ``vars/0`` the kernel and ``vars/1`` the bias.

The probe: upstream's ``ProbeIllumination`` layer (in ``autoencoder/model.keras``; the inference
model ``diffraction_to_obj`` has none) holds the normalized probe as its attribute ``w``, a raw
``tf.Variable``. Keras 2 (TF <= 2.15) tracks such a variable, so its ``.keras`` weights hold the
probe at ``layers/probe_illumination/vars/0`` ((1, N, N, 1) complex64, which h5py reads as
complex); Keras 3 (TF >= 2.16) does not track it and saves an empty ``vars`` group (as it does
for ``IntensityScaler``'s ``log_scale``, seen on tests/tf_fixture). :func:`read_tf_archive`
reads the probe where it is saved and reports None where it is not.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.engine.archive.format import ArchiveError, MiB
from ptychodus_pinn_torch.engine.archive.safezip import ZIP_ERRORS, read_member

#: models looked for in the archive, in order (the inference model first).
MODEL_DIRS = ("diffraction_to_obj", "autoencoder")
#: largest members read (bytes, uncompressed).
MAX_KERAS_BYTES = 1024 * MiB
MAX_CONFIG_BYTES = 16 * MiB
MAX_SCALE_FILE_BYTES = 1 * MiB
#: most zip entries parsed in either container.
MAX_ENTRIES = 256


@dataclass(frozen=True)
class KerasLayer:
    """One entry of a functional model's ``config.json``.

    name: the layer's name; class_name: e.g. "Conv2D"; config: its config dict;
    inputs: names of the layers whose outputs it consumes, in argument order; is_operation:
    True for a Keras operation (``keras.src.ops...``, e.g. a slice), which holds no weights.
    """

    name: str
    class_name: str
    config: dict[str, Any]
    inputs: tuple[str, ...]
    is_operation: bool


@dataclass
class KerasModel:
    """A functional Keras model read from a ``.keras`` file: its layers (config order), the
    weights of every Conv2D layer by layer name (``[kernel HWIO, bias]``, float32) and the
    probe of its ``ProbeIllumination`` layer where one was saved."""

    layers: list[KerasLayer]
    conv_weights: dict[str, list[np.ndarray]] = field(default_factory=dict)
    #: the probe saved with a ``ProbeIllumination`` layer ((N, N) complex64), or None
    probe: np.ndarray | None = None

    def layer(self, name: str) -> KerasLayer | None:
        return next((layer for layer in self.layers if layer.name == name), None)


@dataclass
class TFArchive:
    """What :func:`read_tf_archive` found: the model, which member it came from, the
    ``intensity_scale`` attribute of ``<model>/model.h5`` (None when absent), and the probe
    saved with a ``ProbeIllumination`` layer (``(N, N)`` complex64, as upstream normalized it;
    None when no member holds one) with the member it came from."""

    model: KerasModel
    member: str
    intensity_scale: float | None
    probe: np.ndarray | None = None
    probe_member: str | None = None


def _histories(node: Any) -> Iterator[str]:
    """Layer names referenced by a Keras 3 (``keras_history``) or Keras 2 (``[name, i, j,
    kwargs]``) inbound-node structure, in order."""
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict) and isinstance(config.get("keras_history"), list):
            yield str(config["keras_history"][0])
            return
        for value in node.values():
            yield from _histories(value)
    elif isinstance(node, list):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
            yield node[0]
            return
        for value in node:
            yield from _histories(value)


def parse_functional_config(config: dict[str, Any], where: str) -> list[KerasLayer]:
    """The layers of a functional model's ``config.json`` (dict), in their listed order."""
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ArchiveError(
            f"{where}: config.json is not a functional Keras model (no layer list); only models "
            "saved by upstream's TensorFlow PtychoPINN can be imported"
        )
    layers = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ArchiveError(f"{where}: config.json has a malformed layer entry")
        module = str(entry.get("module") or "")
        name = str(entry.get("name") or entry["config"].get("name") or "")
        inputs = tuple(_histories(entry.get("inbound_nodes", [])))
        layers.append(
            KerasLayer(
                name=name,
                class_name=str(entry.get("class_name")),
                config=entry["config"],
                inputs=inputs,
                is_operation=module.startswith("keras.src.ops"),
            )
        )
    return layers


def bare_class_name(class_name: str) -> str:
    """``"ProbeIllumination"`` for a registered name such as ``"ptycho>ProbeIllumination"``."""
    return class_name.rsplit(">", 1)[-1]


def weight_group_names(layers: list[KerasLayer], class_name: str, snake: str) -> dict[str, str]:
    """Layer name -> HDF5 group of each ``class_name`` layer: ``snake``, ``snake_1``, ... in
    config order (Keras 3's per-class numbering of the saved layers)."""
    chosen = [x for x in layers
              if bare_class_name(x.class_name) == class_name and not x.is_operation]
    return {layer.name: snake if k == 0 else f"{snake}_{k}" for k, layer in enumerate(chosen)}


def _read_conv_weights(
    data: bytes, layers: list[KerasLayer], where: str
) -> dict[str, list[np.ndarray]]:
    import h5py

    groups = weight_group_names(layers, "Conv2D", "conv2d")
    weights: dict[str, list[np.ndarray]] = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            if "layers" not in h5:
                raise ArchiveError(
                    f"{where}: model.weights.h5 has no 'layers' group; not a Keras 3 weights file"
                )
            for name, group in groups.items():
                node = h5["layers"].get(group)
                if node is None or "vars" not in node:
                    raise ArchiveError(
                        f"{where}: model.weights.h5 has no weights for Conv2D layer {name!r} "
                        f"(group layers/{group}); the file does not match its config.json"
                    )
                variables = node["vars"]
                arrays = []
                for key in ("0", "1"):
                    if key not in variables:
                        raise ArchiveError(
                            f"{where}: Conv2D layer {name!r} lacks weight {key} (kernel, bias)"
                        )
                    dataset = variables[key]
                    if dataset.size * 4 > MAX_KERAS_BYTES:
                        raise ArchiveError(f"{where}: weight {group}/{key} is too large")
                    arrays.append(np.asarray(dataset[()], dtype=np.float32))
                weights[name] = arrays
    except ArchiveError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ArchiveError(f"{where}: model.weights.h5 is unreadable ({exc})") from exc
    return weights


#: the upstream layer holding the probe, and its Keras weight-group name
PROBE_LAYER_CLASS = "ProbeIllumination"
PROBE_GROUP = "probe_illumination"


def _probe_from_weights(data: bytes, layers: list[KerasLayer], where: str) -> np.ndarray | None:
    """The probe saved with the ``ProbeIllumination`` layer of ``layers`` (``(N, N)``
    complex64), or None when the model has no such layer or the layer saved no variable."""
    import h5py

    groups = weight_group_names(layers, PROBE_LAYER_CLASS, PROBE_GROUP)
    if not groups:
        return None
    group = next(iter(groups.values()))
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            node = h5.get(f"layers/{group}/vars")
            if node is None or "0" not in node:
                return None  # Keras 3: the probe's tf.Variable is not tracked, nothing saved
            dataset = node["0"]
            if dataset.size * 8 > MAX_KERAS_BYTES:
                raise ArchiveError(f"{where}: the probe {group}/vars/0 is too large")
            probe = np.asarray(dataset[()])
    except ArchiveError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ArchiveError(f"{where}: model.weights.h5 is unreadable ({exc})") from exc
    if not (np.issubdtype(probe.dtype, np.complexfloating)
            or np.issubdtype(probe.dtype, np.floating)):
        raise ArchiveError(f"{where}: the probe {group}/vars/0 has dtype {probe.dtype}, not a "
                           "complex or real array")
    squeezed = probe.reshape([d for d in probe.shape if d != 1] or [1])
    if squeezed.ndim == 3 and all(np.array_equal(squeezed[..., 0], squeezed[..., k])
                                  for k in range(squeezed.shape[-1])):
        squeezed = squeezed[..., 0]  # the same probe for every channel
    if squeezed.ndim != 2 or squeezed.shape[0] != squeezed.shape[1]:
        raise ArchiveError(f"{where}: the probe {group}/vars/0 has shape {probe.shape}, not "
                           "(1, N, N, 1)")
    if not np.all(np.isfinite(squeezed)):
        raise ArchiveError(f"{where}: the probe {group}/vars/0 holds NaN or Inf")
    return squeezed.astype(np.complex64)


def _open_zip(data: bytes | Path, where: str) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except ZIP_ERRORS as exc:
        raise ArchiveError(f"{where} is not a readable zip archive ({exc})") from exc
    if len(zf.infolist()) > MAX_ENTRIES:
        raise ArchiveError(f"{where} lists {len(zf.infolist())} members; refused as hostile")
    return zf


def _member(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    info = zf.getinfo(name)
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{where}: member {name!r} is encrypted; refused")
    if info.file_size > limit or info.file_size > 200 * max(info.compress_size, 1) + MiB:
        raise ArchiveError(
            f"{where}: member {name!r} declares {info.file_size} bytes from "
            f"{info.compress_size}; refused as too large or a zip bomb"
        )
    return read_member(zf, info, where)


def _keras_parts(zf: zipfile.ZipFile, where: str) -> tuple[list[KerasLayer], bytes]:
    """The layers of a ``.keras`` file's config.json and the bytes of its weights file."""
    names = set(zf.namelist())
    for required in ("config.json", "model.weights.h5"):
        if required not in names:
            raise ArchiveError(
                f"{where} has no {required} (members {sorted(names)[:6]}); not a Keras 3 "
                "model file"
            )
    try:
        config = json.loads(_member(zf, "config.json", MAX_CONFIG_BYTES, where))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{where}: config.json is not valid JSON ({exc})") from exc
    layers = parse_functional_config(config, where)
    return layers, _member(zf, "model.weights.h5", MAX_KERAS_BYTES, where)


def read_keras_probe(data: bytes, where: str) -> np.ndarray | None:
    """The probe a ``.keras`` file (``data``: its bytes) saved with its ``ProbeIllumination``
    layer (``(N, N)`` complex64), or None (no such layer, or Keras 3 saved no variable)."""
    with _open_zip(data, where) as zf:
        layers, weights = _keras_parts(zf, where)
        return _probe_from_weights(weights, layers, where)


def read_keras_file(data: bytes, where: str) -> KerasModel:
    """A ``.keras`` file's config and Conv2D weights (``data``: the file's bytes)."""
    with _open_zip(data, where) as zf:
        layers, data_h5 = _keras_parts(zf, where)
        weights = _read_conv_weights(data_h5, layers, where)
        probe = _probe_from_weights(data_h5, layers, where)
    return KerasModel(layers=layers, conv_weights=weights, probe=probe)


def _read_scale(data: bytes, where: str) -> float | None:
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            value = h5.attrs.get("intensity_scale")
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{where}: model.h5 is unreadable ({exc})") from exc
    if value is None:
        return None
    scale = float(np.asarray(value).reshape(-1)[0])
    return scale if np.isfinite(scale) and scale > 0 else None


def read_tf_archive(path: str | Path) -> TFArchive:
    """Read the Keras members of upstream's TF ``wts.h5.zip`` (or a bare ``.keras`` file).

    Raises:
        FileNotFoundError: no such file.
        ArchiveError: not a TF PtychoPINN archive, or a member is malformed or oversized.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; pass upstream's TF wts.h5.zip")
    where = str(path)
    if path.suffix == ".keras":
        model = read_keras_file(path.read_bytes(), where)
        return TFArchive(model, path.name, None, model.probe,
                         None if model.probe is None else path.name)
    with _open_zip(path, where) as zf:
        names = set(zf.namelist())
        for model_dir in MODEL_DIRS:
            member = f"{model_dir}/model.keras"
            if member in names:
                model = read_keras_file(
                    _member(zf, member, MAX_KERAS_BYTES, where), f"{where}:{member}"
                )
                scale_member = f"{model_dir}/model.h5"
                scale = None
                if scale_member in names:
                    scale = _read_scale(
                        _member(zf, scale_member, MAX_SCALE_FILE_BYTES, where), where
                    )
                probe, probe_member = model.probe, None if model.probe is None else member
                for other_dir in MODEL_DIRS:  # the autoencoder holds ProbeIllumination
                    other = f"{other_dir}/model.keras"
                    if probe is not None or other == member or other not in names:
                        continue
                    probe = read_keras_probe(_member(zf, other, MAX_KERAS_BYTES, where),
                                             f"{where}:{other}")
                    probe_member = None if probe is None else other
                return TFArchive(model, member, scale, probe, probe_member)
    raise ArchiveError(
        f"{where} holds no {' or '.join(d + '/model.keras' for d in MODEL_DIRS)}; it is not a "
        "TensorFlow PtychoPINN archive (pinn-torch import-tf reads only those Keras members)"
    )
