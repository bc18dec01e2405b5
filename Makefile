# Two commands matter (see README):  `make demo`  and  `make test`.
# Both set everything up first. Setup installs the CPU torch wheel pinned below *before* the
# package, so pip never fetches a multi-GB CUDA build on a CPU machine. GPU users: create
# .venv, install their own torch build into it, then run `make setup TORCH_SPEC=`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo_out
export OMP_NUM_THREADS ?= 2

.PHONY: setup system-packages install demo test lint fixtures bench clean

setup: $(VENV)/.deps-installed install

# Debian packages for the GUI test under a real X server (best effort; needs root).
system-packages:
	@if ! command -v Xvfb >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb \
	    libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxkbcommon-x11-0 libxcb-image0 \
	    libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 >/dev/null) \
	  || echo "setup: could not install xvfb; GUI tests fall back to the offscreen platform"; \
	fi

$(VENV)/.deps-installed: pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "setup: installing $(TORCH_SPEC)"; $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q ".[gui,test,sim]"
	touch $@

# (Re)install this checkout as a normal (non-editable) package: that is what users get, and it
# places the ptychodus autoload module that editable installs cannot.
install: $(VENV)/.deps-installed
	$(BIN)/python -m pip install -q --no-deps --force-reinstall .

# The main job on the shipped example data: train briefly, reconstruct, write pictures.
DEMO_EPOCHS ?= 10
demo: setup
	$(BIN)/pinn-torch train --train fixtures/train.npz --test fixtures/test.npz \
	  --out $(DEMO_DIR) --epochs $(DEMO_EPOCHS) --seed 0
	$(BIN)/pinn-torch reconstruct --model $(DEMO_DIR)/wts.h5.zip --data fixtures/test.npz \
	  --out $(DEMO_DIR)/reconstruction.npz --png $(DEMO_DIR)/reconstruction.png --refine-epochs 10
	@echo "demo: pictures in $(DEMO_DIR)/loss.png, $(DEMO_DIR)/reconstruction_network.png (network), $(DEMO_DIR)/reconstruction.png (network + physics refinement) and $(DEMO_DIR)/reconstruction_vs_truth.png (truth, network, refined; SSIM in the titles)"

test: setup
	$(BIN)/ruff check ptychodus_pinn_torch tests bench examples
	$(BIN)/pytest -q -p no:cacheprovider tests
	$(BIN)/pinn-torch conformance

lint:
	$(BIN)/ruff check ptychodus_pinn_torch tests bench examples

fixtures: setup
	$(BIN)/python -m ptychodus_pinn_torch.data.fixtures --out fixtures

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build dist *.egg-info $(DEMO_DIR)
