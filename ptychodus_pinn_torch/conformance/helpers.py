"""Small builders shared by the conformance suite and the project's own tests (``tests/``).

Public on purpose: tests import these instead of keeping copies. Tiny sizes: N = 64,
n_filters_scale = 1, a 96x96 simulated object with 16 scan positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig


def tiny_training(epochs: int = 2, model_type: str = "pinn", *,
                  model: dict[str, Any] | None = None, **fields: Any) -> TrainingConfig:
    """A spec TrainingConfig that trains in a second: batch 4, 16 groups, 1e6 photons, N 64,
    n_filters_scale 1 (``model`` overrides ModelConfig fields, ``fields`` TrainingConfig's)."""
    model_fields = {"N": 64, "n_filters_scale": 1, "model_type": model_type, **(model or {})}
    base: dict[str, Any] = {"batch_size": 4, "nepochs": epochs, "nphotons": 1e6, "n_groups": 16}
    if model_type == "supervised":
        base["torch_loss_mode"] = "mae"
    return TrainingConfig(model=ModelConfig(**model_fields), **{**base, **fields})


def tiny_engine(epochs: int = 2, model_type: str = "pinn", *,
                engine: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                **fields: Any) -> EngineConfig:
    """:func:`tiny_training` inside an EngineConfig on the CPU without early stopping
    (``engine`` overrides EngineConfig fields)."""
    run: dict[str, Any] = {"device": "cpu", "early_stop_patience": None, **(engine or {})}
    return EngineConfig(training=tiny_training(epochs, model_type, model=model, **fields), **run)


def tiny_scan(seed: int = 5, **kw: Any) -> Any:
    """A simulated 16-position scan (96x96 object, overlap 0.5, 1e6 photons) with its true
    object (for labels). Returns ``RawData``."""
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    options: dict[str, Any] = {"object_shape": (96, 96), "seed": seed, "overlap": 0.5,
                               "nphotons": 1e6, **kw}
    return simulate_scan(**options)


__all__ = ["tiny_engine", "tiny_scan", "tiny_training"]


#: ``pinn-torch train`` flags of a seconds-long CPU training on :func:`tiny_scan` (8 groups of
#: batch 4, the small network, no progress bar, no early stop)
TINY_TRAIN_FLAGS = ("--n-groups", "8", "--n-filters-scale", "1", "--batch-size", "4",
                    "--no-progress", "--device", "cpu", "--early-stop-patience", "0")


def tiny_scan_file(folder: Any) -> Any:
    """:func:`tiny_scan` written as ``folder/scan.npz`` (a ``pathlib.Path``); returns the path."""
    path = folder / "scan.npz"
    tiny_scan().to_file(path)
    return path


def synchronization_problem(side: int, noise: float, seed: int = 0, gap: bool = False
                            ) -> tuple[Any, np.ndarray, np.ndarray]:
    """A phase-synchronization problem with a known answer: ``(matrix, positions, theta)``,
    the degree-normalized (n, n) csr overlap matrix of a jittered side x side raster (8
    neighbours each, 10 px apart), positions (n, 2) float64 px, and the true offsets theta (n,)
    radians: ``H_ij = c_ij exp(i(theta_i - theta_j + e_ij))``, e ~ N(0, noise) radians.
    ``gap``: the raster in two halves 1000 px apart (no overlap between them)."""
    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree

    rs = np.random.RandomState(seed)
    g = np.arange(side, dtype=np.float64) * 10.0
    yy, xx = np.meshgrid(g, g, indexing="ij")
    pos = np.column_stack([xx.ravel(), yy.ravel()]) + rs.normal(0, 1, (side * side, 2))
    if gap:
        pos[pos[:, 0] > g[side // 2], 0] += 1000.0
    n = len(pos)
    dist, idx = cKDTree(pos).query(pos, k=9)
    close = dist[:, 1:].ravel() < 20.0
    i, j = np.repeat(np.arange(n), 8)[close], idx[:, 1:].ravel()[close]
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], 1), axis=0)
    i, j = pairs[:, 0], pairs[:, 1]
    theta = rs.uniform(-np.pi, np.pi, n)
    h = rs.uniform(0.5, 2.0, len(i)) * np.exp(1j * (theta[i] - theta[j]
                                                    + rs.normal(0, noise, len(i))))
    m = coo_matrix((np.concatenate([h, np.conj(h)]), (np.concatenate([i, j]),
                                                      np.concatenate([j, i]))),
                   shape=(n, n)).tocsr()
    degree = np.asarray(np.abs(m).sum(axis=1)).ravel()
    s = 1.0 / np.sqrt(degree)
    return m.multiply(s[:, None]).multiply(s[None, :]).tocsr(), pos, theta


