"""Python API for scripts and notebooks, thin over the engine the ``pinn-torch`` CLI uses.

::

    from ptychodus_pinn_torch import api

    scan = api.simulate("scan.npz", seed=3, object_shape=(128, 128))
    config = api.load_config("config.yaml", {"nepochs": 5})     # or a dict, or None
    model = api.train(scan, config, seed=0)
    model.save("run/wts.h5.zip")
    result = api.predict_and_stitch(api.Model.load("run/wts.h5.zip"), scan)
    print(api.evaluate(result.object, scan.objectGuess).phase_ssim)

Importing this package does not import torch; :func:`train` and :func:`predict_and_stitch` do.
"""

from ptychodus_pinn_torch.api.model import Model
from ptychodus_pinn_torch.api.workflow import load_config, predict_and_stitch, simulate, train
from ptychodus_pinn_torch.eval import evaluate

__all__ = ["Model", "evaluate", "load_config", "predict_and_stitch", "simulate", "train"]
