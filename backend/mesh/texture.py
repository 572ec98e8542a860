"""UV unwrapping (xatlas) and texture baking from calibrated views.

Each texel's surface point is projected into every view; a view contributes where the point is visible (the
mesh's own z-buffer in that view agrees with the point's depth), inside the view's foreground, away from the
mesh's silhouette, weighted by cos(view angle)^power. Texels no view saw and the gutters between charts are
filled by pull–push (a mip pyramid of the known texels), so seams never show background.
UVs follow glTF: (0, 0) is the image's top-left corner, v grows downward.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..render.image import pull_push
from .raster import project_vertices, rasterize, render_depth


@dataclass
class ColorView:
    """A calibrated view: image (H, W, 3) float32 in [0, 1] (sRGB), alpha (H, W) or None, K (3, 3), w2c (4, 4),
    and the index of its camera in the job's cameras.json when it was loaded from one."""

    image: np.ndarray
    alpha: np.ndarray | None
    K: np.ndarray
    w2c: np.ndarray
    camera_index: int | None = None


@dataclass
class TexelSurface:
    """The surface point under each covered texel: rows/cols [M] of texels, points [M, 3], normals [M, 3]."""


    rows: np.ndarray
    cols: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    size: int
    face: np.ndarray | None = None  # [M] triangle under each texel


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int = 2048, padding: int = 4):
    """xatlas charts packed for a `texture_size` texture → (vertices [V', 3], faces [F, 3], uv [V', 2],
    vmapping [V'] index of the original vertex)."""
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, dtype=np.float32), np.ascontiguousarray(faces, dtype=np.uint32))
    chart = xatlas.ChartOptions()
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = int(padding)
    pack.bilinear = True
    pack.bruteForce = False
    atlas.generate(chart, pack)
    vmapping, indices, uvs = atlas[0]
    return (np.asarray(vertices, dtype=np.float64)[vmapping], indices.astype(np.int64), uvs.astype(np.float64),
            vmapping.astype(np.int64))


def texel_surface(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, vertex_normals: np.ndarray,
                  size: int) -> TexelSurface:
    """Rasterize the UV layout: the 3D point and interpolated normal under every covered texel centre."""
    screen = np.concatenate([uv * size - 0.5, np.ones((len(uv), 1))], 1)  # texel centres at integers
    frag = rasterize(torch.as_tensor(screen), torch.as_tensor(faces), size, size)
    rows, cols = torch.nonzero(frag.mask, as_tuple=True)
    f = frag.face[rows, cols].numpy()
    b = frag.bary[rows, cols].numpy()  # [M, 3]
    tri = faces[f]
    pts = (vertices[tri] * b[:, :, None]).sum(1)
    nrm = (vertex_normals[tri] * b[:, :, None]).sum(1)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return TexelSurface(rows.numpy(), cols.numpy(), pts, nrm, size, f)


