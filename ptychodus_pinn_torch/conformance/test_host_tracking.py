"""HOST-180..181: ptychodus trains starting from the loaded model, and tracks with MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.host.sample_data import simulate_scan

OURS = "ptychodus-pinn-torch"


@pytest.fixture()
def library(backend_name: str) -> Any:
    if backend_name != OURS:
        pytest.skip(f"rule about the {OURS} library; backend under test is {backend_name}")
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    library = PtychoPINNTorchLibrary(SettingsRegistry())
    library.model_settings.num_filters_scale.set_value(1)
    library.training_settings.num_groups.set_value(16)
    library.training_settings.num_epochs.set_value(1)
    return library


def _train(reconstructor: Any, folder: Path) -> None:
    for _ in reconstructor.train(folder, folder):
        pass


# slow: two real trainings in worker processes (~30 s on an idle 2-core box)
@pytest.mark.slow
@pytest.mark.spec("HOST-180", "HOST-181")
def test_train_from_the_loaded_model_with_mlflow(library: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from ptychodus_pinn_torch.engine.archive import load_archive, peek_archive
    from ptychodus_pinn_torch.engine.mlflow_tracking import resolve_tracking_uri

    store = tmp_path / "store"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store))
    pinn = library.reconstructor("PINN")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, seed in ((first, 1), (second, 2)):
        folder.mkdir()
        pinn.export_training_data(folder / "train_data.npz",
                                  simulate_scan(n_side=4, seed=seed).reconstruct_input())

    execution = library.execution_settings
    execution.train_from_loaded_model.set_value(True)
    with pytest.raises(ValueError, match="TrainFromLoadedModel is on but no model"):
        _train(pinn, first)
    execution.train_from_loaded_model.set_value(False)
    execution.mlflow_tracking.set_value(True)
    _train(pinn, first)
    trained = Path(pinn.last_train_result["archive"])
    assert pinn.is_model_loaded() and trained.parent == first

    # MLflow (HOST-181): one finished run in $MLFLOW_TRACKING_URI with the model and metrics
    client = MlflowClient(resolve_tracking_uri(store))
    (run,) = client.search_runs([client.get_experiment_by_name("ptychodus-pinn-torch")
                                 .experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 1
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {
        "model/wts.h5.zip"}

    # fine-tuning (HOST-180): the loaded model's network, lr x gamma, its file recorded
    execution.mlflow_tracking.set_value(False)
    execution.train_from_loaded_model.set_value(True)
    execution.fine_tune_epochs.set_value(2)
    execution.fine_tune_gamma.set_value(0.5)
    library.model_settings.num_filters_scale.set_value(2)  # ignored: the model's settings win
    _train(pinn, second)
    tuned = Path(pinn.last_train_result["archive"])
    manifest = peek_archive(tuned)
    assert manifest["extra"]["init_model"] == str(trained.resolve())
    assert [h["epoch"] for h in manifest["history"]] == [1, 2]
    assert manifest["history"][0]["lr"] == pytest.approx(0.5e-3)
    assert load_archive(tuned).model_config.n_filters_scale == 1
    assert len(client.search_runs([run.info.experiment_id])) == 1  # tracking was off
