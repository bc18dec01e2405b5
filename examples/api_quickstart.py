"""The Python API end to end: simulate a scan, train, save, load, reconstruct, evaluate.

    python examples/api_quickstart.py [OUT_DIR] [EPOCHS]

Small on purpose (a 96x96 object, a few epochs; well under a minute on one CPU core). Use a
bigger scan and more epochs for a real result.
"""

import sys
from pathlib import Path

from ptychodus_pinn_torch import api

out = Path(sys.argv[1] if len(sys.argv) > 1 else "api_quickstart")
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3

scan = api.simulate(out / "scan.npz", seed=3, object_shape=(96, 96), nphotons=1e6)
config = api.load_config(None, {"nepochs": epochs, "n_groups": 64, "model.n_filters_scale": 1})
model = api.train(scan, config, seed=0, device="cpu")
archive = model.save(out / "wts.h5.zip")

result = api.predict_and_stitch(api.Model.load(archive), out / "scan.npz", device="cpu")
quality = api.evaluate(result.object, scan.objectGuess)
print(f"trained {len(model.losses)} epoch(s), loss {model.losses[0]:.4g} -> {model.losses[-1]:.4g}")
print(f"object {result.object.shape}: amplitude SSIM {quality.amplitude_ssim:.3f}, "
      f"phase SSIM {quality.phase_ssim:.3f}, "
      f"FRC 1/2-bit resolution {quality.resolution['half_bit'].pixels:.2f} px")