def _bilinear(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sample image [H, W, C] at float pixel coordinates x, y [P] (pixel centres at integers)."""
    h, w = image.shape[:2]
    x = x.clamp(0, w - 1)
    y = y.clamp(0, h - 1)
    x0 = x.floor().long().clamp(max=w - 2) if w > 1 else x.floor().long()
    y0 = y.floor().long().clamp(max=h - 2) if h > 1 else y.floor().long()
    fx = (x - x0).unsqueeze(1)
    fy = (y - y0).unsqueeze(1)
    x1 = (x0 + 1).clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bot = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def bake(views: list[ColorView], vertices: np.ndarray, faces: np.ndarray, texels: TexelSurface,
         power: float = 4.0, min_cos: float = 0.1, edge_px: int = 2, check_cancel=lambda: None,
         on_progress=lambda f: None) -> tuple[np.ndarray, np.ndarray]:
    """Visibility-weighted projection of the views onto the texels → (colour [M, 3], weight [M])."""
    pts = torch.as_tensor(texels.points)
    nrm = torch.as_tensor(texels.normals)
    acc = torch.zeros((len(pts), 3), dtype=torch.float64)
    wsum = torch.zeros(len(pts), dtype=torch.float64)
    for i, view in enumerate(views):
        check_cancel()
        h, w = view.image.shape[:2]
        frag = render_depth(vertices, faces, view.K, view.w2c, h, w)
        mask = frag.mask.numpy().astype(np.uint8)
        if view.alpha is not None:
            mask &= (np.asarray(view.alpha) > 0.99).astype(np.uint8)
        if edge_px > 0:
            mask = cv2.erode(mask, np.ones((2 * edge_px + 1,) * 2, np.uint8))
        screen = project_vertices(texels.points, view.K, view.w2c)  # [M, 3]
        x, y, z = screen[:, 0], screen[:, 1], screen[:, 2]
        xi, yi = torch.round(x).long(), torch.round(y).long()
        inb = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & (z > 0)
        xi, yi = xi.clamp(0, w - 1), yi.clamp(0, h - 1)
        zbuf = frag.depth[yi, xi]
        # depth tolerance: a couple of pixel footprints at that depth, at least 1 mm
        tol = torch.clamp(2.0 * z / float(np.asarray(view.K)[0, 0]), min=1e-3)
        c2w = np.linalg.inv(np.asarray(view.w2c))
        to_cam = torch.as_tensor(c2w[:3, 3]) - pts
        cos = (to_cam * nrm).sum(1) / to_cam.norm(dim=1).clamp(min=1e-12)
        ok = inb & (z <= zbuf + tol) & (cos > min_cos) & torch.as_tensor(mask.astype(bool))[yi, xi]
        idx = torch.nonzero(ok).squeeze(1)
        if idx.numel():
            img = torch.as_tensor(np.asarray(view.image, dtype=np.float32))
            col = _bilinear(img, x[idx].float(), y[idx].float()).double()
            wt = cos[idx] ** power
            acc[idx] += col * wt[:, None]
            wsum[idx] += wt
        on_progress((i + 1) / len(views))
    colour = (acc / wsum.clamp(min=1e-12)[:, None]).numpy()
    return colour, wsum.numpy()


def texture_image(texels: TexelSurface, colour: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Texel colours → full (S, S, 3) uint8 texture with holes and gutters filled; also the fraction of
    surface texels that no view saw."""
    s = texels.size
    img = np.zeros((s, s, 3))
    known = np.zeros((s, s), bool)
    seen = weight > 0
    img[texels.rows[seen], texels.cols[seen]] = colour[seen]
    known[texels.rows[seen], texels.cols[seen]] = True
    full = pull_push(img, known)
    return np.clip(full * 255.0 + 0.5, 0, 255).astype(np.uint8), float(1.0 - seen.mean()) if len(seen) else 1.0


def render_textured(vertices, faces, uv, texture: np.ndarray, K, w2c, height: int, width: int,
                    background: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Render a textured mesh (unlit: the texture is the colour) → (image (H, W, 3) in [0, 1], mask (H, W))."""
    frag = render_depth(vertices, faces, K, w2c, height, width)
    out = np.full((height, width, 3), background, dtype=np.float64)
    m = frag.mask
    if m.any():
        f = frag.face[m]
        b = frag.bary[m]  # [P, 3]
        tuv = torch.as_tensor(np.asarray(uv))[torch.as_tensor(np.asarray(faces))[f]]  # [P, 3, 2]
        p = (tuv * b[:, :, None]).sum(1)
        th, tw = texture.shape[:2]
        tex = torch.as_tensor(np.asarray(texture, dtype=np.float32) / 255.0)
        col = _bilinear(tex, (p[:, 0] * tw - 0.5).float(), (p[:, 1] * th - 0.5).float())
        out[m.numpy()] = col.numpy()
    return out, m.numpy()
