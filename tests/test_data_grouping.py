"""Property tests: grouping equals upstream's procedure on the global legacy RNG for random
datasets and arguments (hypothesis), and simulation variants stay in the contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from ptychodus_pinn_torch.data import DataError, group_indices
from ptychodus_pinn_torch.data.simulate import simulate_scan


def reference(x: np.ndarray, y: np.ndarray, C: int, K: int, nsamples: int, seed: int
              ) -> np.ndarray:
    """Upstream §2.3 on numpy's global RNG (the caller restores its state)."""
    n_points = len(x)
    np.random.seed(seed)
    n = min(nsamples, n_points)
    seeds = np.random.choice(np.arange(n_points), n, replace=False) if n < n_points else (
        np.arange(n_points))
    if C == 1:
        return seeds.reshape(-1, 1)
    pts = np.column_stack([x, y])
    _, idx = cKDTree(pts).query(pts[seeds], k=min(K + 1, n_points))
    out = []
    for row in idx:
        nb = row[1 : K + 1] if len(row) > K else row[:K]
        out.append(np.random.choice(nb, C, replace=False))
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(
    M=st.integers(4, 80),
    gridsize=st.integers(1, 2),
    extra_k=st.integers(0, 6),
    nsamples=st.integers(1, 80),
    seed=st.integers(0, 2**31 - 1),
    data_seed=st.integers(0, 1000),
)
def test_grouping_matches_upstream_reference(
    M: int, gridsize: int, extra_k: int, nsamples: int, seed: int, data_seed: int
) -> None:
    C = gridsize * gridsize
    K = C + extra_k
    rs = np.random.RandomState(data_seed)
    x, y = rs.uniform(0, 100, M), rs.uniform(0, 100, M)
    if C > 1 and nsamples > M:
        with pytest.raises(DataError, match="oversampling"):
            group_indices(x, y, gridsize=gridsize, K=K, nsamples=nsamples, seed=seed)
        return
    state = np.random.get_state()
    try:
        ref = reference(x, y, C, K, nsamples, seed)
    finally:
        np.random.set_state(state)
    ours = group_indices(x, y, gridsize=gridsize, K=K, nsamples=nsamples, seed=seed)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize(("scan", "probe"), [("spiral", "defocus"), ("jitter", "pinhole")])
def test_simulation_variants(scan: str, probe: str) -> None:
    raw = simulate_scan("phantom", N=32, object_shape=(80, 80), scan=scan,  # type: ignore[arg-type]
                        overlap=0.6, nphotons=1e5, seed=7, probe=probe)  # type: ignore[arg-type]
    assert raw.n_positions > 10 and raw.N == 32
    assert raw.diff3d.dtype == np.float32 and np.all(raw.diff3d >= 0)
    d = raw.generate_grouped_data(32, K=6, nsamples=10, seed=0, gridsize=2,
                                  y_centring="physical")
    assert d["Y"].shape == (10, 32, 32, 4)


def test_simulation_rejects_bad_settings() -> None:
    with pytest.raises(DataError, match="overlap"):
        simulate_scan(overlap=-0.1)
    with pytest.raises(DataError, match="nphotons"):
        simulate_scan(nphotons=0)
    with pytest.raises(DataError, match="object kind"):
        simulate_scan(object_kind="lena")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="too small"):
        simulate_scan(N=64, object_shape=(40, 40))
