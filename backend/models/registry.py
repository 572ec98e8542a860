"""One registry of every model asset HeadForge uses: where it comes from, what it is, and on what terms.

An asset is a folder under the models root (store.py) holding one or more files. Each file comes from a
Hugging Face repository (repo + filename, fetched through huggingface_hub's endpoint) or a plain URL, or only
from the user (FLAME). `sha256` is the upstream-published hash where one is known; otherwise the first
verified download pins it (store.pins) and every later check compares against that pin.

Facts a registry entry cannot know (the exact size of a file never inspected) stay `None`, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelMissingError
from ..headmodel.ict_convert import EXPRESSION_NAMES as ICT_EXPRESSIONS
from . import store

# Commercial use, as far as the upstream licence text says.
COMMERCIAL_YES, COMMERCIAL_NO, COMMERCIAL_CONDITIONAL, COMMERCIAL_UNKNOWN = "yes", "no", "conditional", "unknown"


@dataclass(frozen=True)
class ModelFile:
    """One file of an asset. `name` is its path inside the asset folder.

    Exactly one source: `hf` = (repo_id, filename in the repo) with `revision`, or `url`, or neither (the user
    supplies it). `unpack`: the download is a zip archive; these member basenames are extracted into the asset
    folder (`member_sha256` holds the upstream hashes known for some of them) and the archive is deleted.
    """

    name: str
    hf: tuple[str, str] | None = None
    revision: str = "main"
    url: str | None = None
    sha256: str | None = None
    md5: str | None = None  # an upstream-published md5 (some projects publish only that); checked when given
    size: int | None = None  # bytes, when known exactly
    unpack: tuple[str, ...] = ()
    member_sha256: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        if self.hf:
            return f"hf://{self.hf[0]}/{self.hf[1]}@{self.revision}"
        return self.url or "user-supplied"

    @property
    def installed_names(self) -> tuple[str, ...]:
        """What the asset folder holds once this file is in place."""
        return self.unpack or (self.name,)


@dataclass(frozen=True)
class ModelAsset:
    id: str
    title: str
    purpose: str
    folder: str  # relative to the models root; the layout the stages look in
    files: tuple[ModelFile, ...]
    licence: str  # a plain-language summary of the licence text
    licence_url: str
    commercial: str  # COMMERCIAL_*
    accept_terms: bool  # the user must read and accept the terms before HeadForge fetches it
    homepage: str = ""
    user_supplied: bool = False  # never fetched: the user points at a folder that holds it
    approx_size: str = ""  # human-readable size when the exact byte count is unknown
    note: str = ""

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)

    @property
    def hash_state(self) -> str:
        """'known' when every installed file has an upstream hash; 'pinned on first download' otherwise."""
        known = all(f.sha256 or f.md5 or (f.unpack and all(m in f.member_sha256 for m in f.unpack))
                    for f in self.files)
        return "known" if known else "pin on first verified download"

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "purpose": self.purpose, "folder": self.folder,
                "files": [{"name": f.name, "source": f.source, "sha256": f.sha256, "md5": f.md5, "size": f.size,
                           "unpack": list(f.unpack)} for f in self.files],
                "size": self.size, "approx_size": self.approx_size, "licence": self.licence,
                "licence_url": self.licence_url, "commercial": self.commercial, "accept_terms": self.accept_terms,
                "user_supplied": self.user_supplied, "hash": self.hash_state, "homepage": self.homepage,
                "note": self.note}


# --- HQ-Head (Hugging Face BarryGao/HQ-Head) --------------------------------------------------------------------
# The reference code reads these from its ckpts/ folder (fixtures/idts/SPEC.md §4–5); the hub repository holds
# them under the same names. Sizes are not published, so they are left unknown; hashes come from the hub's own
# metadata at download time (the LFS sha256 in X-Linked-Etag) and are pinned then.
HQ_REPO = "BarryGao/HQ-Head"
_HQ_LICENCE = ("HQ-Head code is Apache-2.0; the diffusion weights are a fine-tune of Stable Video Diffusion XT, "
               "so Stability AI's SVD licence terms also apply (commercial use only within the Stability AI "
               "Community Licence's limits, or with an enterprise licence).")


def _hq(name: str) -> ModelFile:
    return ModelFile(name=name, hf=(HQ_REPO, name))


_INSIGHTFACE_LICENCE = ("InsightFace's pretrained models are for non-commercial research use only (the model "
                        "zoo and the python package README say so; the code alone is MIT). Commercial use needs "
                        "a separate licence from InsightFace.")
_INSIGHTFACE_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/{}.zip"
# Upstream hashes of pack members (deepinsight/insightface @ 7fadd420…, server/.../packages.py), as recorded
# in ../shared/models/README.md.
_IF_SHA = {
    "det_500m.onnx": "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
    "det_2.5g.onnx": "041f73f47371333d1d17a6fee6c8ab4e6aecabefe398ff32cca4e2d5eaee0af9",
    "det_10g.onnx": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
    "scrfd_10g_bnkps.onnx": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
    "w600k_mbf.onnx": "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
    "w600k_r50.onnx": "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
    "glintr100.onnx": "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf",
}
_IF_PACKS = {  # pack → (members, zip sha256 when published, approximate size)
    "buffalo_sc": (("det_500m.onnx", "w600k_mbf.onnx"),
                   "57d31b56b6ffa911c8a73cfc1707c73cab76efe7f13b675a05223bf42de47c72", "15 MB"),
    "buffalo_s": (("det_500m.onnx", "w600k_mbf.onnx", "1k3d68.onnx", "2d106det.onnx", "genderage.onnx"),
                  None, "120 MB"),
    "buffalo_m": (("det_2.5g.onnx", "w600k_r50.onnx", "1k3d68.onnx", "2d106det.onnx", "genderage.onnx"),
                  None, "265 MB"),
    "buffalo_l": (("det_10g.onnx", "w600k_r50.onnx", "1k3d68.onnx", "2d106det.onnx", "genderage.onnx"),
                  None, "280 MB"),
    "antelopev2": (("scrfd_10g_bnkps.onnx", "glintr100.onnx", "1k3d68.onnx", "2d106det.onnx", "genderage.onnx"),
                   None, "345 MB"),
}


def _insightface(pack: str) -> ModelAsset:
    members, zip_sha, approx = _IF_PACKS[pack]
    return ModelAsset(
        id=f"insightface-{pack}", title=f"InsightFace {pack} pack",
        purpose="SCRFD face detection and ArcFace identity embedding (face stage)",
        folder=f"insightface/models/{pack}",
        files=(ModelFile(name=f"{pack}.zip", url=_INSIGHTFACE_URL.format(pack), sha256=zip_sha, unpack=members,
                         member_sha256={m: _IF_SHA[m] for m in members if m in _IF_SHA}),),
        licence=_INSIGHTFACE_LICENCE, licence_url="https://github.com/deepinsight/insightface#license",
        commercial=COMMERCIAL_NO, accept_terms=True, homepage="https://github.com/deepinsight/insightface",
        approx_size=approx)


ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"

# In the order the add-on and `models list` offer them: the head model instant mode needs first, then the face
# detectors and mattes, then the multi-view weights full mode needs (converted by backend/idts/converter.py).
ASSETS: dict[str, ModelAsset] = {a.id: a for a in (
    ModelAsset(
        id="ict-facekit", title="ICT-FaceKit Light",
        purpose="the default head model of the rig stage: neutral, identity and ARKit-style expression shapes",
        folder="ict_facekit",
        files=(ModelFile(name=f"ICT-FaceKit-{ICT_COMMIT}.zip",
                         url=f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{ICT_COMMIT}.zip",
                         unpack=("generic_neutral_mesh.obj", "vertex_indices.json", "LICENSE",
                                 *(f"identity{i:03d}.obj" for i in range(100)),
                                 *(f"{n}.obj" for n in ICT_EXPRESSIONS))),),
        licence="MIT, Copyright (c) 2020 USC Institute for Creative Technologies; keep the notice when "
                "redistributing, and cite Li et al., CVPR 2020.",
        licence_url="https://github.com/ICT-VGL/ICT-FaceKit/blob/master/LICENSE", commercial=COMMERCIAL_YES,
        accept_terms=False, homepage="https://github.com/ICT-VGL/ICT-FaceKit", approx_size="about 260 MB archive",
        note="The rig stage converts these OBJs once into ict_facekit/ict_face_light.npz on first use "
             "(backend/headmodel/ict_convert.py)."),
    ModelAsset(
        id="birefnet-portrait", title="BiRefNet portrait matting (ONNX, rembg's export)",
        purpose="portrait matte for the face stage (face.matte)", folder="birefnet-portrait",
        files=(ModelFile(name="BiRefNet-portrait-epoch_150.onnx",
                         url="https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
                             "BiRefNet-portrait-epoch_150.onnx", md5="c3a64a6abf20250d090cd055f12a3b67"),),
        licence="BiRefNet weights: MIT (ZhengPeng7/BiRefNet); ONNX export published by rembg (MIT).",
        licence_url="https://github.com/ZhengPeng7/BiRefNet/blob/main/LICENSE", commercial=COMMERCIAL_YES,
        accept_terms=False, approx_size="about 930 MB", note="md5 as rembg publishes it; sha256 pinned on download."),
    ModelAsset(
        id="birefnet", title="BiRefNet general matting (ONNX, rembg's export)",
        purpose="general foreground matte, fallback for face.matte", folder="birefnet",
        files=(ModelFile(name="BiRefNet-general-epoch_244.onnx",
                         url="https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
                             "BiRefNet-general-epoch_244.onnx", md5="7a35a0141cbbc80de11d9c9a28f52697"),),
        licence="BiRefNet weights: MIT; ONNX export published by rembg (MIT).",
        licence_url="https://github.com/ZhengPeng7/BiRefNet/blob/main/LICENSE", commercial=COMMERCIAL_YES,
        accept_terms=False, approx_size="about 930 MB"),
    ModelAsset(
        id="yunet", title="YuNet face detector (OpenCV Zoo, 2023mar)",
        purpose="licence-clean face detection (face stage)", folder="opencv_zoo/face_detection_yunet",
        files=(ModelFile(name="face_detection_yunet_2023mar.onnx",
                         url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                             "face_detection_yunet_2023mar.onnx",
                         sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", size=232589),),
        licence="MIT (Copyright (c) 2020 Shiqi Yu).",
        licence_url="https://github.com/opencv/opencv_zoo/blob/main/models/face_detection_yunet/LICENSE",
        commercial=COMMERCIAL_YES, accept_terms=False),
    *(_insightface(p) for p in _IF_PACKS),
    ModelAsset(
        id="hqhead-stage1", title="HQ-Head stage-1 multi-view diffusion (256 px)",
        purpose="ID-TS stage 1: 16 views per ring at 256² (multiview stage)", folder="hqhead",
        files=(_hq("low_stage.pt"),), licence=_HQ_LICENCE, licence_url=f"https://huggingface.co/{HQ_REPO}",
        commercial=COMMERCIAL_CONDITIONAL, accept_terms=True, homepage="https://github.com/Biggaoga/HQ-Head-Generation",
        approx_size="about 5.6 GB in fp16 (2.82 G elements; dtype of the release not inspected)",
        note="DeepSpeed model-states file; read with torch.load(weights_only=True) and converted by idts.converter."),
    ModelAsset(
        id="hqhead-stage2", title="HQ-Head stage-2 multi-view diffusion (512 px)",
        purpose="ID-TS stage 2: 16 views per ring at 512² (multiview stage)", folder="hqhead",
        files=(_hq("high_stage.pt"),), licence=_HQ_LICENCE, licence_url=f"https://huggingface.co/{HQ_REPO}",
        commercial=COMMERCIAL_CONDITIONAL, accept_terms=True, homepage="https://github.com/Biggaoga/HQ-Head-Generation",
        approx_size="about 5.6 GB in fp16 (same layout as stage 1)"),
    ModelAsset(
        id="hqhead-lgm", title="HQ-Head LGM reconstructor",
        purpose="the splat stage's start: Gaussians from 4 generated views, fine-tuned per subject (splat.init)",
        folder="hqhead", files=(_hq("recon.safetensors"),),
        licence="LGM is MIT; HQ-Head's fine-tune is released with the Apache-2.0 code.",
        licence_url="https://github.com/3DTopia/LGM/blob/main/LICENSE", commercial=COMMERCIAL_YES,
        accept_terms=False, homepage="https://github.com/Biggaoga/HQ-Head-Generation",
        approx_size="about 1.7 GB in fp32 (415 M parameters)",
        note="Converted by `python -m headforge.backend.lgm.converter --recon recon.safetensors --out "
             "<models root>/lgm` (every one of its 376 tensors checked)."),
    ModelAsset(
        id="hqhead-arcface", title="IR-SE-50 ArcFace (HQ-Head's identity encoder)",
        purpose="identity token of the multi-view model (idts.identity)", folder="hqhead",
        files=(_hq("trained_arcface.pth"),),
        licence="Released with HQ-Head (Apache-2.0 code); IR-SE-50 face-recognition weights are usually trained "
                "on MS-Celeb-1M-derived data, which is distributed for research only. Treat as non-commercial "
                "unless the authors say otherwise.",
        licence_url=f"https://huggingface.co/{HQ_REPO}", commercial=COMMERCIAL_UNKNOWN, accept_terms=True,
        approx_size="about 175 MB (43.8 M parameters)"),
    ModelAsset(
        id="clip-vit-h14", title="OpenCLIP ViT-H-14 image encoder",
        purpose="CLIP image token of the multi-view model (idts.clip)", folder="hqhead",
        files=(_hq("open_clip_pytorch_model.bin"),),
        licence="OpenCLIP weights (LAION-2B): MIT.", licence_url="https://github.com/mlfoundations/open_clip",
        commercial=COMMERCIAL_YES, accept_terms=False, approx_size="about 3.9 GB"),
    ModelAsset(
        id="aesthetic-predictor", title="LAION aesthetic predictor (sac+logos+ava1, linear MSE)",
        purpose="aesthetic score of the conditioning vector (idts.aesthetic)", folder="hqhead",
        files=(_hq("sac+logos+ava1-l14-linearMSE.pth"),),
        licence="improved-aesthetic-predictor: Apache-2.0.",
        licence_url="https://github.com/christophschuhmann/improved-aesthetic-predictor",
        commercial=COMMERCIAL_YES, accept_terms=False, approx_size="about 4 MB"),
    ModelAsset(
        id="flame", title="FLAME 2023 head model (user-supplied)",
        purpose="optional head model of the rig stage", folder="flame",
        files=(ModelFile(name="flame2023.pkl"),),
        licence="FLAME licence (MPI-IS): non-commercial scientific research only; each user must register and "
                "accept it at flame.is.tue.mpg.de. HeadForge never downloads FLAME.",
        licence_url="https://flame.is.tue.mpg.de/modellicense.html", commercial=COMMERCIAL_NO, accept_terms=True,
        homepage="https://flame.is.tue.mpg.de", user_supplied=True,
        note="Download it yourself, then `headforge models download flame --from FOLDER`."),
)}


def get(model_id: str) -> ModelAsset:
    try:
        return ASSETS[model_id]
    except KeyError:
        raise ModelMissingError(f"No model {model_id!r} in the registry; `headforge models list` shows them.",
                                code="model.unknown") from None


def local_path(model_id: str, root: str | Path | None = None) -> Path | None:
    """The asset's folder when all its files are in place (not hashed here; `verify` does that), else None."""
    asset = get(model_id)
    folder = store.asset_dir(asset, root)
    names = [n for f in asset.files for n in f.installed_names]
    return folder if all((folder / n).is_file() for n in names) else None


path = local_path
