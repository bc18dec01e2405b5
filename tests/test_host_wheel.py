"""A non-editable install from a freshly built wheel makes the stock ptychodus list our
reconstructors with no other step (the autoload module in ``ptychodus/plugins``).

A truly fresh virtual environment would cost ~75 s of pip and a network download of ptychodus
per run. Instead the throwaway venv gets: a ``.pth`` pointing at this environment's
site-packages (for numpy, torch, ... and ptychodus' metadata), its *own copy* of the ptychodus
package (so that ``ptychodus/plugins`` is the throwaway venv's folder, untouched by any earlier
install), and our wheel installed with ``pip install --no-deps``: pip itself must put the autoload
module into that ptychodus copy. The check then runs ``python -m ptychodus`` (what the
``ptychodus`` console script runs) from ``/`` with no PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_autoloads_into_stock_ptychodus(tmp_path: Path) -> None:
    import ptychodus

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    # build from a copy: an in-tree build would write build/ and *.egg-info into the checkout
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "demo_out",
        "test-artifacts", ".pytest_cache", ".ruff_cache"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("ptychodus_pinn_torch-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "ptychodus/plugins/ptychodus_pinn_torch_autoload.py" in names
    assert "ptychodus_pinn_torch/host/plugin.py" in names
    assert "[ptychodus_pinn_torch.plugins]" in entry_points
    assert "ptychodus-pinn-torch = ptychodus_pinn_torch.host.plugin" in entry_points
    assert "ptychodus-pinn-torch = ptychodus_pinn_torch.host.launcher:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    autoload = "ptychodus_pinn_torch_autoload.py"
    shutil.copytree(Path(ptychodus.__file__).parent, site / "ptychodus",
                    ignore=shutil.ignore_patterns("__pycache__", autoload))
    assert not (site / "ptychodus" / "plugins" / autoload).exists()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--ignore-installed", "-q", str(wheel)],  # never touch the parent env
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    assert (site / "ptychodus" / "plugins" / autoload).is_file()

    probe = ("import ptychodus, ptychodus_pinn_torch; "
             "from ptychodus.model.core import ModelCore; "
             "print(ptychodus.__file__); print(ptychodus_pinn_torch.__file__); "
             "print(list(ModelCore().processing_core.processing_api.available_reconstructors()))")
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         timeout=180, env=env, cwd="/")
    assert out.returncode == 0, out.stderr[-3000:]
    ptychodus_file, package_file, listed = out.stdout.strip().splitlines()[-3:]
    assert ptychodus_file.startswith(str(site)), ptychodus_file
    assert package_file.startswith(str(site)), package_file  # the wheel, not the checkout
    assert "'ptychopinn-pytorch_pinn'" in listed and "'ptychopinn-pytorch_supervised'" in listed

    # the stock command itself (its console script runs ptychodus.__main__:main)
    (tmp_path / "empty").mkdir()
    usage = subprocess.run([str(python), "-m", "ptychodus", "-b", "train", "-i",
                            str(tmp_path / "empty"), "-o", str(tmp_path / "o")],
                           capture_output=True, text=True, timeout=180, env=env, cwd="/")
    assert usage.returncode == 2, usage.stderr[-2000:]  # USAGE: no diffraction.h5 in there
    assert "plugin 'ptychodus-pinn-torch' added PtychoPINN-PyTorch / PINN, PtychoPINN-PyTorch "\
           "/ Supervised" in usage.stdout + usage.stderr
