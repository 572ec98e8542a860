"""The paper's image metrics of a generated view against its ground-truth view, both (H, W, 3) float in [0, 1] over
white: PSNR (dB, peak 1; inf for identical images), SSIM (backend/metrics.ssim: Wang et al., 11×11 Gaussian),
LPIPS (VGG, backend/lgm/lpips_vgg), CSIM and DreamSim (the `dreamsim` package's ensemble).

CSIM is the paper's: the cosine of the ArcFace IR-SE-50 embeddings (backend/idts/identity.py) of the input view's and
the generated view's faces, each aligned to ArcFace's 112×112 five-point template. The face and its five keypoints
come from the face stage's detector (backend/face/detect.py: SCRFD, YuNet or MediaPipe, as `face.detector` chooses),
the largest face of the image, found as it is or, failing that, on a grey margin (SCRFD misses a face that fills the
frame, as the framed views' faces nearly do; the face stage's last resort in analysis.detect_upright). The similarity
transform onto the template is backend/face/quality.align_112 (OpenCV's estimateAffinePartial2D). A view where no
face is found (the back of the head, a profile the detector misses) has no CSIM: `pair` says why under
"csim_excluded", and the summaries count the excluded views, never dropping them silently.

The networks run in float64 on the CPU (float32 on a GPU) and every figure is rounded to `DECIMALS`, so the
numbers do not change with the thread count (float32 sums in another order differ in the 8th digit).

`Metrics` loads what is installed and lists the rest in `missing` with the reason: a metric whose weights are absent
is reported as missing, never dropped or replaced by another.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..face import detect as face_detect
from ..face.quality import align_112
from ..lgm import lpips_vgg
from ..metrics import ssim as _ssim
from ..models import store

NAMES = ("psnr", "ssim", "lpips", "csim", "dreamsim")
DECIMALS = 6
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "csim": True, "dreamsim": False}


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(img), dtype=torch.float64)


def psnr(img: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB with peak 1.0 over all pixels and channels; inf when the images are identical."""
    mse = float(np.mean((np.asarray(img, np.float64) - np.asarray(ref, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def ssim(img: np.ndarray, ref: np.ndarray) -> float:
    """Mean SSIM (float64) over the image less a 5-pixel border."""
    return float(_ssim(_t(img), _t(ref)))


def _bchw(img: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(img), dtype=torch.float32).permute(2, 0, 1)[None]


class Metrics:
    """Per-pair metrics with the networks that are installed. `model_dir`: a converted ID-TS folder
    (low_stage/, high_stage/) whose identity_encoder gives CSIM; `models_root`: where lpips/ and dreamsim/ are;
    `face_models_root`, `detector`, `pack`, `threshold`: the face detector of CSIM's alignment (the face stage's
    options of those names)."""

    def __init__(self, model_dir: Path | None = None, models_root: Path | None = None, device: str = "cpu",
                 lpips_net=None, identity_encoder=None, face_models_root: str | None = None, detector: str = "auto",
                 pack: str = "buffalo_m", threshold: float = 0.5):
        self.face_detector = dict(detector=detector, pack=pack, models_root=face_models_root or None,
                                  threshold=threshold)
        self.device = torch.device(device)
        self.dtype = torch.float64 if self.device.type == "cpu" else torch.float32
        self.missing: dict[str, str] = {}
        self.lpips_net = lpips_net if lpips_net is not None else self._load_lpips(models_root)
        self.identity = identity_encoder if identity_encoder is not None else self._load_identity(model_dir)
        for net in (self.lpips_net, self.identity):
            if net is not None and next(net.parameters()).dtype != self.dtype:
                net.to(self.device, self.dtype)
            if net is not None:
                net.to(self.device).eval()
        self.dreamsim = self._load_dreamsim(models_root)

    @property
    def available(self) -> list[str]:
        return [n for n in NAMES if n not in self.missing]

    def _load_lpips(self, root):
        net = lpips_vgg.load(root)
        if net is None:
            self.missing["lpips"] = lpips_vgg.status(root)
            return None
        return net.to(self.device).eval()

    def _load_identity(self, model_dir):
        from ..idts.identity import IdentityEncoder

        for stage in ("high_stage", "low_stage"):
            folder = Path(model_dir) / stage / "identity_encoder" if model_dir else None
            if folder is not None and (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
                return IdentityEncoder.from_pretrained(str(folder), torch_dtype=self.dtype).to(self.device).eval()
        self.missing["csim"] = ("off: no ArcFace IR-SE-50 (identity_encoder/ of a converted ID-TS stage folder) in "
                                f"{model_dir}")
        return None

    def _load_dreamsim(self, root):
        try:
            from dreamsim import dreamsim  # optional, heavy (open_clip, timm): only when installed
        except ImportError:
            self.missing["dreamsim"] = "off: the dreamsim package is not installed (pip install dreamsim)"
            return None
        cache = store.model_path("dreamsim", root=root)
        if not any(Path(cache).glob("*")):
            self.missing["dreamsim"] = f"off: DreamSim weights not installed in {cache}"
            return None
        model, preprocess = dreamsim(pretrained=True, cache_dir=str(cache), device=str(self.device))
        return model, preprocess

    @torch.no_grad()
    def embed(self, img: np.ndarray) -> torch.Tensor | None:
        """Unit ArcFace embedding (512,) of an image (H, W, 3) in [0, 1] as it is (resized to 112², not aligned),
        or None without the encoder."""
        if self.identity is None:
            return None
        return self.identity.embed(self._in(img))[0].double().cpu()

    def align_face(self, img: np.ndarray) -> np.ndarray | None:
        """The largest detected face of an image (H, W, 3) in [0, 1], warped onto ArcFace's 112² five-point template
        ((112, 112, 3) in [0, 1]), or None when the detector finds no face."""
        rgb = np.clip(np.asarray(img, np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        def find(image):
            return face_detect.detect_faces(image, **self.face_detector)

        faces = find(rgb) or face_detect.detect_on_grey_margin(rgb, find)
        if not faces:
            return None
        face = faces[face_detect.choose_face(faces, -1)]
        try:
            return align_112(rgb, face.kps5).astype(np.float64) / 255.0
        except ValueError:  # degenerate keypoints: no usable alignment
            return None

    def face_embedding(self, img: np.ndarray) -> tuple[torch.Tensor | None, str | None]:
        """(unit ArcFace embedding (512,) of the image's aligned face, None) or (None, why there is none)."""
        if self.identity is None:
            return None, "no identity encoder"
        face = self.align_face(img)
        if face is None:
            return None, "no face detected"
        return self.embed(face), None

    def _in(self, img: np.ndarray) -> torch.Tensor:
        """(H, W, 3) in [0, 1] → [1, 3, H, W] in [−1, 1] on the metric networks' device and dtype."""
        return _bchw(img).to(self.device, self.dtype) * 2 - 1

    @torch.no_grad()
    def pair(self, img: np.ndarray, ref: np.ndarray, input_embedding: torch.Tensor | None = None,
             input_excluded: str | None = None) -> dict:
        """{metric: value} of a generated view `img` against its ground truth `ref` (H, W, 3) in [0, 1]; CSIM of
        their aligned faces, `img`'s against `input_embedding` (the input's, from `face_embedding`). Without a face
        in `img` (or `input_excluded`: why the input has no embedding) the view has no "csim" but "csim_excluded":
        the reason."""
        out = {"psnr": psnr(img, ref), "ssim": ssim(img, ref)}
        if self.lpips_net is not None:
            out["lpips"] = float(self.lpips_net(self._in(img), self._in(ref))[0])
        excluded = None
        if self.identity is not None:
            if input_embedding is None:
                excluded = f"input: {input_excluded or 'no embedding'}"
            else:
                emb, excluded = self.face_embedding(img)
                if emb is not None:
                    out["csim"] = float(emb @ input_embedding)
        if self.dreamsim is not None:
            from PIL import Image

            model, preprocess = self.dreamsim
            pa = preprocess(Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))).to(self.device)
            pb = preprocess(Image.fromarray(np.clip(ref * 255 + 0.5, 0, 255).astype(np.uint8))).to(self.device)
            out["dreamsim"] = float(model(pa, pb))
        out = {k: v if not np.isfinite(v) else round(v, DECIMALS) for k, v in out.items()}
        if excluded is not None:
            out["csim_excluded"] = excluded
        return out


def summarise(values: list[float]) -> dict:
    """{"mean", "std", "n"} of finite values (inf PSNR of identical pairs is counted in "inf")."""
    v = np.asarray(values, np.float64)
    fin = v[np.isfinite(v)]
    out = {"mean": round(float(fin.mean()), DECIMALS) if len(fin) else None,
           "std": round(float(fin.std()), DECIMALS) if len(fin) else None,
           "n": int(len(fin))}
    if len(fin) < len(v):
        out["inf"] = int(len(v) - len(fin))
    return out
