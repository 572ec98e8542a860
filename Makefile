# HeadForge: `make demo` and `make test` are all a newcomer needs (both create .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE := 1

# The second venv, .venv313: Python 3.13 (the Python of Blender 5.1+) with bpy 5.3.0 and the backend's 3.13 set
# less torch and what needs it (diffusers/accelerate/gsplat: the multi-view and splat stages). PyPI's torch for
# 3.13 is the CUDA build (a 527 MB wheel plus about 3 GB of CUDA libraries; the CPU build's index is out of reach
# here), and nothing the 3.13 tests run (face stage, Blender side) imports torch. The tests find it through
# HEADFORGE_PY313 (tests/blender/pythons.py, tests/test_requirement_sets.py); without a Python 3.13 they skip,
# saying so. PYTHON313 picks the interpreter; by default the first of python3.13 on PATH and
# ~/.pyenv/versions/3.13*/bin/python that really is a 3.13.
VENV313  := .venv313
PY313    := $(VENV313)/bin/python
STAMP313 := $(VENV313)/.installed
PYTHON313 ?= $(shell for p in $$(command -v python3.13) $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python); do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
# Binary wheels only; the one source package is data (dlib's model files), nothing to compile.
BINARY := --only-binary=:all: --no-binary=face-recognition-models
PKGS313 := bpy numpy opencv-python-headless scipy scikit-image pillow dlib-bin face-recognition-models \
	insightface onnxruntime onnx flatbuffers trimesh pygltflib xatlas pymeshlab rich threadpoolctl pytest pytest-timeout

.PHONY: demo test venv venv313 blender-matrix lock lock313 clean

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

# MediaPipe's face models for 3.13 come out of the mediapipe 0.10.21 wheel (the last that carries them).
$(STAMP313): requirements-py313.lock constraints.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "make: no Python 3.13 found (python3.13, ~/.pyenv/versions/3.13*); set PYTHON313=..."; exit 1; }
	@start=$$(date +%s); set -e; \
	rm -rf $(VENV313); $(PYTHON313) -m venv $(VENV313); \
	$(PY313) -m pip install -q --upgrade "pip>=24" "setuptools>=68,<81" wheel; \
	$(PY313) -m pip install -q $(BINARY) -c constraints.txt -c requirements-py313.lock $(PKGS313); \
	$(PY313) -m pip install -q --no-deps --no-build-isolation -e .; \
	rm -rf $(VENV313)/mp-wheel; \
	$(PY313) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d $(VENV313)/mp-wheel mediapipe==0.10.21; \
	$(PY313) -c "import sys, glob, sysconfig; from headforge.backend.face.blaze import extract_models; \
		print('models in', extract_models(glob.glob(sys.argv[1])[0], sysconfig.get_paths()['purelib']))" "$(VENV313)/mp-wheel/mediapipe-*.whl"; \
	rm -rf $(VENV313)/mp-wheel; \
	touch $(STAMP313); \
	echo "$(VENV313): Python 3.13 + bpy 5.3.0 in $$(( $$(date +%s) - start )) s, $$(du -sh $(VENV313) | cut -f1)"

venv313:
	@if [ -n "$(PYTHON313)" ]; then $(MAKE) --no-print-directory $(STAMP313); \
	else echo "make: no Python 3.13 found (python3.13 on PATH, ~/.pyenv/versions/3.13*): the Python 3.13 / bpy 5.3 tests will be skipped. Set PYTHON313=/path/to/python3.13 to run them."; fi

# The Blender tests on the other Blenders of Python 3.13 (5.1, 5.2: no native Gaussian splats, so splats import as
# quads and the native-splat tests skip, saying so): one venv per bpy, the 3.13 set with that bpy, MediaPipe's
# models copied from .venv313. `make blender-matrix BPY_MATRIX="5.1.2 5.2.4"`; not part of `make test` (about 10
# minutes a Blender here). The tests' "bpy-5.3" parameter then runs that venv's bpy.
BPY_MATRIX ?= 5.1.2 5.2.4
blender-matrix: $(STAMP) $(foreach v,$(BPY_MATRIX),.venv313-bpy$(v)/.installed)
	for v in $(BPY_MATRIX); do HEADFORGE_PY313="$(CURDIR)/.venv313-bpy$$v/bin/python" \
		$(PY) -m pytest -q -rs -k 5.3 tests/blender tests/animate/test_blender_animation.py || exit 1; done

