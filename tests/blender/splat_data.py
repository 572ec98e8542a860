"""Synthetic head-shaped Gaussian splats for the Blender tests (numpy only)."""
import numpy as np

SH_C0 = 0.28209479177387814


def _matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    xyzw = Rotation.from_matrix(R).as_quat()
    return np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1)


def head_splat(n: int = 600, seed: int = 0, sh_degree: int = 0, sh_rest_std: float = 0.15,
               dc_amplitude: float = 0.4) -> dict:
    """Gaussians lying on a head-sized ellipsoid (metres, DESIGN frame), flattened along the surface normal.

    The normal axis is put in a random slot of (scale_0..2, rot columns) so importers must sort the axes.
    Colours vary smoothly with position; opacities 0.55..0.95; optional SH bands 1..sh_degree.
    """
    rng = np.random.default_rng(seed)
    radii = np.array([0.075, 0.09, 0.11])
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    means = d * radii
    normal = means / radii**2
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    helper = np.where(np.abs(normal[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    t1 = np.cross(normal, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(normal, t1)
    sigma_t = rng.uniform(0.006, 0.011, (n, 2))
    sigma_n = sigma_t.min(1) * rng.uniform(0.1, 0.3, n)
    axes = np.stack([t1, t2, normal], 2)  # [N, 3, 3] columns
    sig = np.concatenate([sigma_t, sigma_n[:, None]], 1)
    perm = np.array([rng.permutation(3) for _ in range(n)])
    axes = np.take_along_axis(axes, perm[:, None, :], 2)
    sig = np.take_along_axis(sig, perm, 1)
    axes[:, :, 2] *= np.linalg.det(axes)[:, None]  # a proper rotation
    quats = _matrix_to_quat_wxyz(axes) * rng.uniform(0.5, 2.0, (n, 1))  # stored quaternions need not be unit
    rgb = 0.5 + dc_amplitude * np.stack([np.sin(40 * means[:, 0]), np.cos(30 * means[:, 2]),
                                np.sin(25 * (means[:, 1] + means[:, 2]))], 1)
    k = (sh_degree + 1) ** 2
    sh = np.zeros((n, k, 3))
    sh[:, 0] = (rgb - 0.5) / SH_C0
    if k > 1:
        sh[:, 1:] = rng.normal(0.0, sh_rest_std, (n, k - 1, 3))
    opacity = rng.uniform(0.55, 0.95, n)
    return {"means": means.astype(np.float32), "quats": quats.astype(np.float32),
            "log_scales": np.log(sig).astype(np.float32),
            "opacity_logits": np.log(opacity / (1 - opacity)).astype(np.float32), "sh": sh.astype(np.float32)}
