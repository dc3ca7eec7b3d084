# `make demo` and `make test` set everything up on a fresh machine (a .venv with the CPU build of
# torch, leanvla and its extras), then run. Override TORCH_SPEC to choose another torch build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The versions the results were measured with (see the file); `make install CONSTRAINTS=` lifts them.
CONSTRAINTS ?= constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.leanvla-installed
# LeRobot's own dataset reader, apart from leanvla's venv (it pins other versions of what they share).
LEROBOT_VENV ?= .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.lerobot-installed
export MUJOCO_GL ?= egl

.PHONY: install lerobot demo demo-quick test floors mutants refusals lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first (when the venv has none): anything that pulls torch in later must not replace it
# with a multi-GB CUDA build.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[sim,dev]"
	touch $(STAMP)

install: $(STAMP)

# torch first here too; then the pinned list, each package without its dependencies (the list is
# whole, and LeRobot's own would pull a CUDA torch): tools/lerobot_requirements.txt says why.
$(LEROBOT_STAMP): tools/lerobot_requirements.txt
	$(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/pip install --quiet --upgrade pip
	$(LEROBOT_VENV)/bin/python -c "import torch" 2>/dev/null || $(LEROBOT_VENV)/bin/pip install --quiet $(TORCH_SPEC)
	$(LEROBOT_VENV)/bin/pip install --quiet --no-deps -r tools/lerobot_requirements.txt
	touch $(LEROBOT_STAMP)

# For tests/data/test_lerobot_interop.py: LeRobot and leanvla read each other's datasets alike.
lerobot: $(LEROBOT_STAMP)

demo: install
	$(BIN)/leanvla demo

demo-quick: install
	$(BIN)/leanvla demo --quick

# pytest exits 5 when it collects no tests; make treats that as a failure, as it should.
test: install lerobot
	$(BIN)/python -m pytest

# The whole suite at the oldest releases pyproject.toml allows (floors.txt), in a venv of its own
# (about 3 minutes to set up, then the suite).
floors: lerobot
	$(MAKE) test VENV=.venv-floors CONSTRAINTS=floors.txt

# Each seeded fault in tools/mutants.py must make its tests fail (exit 1 names any that survive;
# about 65 minutes, so not part of `make test`).
mutants: install
	$(BIN)/python tools/mutants.py

# Every bad-input refusal in src/leanvla must fire in some test (exit 1 lists those that never do;
# the whole suite runs under it, about 7 minutes).
refusals: install
	$(BIN)/python tools/refusals.py

lint: install
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

clean:
	rm -rf $(VENV) .venv-floors $(LEROBOT_VENV) outputs .pytest_cache