.venv313-bpy%/.installed: $(STAMP313)
	rm -rf .venv313-bpy$*; $(PYTHON313) -m venv .venv313-bpy$*
	.venv313-bpy$*/bin/python -m pip install -q --upgrade "pip>=24" "setuptools>=68,<81" wheel
	grep -v '^bpy==' requirements-py313.lock > .venv313-bpy$*/lock.txt
	.venv313-bpy$*/bin/python -m pip install -q $(BINARY) -c constraints.txt -c .venv313-bpy$*/lock.txt \
		$(subst bpy ,bpy==$* ,$(PKGS313))
	.venv313-bpy$*/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	cp -r $(VENV313)/lib/python3.13/site-packages/mediapipe_legacy_models .venv313-bpy$*/lib/python3.13/site-packages/
	touch $@

# Instant mode needs ICT-FaceKit Light (MIT): a development checkout beside ../shared uses its copy (the CLI and the
# extension never look there themselves), any other machine downloads it once into the models folder.
SHARED_ICT := $(wildcard $(CURDIR)/../shared/data/ict_facekit/ict_face_light.npz)
demo: $(STAMP)
	if [ -n "$$HEADFORGE_ICT" ]; then :; elif [ -n "$(SHARED_ICT)" ]; then export HEADFORGE_ICT="$(SHARED_ICT)"; \
	else $(PY) -m headforge.backend models download ict-facekit; fi; \
	$(PY) -m headforge.backend demo -o demo-job

test: $(STAMP) venv313
	if [ -x $(PY313) ] && [ -f $(STAMP313) ]; then export HEADFORGE_PY313="$(CURDIR)/$(PY313)"; fi; \
	$(PY) -m pytest -q -ra --durations=25

# Re-resolve the direct dependencies (requirements.in) into requirements.lock.
lock: $(STAMP) lock313
	$(PIP) install -c constraints.txt -r requirements.in
	(echo "# Exact versions of every dependency (torch is installed first by the Makefile: CPU or CUDA build). Regenerate with \`make lock\`."; \
	 $(PIP) freeze --exclude-editable | grep -v '^torch==') > requirements.lock

# The 3.13 set resolved (not installed: PyPI's 3.13 torch is the CUDA build) into requirements-py313.lock: every
# package pip would install for pyproject's dependencies + bpy 5.3.0 + pytest, less torch and its CUDA build.
lock313:
	@test -n "$(PYTHON313)" || { echo "make: no Python 3.13 found; set PYTHON313=..."; exit 1; }
	$(PYTHON313) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		print(*p['dependencies'], *p['optional-dependencies']['blender'], *p['optional-dependencies']['test'], *p['optional-dependencies']['train'], sep='\n')" \
		> /tmp/headforge-req313.txt
	$(PYTHON313) -m pip install --dry-run --ignore-installed -q $(BINARY) -c constraints.txt \
		--report /tmp/headforge-lock313.json -r /tmp/headforge-req313.txt
	$(PYTHON313) -c "import json, re; r = json.load(open('/tmp/headforge-lock313.json'))['install']; \
		skip = re.compile(r'^(torch|triton|nvidia-.*|cuda-.*)$$'); \
		pins = sorted((i['metadata']['name'], i['metadata']['version']) for i in r if not skip.match(i['metadata']['name'].lower())); \
		print('# Python 3.13 (bpy 5.3.0): every package of the backend set, resolved to binary wheels by \`make lock313\`;'); \
		print('# torch and its CUDA libraries are left out (installed per machine: CPU or CUDA build).'); \
		[print(f'{n}=={v}') for n, v in pins]" > requirements-py313.lock

clean:
	rm -rf $(VENV) $(VENV313) .venv313-bpy* demo-job test-artifacts dist *.egg-info