def scan_centres(scan: Any) -> np.ndarray:
    """(P, 2) float64 scan positions of a RawData, ``[:, 0] = x`` (column), in object pixels."""
    return np.column_stack([scan.xcoords, scan.ycoords])


def error_after_gain(obj: np.ndarray, truth: np.ndarray, centres: np.ndarray) -> float:
    """Relative error ``|g*obj - truth| / |truth|`` of a complex object (H, W) in the box the
    ``centres`` (P, 2) span, after the best complex gain ``g`` (global phase and scale)."""
    box = (slice(int(centres[:, 1].min()), int(centres[:, 1].max()) + 1),
           slice(int(centres[:, 0].min()), int(centres[:, 0].max()) + 1))
    a, t = obj[box].astype(np.complex128), truth[box].astype(np.complex128)
    gain = np.vdot(a, t) / np.vdot(a, a)
    return float(np.linalg.norm(gain * a - t) / np.linalg.norm(t))


_LOAD_PEAK_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
from ptychodus_pinn_torch.data import paging
from ptychodus_pinn_torch.data.raw_data import RawData

def status_bytes(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(key)

path, chunk, map_patterns = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if chunk:
    paging.CHUNK_BYTES = chunk
before = status_bytes("VmRSS")
raw = RawData.from_file(path, map_patterns=map_patterns)
peak = status_bytes("VmHWM")
result = raw.diff3d
with np.load(path, allow_pickle=False) as z:
    stored = z["diff3d"]
    labels = z["Y"] if "Y" in z.files else None
expected = (np.sqrt(stored.astype(np.float64)).astype(np.float32) if stored.dtype.kind in "iu"
            else stored.astype(np.float32))
equal = result.dtype == np.float32 and np.array_equal(result, expected)
arrays = [result]
if labels is not None:
    equal = equal and raw.Y.dtype == np.complex64 and np.array_equal(raw.Y, labels)
    arrays.append(raw.Y)
print(json.dumps({"before": before, "peak": peak,
                  "result_bytes": sum(int(a.nbytes) for a in arrays), "equal": bool(equal),
                  "mapped": any(paging.is_mapped(a) for a in arrays),
                  "writeable": all(bool(a.flags.writeable) for a in arrays)}))
"""


def load_peak(path: Any, chunk_bytes: int = 0, map_patterns: bool = False) -> dict[str, Any]:
    """``RawData.from_file(path)`` in a fresh Python process (Linux ``/proc``): its resident set
    before the call (``before``, bytes), the peak during it (``peak``, ``VmHWM``), the bytes of
    the float32 ``diff3d`` (plus the complex64 ``Y`` when the file has one) returned
    (``result_bytes``), whether they equal numpy's ``np.load`` of the members (``sqrt`` in
    float64 for integer counts; ``equal``), and whether one is a memory map (``mapped``) or
    all are writeable. ``chunk_bytes`` > 0 sets ``paging.CHUNK_BYTES`` first;
    ``map_patterns`` is passed to ``from_file`` (DATA-241)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _LOAD_PEAK_SCRIPT, str(path), str(chunk_bytes),
                           "1" if map_patterns else "0"],
                          env=env, check=True, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])
