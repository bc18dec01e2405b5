"""Make the TensorFlow fixture of ``pinn-torch import-tf`` (run once, in a scratch venv).

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfenv/bin/python tests/tf_fixture/make_tf_archive.py tests/tf_fixture

TensorFlow is never a dependency of the project: this script is the only code that imports it,
and the tests only read what it wrote. It builds, with Keras 3 under TensorFlow 2.21, the
generator part of upstream TF PtychoPINN's ``diffraction_to_obj`` as the reference describes it
(shared/reference/ptychopinn-upstream.md §5.1; written from that description, not copied):
``IntensityScaler`` (x / exp(log_scale), log_scale an untracked tf.Variable as upstream), the
encoder of Conv_Pool blocks, and two decoders of Conv_Up blocks ending in
``create_decoder_last`` (pad_object, probe.big: conv of the first channels -> activation layer
``amp``/``phi`` -> ZeroPadding2D; the last 4 channels -> Conv_Up block -> conv -> swish -> border
mask; added), combined to ``obj = A exp(i phi)``. Layers are created in upstream's order (each
head's two final convs first) and carry its names (``input``, ``intensity_scaler``, ``amp``,
``phi``, ``obj``). Weights are Keras' Glorot init with random biases (so that bias mapping is
tested). It writes:

- ``tf_wts.h5.zip``: upstream's archive layout (``diffraction_to_obj/model.keras``,
  ``diffraction_to_obj/model.h5`` with attribute ``intensity_scale``), plus ``manifest.dill`` and
  ``params.dill`` members that are deliberately NOT valid pickles: an importer that tried to
  unpickle them would fail.
- ``tf_forward.npz``: an input batch ``x`` (B, N, N, C) float32 (already times the intensity
  scale) and TF's outputs for it: ``obj`` complex64, ``amp`` and ``phase`` float32 (B, N, N, C),
  with ``nphotons`` and ``intensity_scale``.
"""

import io
import json
import math
import os
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

N, GRIDSIZE, SCALE, AMP_ACT, NPHOTONS, SEED = 64, 2, 1, "swish", 1e6, 1234
C = GRIDSIZE * GRIDSIZE


_STATE: dict = {}  # the shared log_scale tf.Variable (upstream keeps it in a module cache)


class IntensityScaler(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = _STATE["log_scale"]

    def call(self, x):
        return x / tf.math.exp(self.w)


class ActivationLayer(keras.layers.Layer):
    def __init__(self, activation_name, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.activation_name = activation_name
        self.scale = scale

    def call(self, x):
        if self.activation_name == "tanh":
            return self.scale * tf.math.tanh(x)
        return self.scale * keras.activations.get(self.activation_name)(x)

    def get_config(self):
        return {**super().get_config(), "activation_name": self.activation_name,
                "scale": self.scale}


class CombineComplexLayer(keras.layers.Layer):
    def call(self, inputs):
        amp, phase = inputs
        return tf.complex(amp * tf.math.cos(phase), amp * tf.math.sin(phase))


def conv(filters, activation=None):
    return keras.layers.Conv2D(filters, (3, 3), padding="same", activation=activation)


def up_block(x, filters):
    x = conv(filters, "relu")(x)
    x = conv(filters, "relu")(x)
    return keras.layers.UpSampling2D((2, 2))(x)


def decoder(z, name, act_name, scale):
    conv1, conv2 = conv(C), conv(C)  # upstream creates the two final convs first
    act = ActivationLayer(act_name, scale, name=name)
    x = z
    for f in (SCALE * 64, SCALE * 32):
        x = up_block(x, f)
    centre = act(conv1(x[..., :-4]))
    x1 = keras.layers.ZeroPadding2D((N // 4, N // 4), name=f"{name}_padded")(centre)
    x2 = keras.activations.swish(conv2(up_block(x[..., -4:], SCALE * (2048 // N))))
    border = np.ones((1, N, N, 1), np.float32)
    border[:, N // 4: 3 * N // 4, N // 4: 3 * N // 4] = 0.0
    return keras.layers.Add()([x1, x2 * border])


def build():
    keras.utils.set_random_seed(SEED)
    scale = math.sqrt(NPHOTONS) / (N / 2)
    _STATE["log_scale"] = tf.Variable(math.log(scale), trainable=True)
    inp = keras.Input((N, N, C), name="input")
    positions = keras.Input((1, 2, C), name="input_positions")
    x = IntensityScaler(name="intensity_scaler")(inp)
    for f in (SCALE * 32, SCALE * 64, SCALE * 128):
        x = conv(f, "relu")(x)
        x = conv(f, "relu")(x)
        x = keras.layers.MaxPooling2D((2, 2), padding="same")(x)
    amp = decoder(x, "amp", AMP_ACT, 1.0)
    phase = decoder(x, "phi", "tanh", math.pi)
    obj = CombineComplexLayer(name="obj")([amp, phase])
    model = keras.Model([inp, positions], [obj, amp, phase])
    rs = np.random.RandomState(SEED)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.bias.assign(rs.normal(0.0, 0.05, layer.bias.shape).astype(np.float32))
    return model, scale


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model, scale = build()
    train = np.load(Path(__file__).resolve().parents[2] / "fixtures" / "train.npz")
    x = train["diff3d"][: 3 * C].astype(np.float64)
    x = x / np.sqrt(np.mean(np.sum(x * x, axis=(1, 2)))) * (N / 2)  # E[sum X^2] = (N/2)^2
    x = (x.reshape(3, C, N, N).transpose(0, 2, 3, 1) * scale).astype(np.float32)
    positions = np.zeros((3, 1, 2, C), np.float32)
    obj, amp, phase = (np.asarray(t) for t in model([x, positions]))
    keras_file = out / "model.keras"
    model.save(keras_file)
    intensity = io.BytesIO()
    with h5py.File(intensity, "w") as h5:
        h5.attrs["intensity_scale"] = scale
    with zipfile.ZipFile(out / "tf_wts.h5.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.dill", b"not a pickle: an importer must never unpickle this")
        zf.write(keras_file, "diffraction_to_obj/model.keras")
        zf.writestr("diffraction_to_obj/model.h5", intensity.getvalue())
        zf.writestr("diffraction_to_obj/params.dill", b"not a pickle either")
        zf.writestr("diffraction_to_obj/custom_objects.dill", b"not a pickle either")
    keras_file.unlink()
    np.savez_compressed(
        out / "tf_forward.npz", x=x, obj=obj.astype(np.complex64), amp=amp.astype(np.float32),
        phase=phase.astype(np.float32), nphotons=np.float64(NPHOTONS),
        intensity_scale=np.float64(scale),
        versions=np.array(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__})),
    )
    print(f"wrote {out / 'tf_wts.h5.zip'} and {out / 'tf_forward.npz'} (TF {tf.__version__}, "
          f"Keras {keras.__version__})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/tf_fixture"))
