"""Whether full mode can run on this machine (a CUDA GPU and the converted ID-TS weights of both stages), decided
without importing torch where the answer is already no: the one decision behind `--mode auto`, `headforge demo`,
`headforge doctor` and the Blender panel's Auto mode."""
from __future__ import annotations

import sys
from pathlib import Path

from ..models import registry, store
from .stage_folder import missing_files


def weights_dir(models_dir: str = "") -> Path:
    """The converted ID-TS folders (low_stage/, high_stage/): `multiview.models_dir`, else <models root>/idts
    (the model store's root: the add-on's models folder, else $HEADFORGE_MODELS, else the default)."""
    if models_dir:
        return Path(models_dir).expanduser()
    return store.model_path("idts")


def nvidia_driver_present() -> bool:
    """False where no NVIDIA driver is loaded (Linux: no /proc/driver/nvidia), so CUDA cannot be there; True
    elsewhere, where torch has the last word."""
    return not sys.platform.startswith("linux") or Path("/proc/driver/nvidia").exists()


def full_mode_readiness(models_dir: str = "", device: str = "auto") -> tuple[bool, str]:
    """Whether the full pipeline can run here, and why (not): it needs a CUDA GPU (torch) and the converted
    ID-TS weights of both stages. `device` is the user's choice (auto | cuda | cuda:N | cpu). The reason reads
    "<what is missing>; <the one step that fixes it>". The one decision used by `headforge demo`, the CLI's
    `--mode auto`, `headforge doctor` and the Blender panel's Auto mode."""
    if device == "cpu":
        return False, "the device is set to CPU; choose Automatic or CUDA as the device"
    if not nvidia_driver_present():
        return False, "no CUDA GPU here; full mode needs a machine with an NVIDIA GPU"
    folder = weights_dir(models_dir)
    missing = [m for s in ("low", "high") for m in missing_files(folder / f"{s}_stage")]
    if missing:
        low, high = (store.asset_dir(registry.get(i)) / f"{s}_stage.pt" for i, s in
                     (("hqhead-stage1", "low"), ("hqhead-stage2", "high")))
        return False, (f"the ID-TS multi-view weights are not in {folder} ({len(missing)} file(s) missing, e.g. "
                       f"{missing[0]}); `headforge models download hqhead-stage1 hqhead-stage2 --accept-terms`, "
                       f"then `python -m headforge.backend.idts.converter --low {low} --high {high} --out {folder}`")
    try:
        import torch  # only now: importing it costs seconds, and most machines stop at the checks above
    except ImportError:
        return False, "torch is not installed; install the backend (torch with CUDA)"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU here; full mode needs a machine with an NVIDIA GPU"
    return True, f"CUDA GPU and the ID-TS weights in {folder}"
