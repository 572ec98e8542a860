#!/usr/bin/env bash
# HeadForge GPU check: one script for a machine with an NVIDIA GPU (meant to finish in under 8 minutes).
#
#   1. installs the Python packages it needs from wheels carried in the working tree (no internet needed),
#   2. builds gsplat's CUDA kernels (JIT, for this GPU's architecture only) and times that,
#   3. runs the CUDA-vs-CPU rasterizer test (tests/splat/test_rasterize_cuda.py; skipped counts as failed),
#   4. runs a 512 px splat fit (benchmarks/splat_fit.py on CUDA, ours vs the 3DGS baselines at equal fit time),
#   5. runs the ID-TS speed benchmark at real size with random weights (benchmarks/idts_speed.py: time per UNet
#      call, peak GPU memory, one ring with its mattes and seed fit, the 96-view estimate),
#   6. times LGM at real size with random weights (benchmarks/lgm_speed.py: the forward pass and one fine-tuning
#      step with 8 views rendered by gsplat, fp16 and bf16, peak GPU memory),
#   7. times one ID-TS training step at real size with random weights (benchmarks/train.py: stage 1, 16 frames at
#      256 px, bf16 autocast, gradient checkpointing, diffusion + LPIPS + identity + expression losses; seconds per
#      step and peak GPU memory),
# and prints every figure. Exits non-zero, saying why, when there is no NVIDIA GPU or any step fails.
#
# Two halves:
#   benchmarks/gpu_check.sh --prepare   on a development machine with PyPI access and the project's .venv (bpy):
#                                       downloads the wheels (versions from requirements.lock) into the wheel
#                                       folder and renders the 512 px views of the benchmark head into the data
#                                       folder; both folders must then travel with the working tree (git-ignore
#                                       them, e.g. in .git/info/exclude, and name them in the device's `carry`).
#   benchmarks/gpu_check.sh             on the GPU machine (python3 there must have a CUDA build of torch).
#                                       With this workplace's device tool: run `bash benchmarks/gpu_check.sh` with
#                                       carry [".whl", ".gpucheck"] and a timeout of about 540 s.
#
# Options (environment variables in brackets):
#   --wheels DIR       wheel folder [HEADFORGE_WHEELS, default <repo>/.whl]; every *.whl in it is installed
#   --data DIR         pre-rendered views [HEADFORGE_GPU_DATA, default <repo>/.gpucheck]; holds lps_512/
#   --out DIR          where logs and JSON results go [default $OUT if set, else a new temporary folder]
#   --python EXE       the Python to use [PYTHON, default python3]
#   --splat-steps N    ours' steps in the 512 px fit [default 1000]
#   --idts-rings N     ID-TS rings to run, 1..6 (fewer: the 96-view time is projected) [default 1]
#   --idts-steps N     sampler steps per ID-TS stage [default 25, the product's]
#   --prepare          the development-machine half (see above)
#   -h, --help         this text
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="${HEADFORGE_WHEELS:-$REPO/.whl}"
DATA="${HEADFORGE_GPU_DATA:-$REPO/.gpucheck}"
RESULTS="${OUT:-}"
PY="${PYTHON:-python3}"
SPLAT_STEPS=1000
IDTS_RINGS=1
IDTS_STEPS=25
PREPARE=0
DEVICE_PYTHON_VERSION="${DEVICE_PYTHON_VERSION:-3.12}"  # the GPU machine's Python (for --prepare's downloads)
WHEEL_PACKAGES=(gsplat diffusers accelerate)  # what the GPU image lacks; versions come from requirements.lock

die() { echo "gpu_check: FAILED: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) need_value "$@"; WHEELS="$2"; shift 2 ;;
    --data) need_value "$@"; DATA="$2"; shift 2 ;;
    --out) need_value "$@"; RESULTS="$2"; shift 2 ;;
    --python) need_value "$@"; PY="$2"; shift 2 ;;
    --splat-steps) need_value "$@"; SPLAT_STEPS="$2"; shift 2 ;;
    --idts-rings) need_value "$@"; IDTS_RINGS="$2"; shift 2 ;;
    --idts-steps) need_value "$@"; IDTS_STEPS="$2"; shift 2 ;;
    --prepare) PREPARE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
