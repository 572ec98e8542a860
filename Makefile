# HeadForge: `make demo` and `make test` are all a newcomer needs (both create .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test venv lock clean

venv: $(STAMP)

# torch first and pinned: the CUDA build from PyPI when an NVIDIA GPU is present, otherwise the CPU build
# (machines without a GPU carry a local CPU wheel through pip's find-links).
$(STAMP): requirements.lock constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24" "setuptools>=68,<81" wheel
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(PIP) install torch==2.13.0; \
	else \
		$(PIP) install torch==2.13.0; \
	fi
	$(PIP) install -c constraints.txt -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m headforge.backend demo -o demo-job

test: $(STAMP)
	$(PY) -m pytest -q -ra

# Re-resolve the direct dependencies (requirements.in) into requirements.lock.
lock: $(STAMP)
	$(PIP) install -c constraints.txt -r requirements.in
	(echo "# Exact versions of every dependency (torch is installed first by the Makefile: CPU or CUDA build). Regenerate with \`make lock\`."; \
	 $(PIP) freeze --exclude-editable | grep -v '^torch==') > requirements.lock

clean:
	rm -rf $(VENV) demo-job test-artifacts dist *.egg-info