is_count "$SPLAT_STEPS" || die "--splat-steps must be a positive integer, not '$SPLAT_STEPS'"
is_count "$IDTS_STEPS" || die "--idts-steps must be a positive integer, not '$IDTS_STEPS'"
[[ "$IDTS_RINGS" =~ ^[1-6]$ ]] || die "--idts-rings must be 1..6, not '$IDTS_RINGS'"

locked_version() {  # the version requirements.lock pins for package $1
  local v
  v="$(grep -i -E "^$1==" "$REPO/requirements.lock" | head -n1 | cut -d= -f3)"
  [[ -n "$v" ]] || die "requirements.lock pins no version of $1"
  echo "$v"
}

# ---------------------------------------------------------------------------------------------------- prepare
if [[ "$PREPARE" == 1 ]]; then
  VPY="$REPO/.venv/bin/python"
  [[ -x "$VPY" ]] || die "--prepare needs the project's venv ($VPY; make venv)"
  mkdir -p "$WHEELS" "$DATA"
  specs=()
  for p in "${WHEEL_PACKAGES[@]}"; do specs+=("$p==$(locked_version "$p")"); done
  echo "gpu_check --prepare: downloading ${specs[*]} (Python $DEVICE_PYTHON_VERSION, x86-64) into $WHEELS"
  "$VPY" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$WHEELS" "${specs[@]}" || die "pip download failed"
  views="$DATA/lps_512"
  if [[ ! -f "$views/cameras.json" ]]; then
    asset="$REPO/../shared/data/heads/lee_perry_smith/LeePerrySmith_textured.glb"
    [[ -f "$asset" ]] || die "the benchmark head $asset is missing"
    tmp="$(mktemp -d)"
    echo "gpu_check --prepare: rendering 96 views at 512 px (Cycles on the CPU: minutes) into $views"
    BLENDER_USER_RESOURCES="$tmp/blender" "$VPY" -m headforge.backend.cli render-views "$asset" -o "$tmp/views" \
      --size 512 --samples 16 >/dev/null || die "render-views failed"
    mkdir -p "$views"
    cp "$tmp"/views/*.png "$tmp/views/cameras.json" "$views/"  # the fit reads the PNGs and cameras only
    rm -rf "$tmp"
  fi
  du -sh "$WHEELS" "$DATA"
  echo "gpu_check --prepare: done. Keep both folders out of git and carry them to the GPU machine, then run"
  echo "  bash benchmarks/gpu_check.sh --wheels $WHEELS --data $DATA"
  exit 0
fi

# ---------------------------------------------------------------------------------------------------- run
T_START=$(date +%s)
[[ -n "$RESULTS" ]] || RESULTS="$(mktemp -d /tmp/headforge-gpu-check.XXXXXX)"
mkdir -p "$RESULTS" || die "cannot create the results folder $RESULTS"
WORK="$(mktemp -d /tmp/headforge-gpu-work.XXXXXX)"
echo "gpu_check: repo $REPO, results in $RESULTS"

# 0. a GPU, or a loud failure
command -v nvidia-smi >/dev/null 2>&1 || die "no NVIDIA GPU: nvidia-smi is not installed on this machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$RESULTS/gpu.txt" 2>&1 \
  || die "no NVIDIA GPU: nvidia-smi failed: $(head -c 300 "$RESULTS/gpu.txt")"
echo "gpu_check: GPU: $(cat "$RESULTS/gpu.txt")"
command -v "$PY" >/dev/null 2>&1 || die "Python '$PY' not found (--python)"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>"$RESULTS/torch_cuda.txt" \
  || die "no CUDA device visible to $PY's torch ($("$PY" -c 'import torch; print(torch.__version__)' 2>&1 | tail -n1))"

# 1. packages: the carried wheels into a private folder, and the repository as the package `headforge`
SITE="$WORK/site"
mkdir -p "$SITE" "$WORK/pkg"
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
shopt -u nullglob
if [[ ${#wheels[@]} -gt 0 ]]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" \
    || die "installing the wheels from $WHEELS failed"
  echo "gpu_check: installed ${#wheels[@]} wheel(s) from $WHEELS"
else
  echo "gpu_check: no wheels in $WHEELS: using what $PY has"
fi
ln -s "$REPO" "$WORK/pkg/headforge"
export PYTHONPATH="$WORK/pkg:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export TORCH_EXTENSIONS_DIR="$WORK/torch_extensions"  # gsplat's JIT build, shared by every step below
export HEADFORGE_MODELS="$WORK/models" HEADFORGE_JOBS="$WORK/jobs"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
"$PY" - "$REPO/requirements.lock" <<'EOF' || die "a package the checks need does not import (see above)"
import importlib, importlib.metadata as md, re, sys
lock = dict(re.findall(r"(?im)^([A-Za-z0-9_.-]+)==([^\s;]+)", open(sys.argv[1]).read()))
lock = {k.lower().replace("_", "-"): v for k, v in lock.items()}
missing = []
for dist, module in [("torch", "torch"), ("numpy", "numpy"), ("scipy", "scipy"), ("pillow", "PIL"),
                     ("opencv-python-headless", "cv2"), ("gsplat", "gsplat"), ("diffusers", "diffusers"),
                     ("transformers", "transformers"), ("safetensors", "safetensors"), ("pytest", "pytest")]:
    try:
        importlib.import_module(module)
        have = md.version(dist)
    except Exception as e:  # noqa: BLE001
        missing.append(f"{dist} ({type(e).__name__}: {e})")
        continue
    want = lock.get(dist)
    note = "" if want is None or have.split("+")[0] == want else f"  (requirements.lock: {want})"
    print(f"gpu_check: {dist} {have}{note}")
import headforge.backend  # the repository itself
if missing:
    print("gpu_check: missing: " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
EOF
TORCH_CUDA_ARCH_LIST="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
export TORCH_CUDA_ARCH_LIST  # build gsplat's kernels for this GPU only (much faster than every architecture)

FAILED=()
declare -A SECONDS_OF
step() {  # step NAME LIMIT_S COMMAND...: run, log to $RESULTS/NAME.log, time it, remember failures
  local name="$1" limit="$2"; shift 2
  local t0=$(date +%s) rc
  echo
  echo "=== $name (limit ${limit} s)"
  timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log"
  rc=${PIPESTATUS[0]}
  SECONDS_OF[$name]=$(( $(date +%s) - t0 ))
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "gpu_check: $name ran past its ${limit} s limit" >&2
    echo "gpu_check: step $name FAILED (exit $rc)" >&2
    FAILED+=("$name")
  fi
  echo "=== $name: ${SECONDS_OF[$name]} s"
  return $rc
}

cd "$REPO"
# 2. gsplat's CUDA kernels (JIT build); nothing below can run on the GPU without them
step gsplat_build 360 "$PY" -c "
import time
t = time.perf_counter()
from headforge.backend.splat.rasterize import gsplat_cuda_available
ok = gsplat_cuda_available()
print(f'gsplat CUDA kernels: {\"built and loaded\" if ok else \"NOT AVAILABLE\"} in {time.perf_counter() - t:.1f} s '
      f'(JIT build for compute capability $TORCH_CUDA_ARCH_LIST, MAX_JOBS=$MAX_JOBS)')
raise SystemExit(0 if ok else 1)
" || die "gsplat's CUDA kernels did not build or load (log: $RESULTS/gsplat_build.log)"

# 3. CUDA rasterizer against the PyTorch path (forward and gradients); a skip is a failure here
step rasterize_cuda_test 120 "$PY" -m pytest -q -rs -p no:cacheprovider tests/splat/test_rasterize_cuda.py
if grep -qE "skipped|no tests ran" "$RESULTS/rasterize_cuda_test.log" \
   || ! grep -qE "[0-9]+ passed" "$RESULTS/rasterize_cuda_test.log"; then
  echo "gpu_check: the CUDA rasterizer test did not run and pass on the GPU" >&2
  [[ " ${FAILED[*]} " == *" rasterize_cuda_test "* ]] || FAILED+=("rasterize_cuda_test")
fi

# 4. 512 px splat fit on CUDA (views pre-rendered by --prepare: this machine needs no Blender)
if [[ -f "$DATA/lps_512/cameras.json" ]]; then
  step splat_fit_512 300 "$PY" benchmarks/splat_fit.py --size 512 --steps "$SPLAT_STEPS" --device cuda \
    --cache "$DATA" --calibrations 2 --tolerance 0.2 --json "$RESULTS/splat_fit_512.json"
else
  echo "gpu_check: no pre-rendered 512 px views in $DATA/lps_512 (run --prepare where Blender is)" >&2
  FAILED+=("splat_fit_512")
fi

# 5. ID-TS at real size, seeded random weights (speed and memory do not depend on the values)
step idts_speed_real 300 "$PY" benchmarks/idts_speed.py --size real --device cuda --steps "$IDTS_STEPS" \
  --rings "$IDTS_RINGS"

# 6. LGM ('big', 415 M parameters) forward and one fine-tuning step, random weights, fp16 and bf16
step lgm_speed_big 180 "$PY" benchmarks/lgm_speed.py --size big --device cuda --precision fp16,bf16 \
  --json "$RESULTS/lgm_speed_big.json"

# 7. ID-TS training step at real size (UNet 1.5 B trained in fp32 master weights with AdamW and EMA, frozen VAE,
#    conditioner, IR-SE-50 and LPIPS-VGG in bf16), one warm-up step then 3 timed
step train_step_real 300 "$PY" benchmarks/train.py --size real --device cuda --precision bf16 \
  --gradient-checkpointing --steps 3 --json "$RESULTS/train_step_real.json"

# summary: every figure again, in one place
echo
echo "================================ gpu_check summary ================================"
echo "GPU: $(cat "$RESULTS/gpu.txt")"
grep -h "gsplat CUDA kernels" "$RESULTS/gsplat_build.log" 2>/dev/null
tail -n 3 "$RESULTS/rasterize_cuda_test.log" 2>/dev/null | grep -E "passed|failed|skipped|error" \
  | sed 's/^/rasterizer test (CUDA vs PyTorch, forward + gradients): /'
if [[ -f "$RESULTS/splat_fit_512.log" ]]; then
  sed -n '/^splat_fit: .*fit-time budget/,$p' "$RESULTS/splat_fit_512.log"
fi
if [[ -f "$RESULTS/idts_speed_real.log" ]]; then
  sed -n '/^idts_speed:/,/model build/p' "$RESULTS/idts_speed_real.log"
fi
grep -h "^lgm_speed:" "$RESULTS/lgm_speed_big.log" 2>/dev/null
grep -h "^train_bench:" "$RESULTS/train_step_real.log" 2>/dev/null
for name in "${!SECONDS_OF[@]}"; do echo "step $name: ${SECONDS_OF[$name]} s"; done
TOTAL=$(( $(date +%s) - T_START ))
echo "total: $TOTAL s (target: under 480 s)"
rm -rf "$WORK"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "gpu_check: FAILED steps: ${FAILED[*]} (logs in $RESULTS)" >&2
  exit 1
fi
[[ $TOTAL -le 480 ]] || echo "gpu_check: WARNING: took $TOTAL s, over the 8-minute target" >&2
echo "gpu_check: all checks passed (logs in $RESULTS)"
