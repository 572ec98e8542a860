"""Decoder for glTF's EXT_meshopt_compression buffer views in ATTRIBUTES mode (vertex codec version 0) with the
NONE, OCTAHEDRAL-free QUATERNION and EXPONENTIAL filters: what gltfpack writes for animation samplers (the
facecap capture's key times and rotations). Written from the extension's specification
(KhronosGroup/glTF, extensions/2.0/Vendor/EXT_meshopt_compression/README.md)."""
from __future__ import annotations

import numpy as np


class MeshoptError(ValueError):
    pass


def _decode_group(data: memoryview, pos: int, bits: int) -> tuple[np.ndarray, int]:
    """16 byte values of one group encoded with `bits` (0, 2, 4 or 8) bits each; returns (values, new pos)."""
    if bits == 0:
        return np.zeros(16, np.uint8), pos
    if bits == 8:
        return np.frombuffer(data[pos:pos + 16], np.uint8).copy(), pos + 16
    n_bytes = 2 * bits  # 16 values × bits / 8
    packed = np.frombuffer(data[pos:pos + n_bytes], np.uint8)
    if len(packed) < n_bytes:
        raise MeshoptError("truncated group")
    per = 8 // bits
    shifts = np.arange(per - 1, -1, -1) * bits  # most significant bits first
    vals = ((packed[:, None] >> shifts[None, :]) & ((1 << bits) - 1)).reshape(-1).astype(np.uint8)
    pos += n_bytes
    sentinel = (1 << bits) - 1
    for i in np.flatnonzero(vals == sentinel):
        if pos >= len(data):
            raise MeshoptError("truncated escape byte")
        vals[i] = data[pos]
        pos += 1
    return vals, pos


def decode_vertex_buffer(src: bytes, count: int, stride: int) -> bytes:
    """count × stride bytes from an ATTRIBUTES-mode stream."""
    data = memoryview(src)
    if len(data) < 1 + max(stride, 32) or data[0] != 0xA0:
        raise MeshoptError("not a version-0 meshopt attribute stream")
    if stride % 4 or not 0 < stride <= 256:
        raise MeshoptError(f"byte stride {stride} is not a multiple of 4 up to 256")
    last = np.frombuffer(data[len(data) - stride:], np.uint8).copy()
    out = np.empty((count, stride), np.uint8)
    block = min((8192 // stride) & ~15, 256)
    pos = 1
    for b0 in range(0, count, block):
        n = min(block, count - b0)
        groups = (n + 15) // 16
        for k in range(stride):
            header = np.frombuffer(data[pos:pos + (groups + 3) // 4], np.uint8)
            pos += (groups + 3) // 4
            deltas = np.empty(groups * 16, np.uint8)
            for gi in range(groups):
                bits = (0, 2, 4, 8)[(int(header[gi // 4]) >> ((gi % 4) * 2)) & 3]
                deltas[gi * 16:gi * 16 + 16], pos = _decode_group(data, pos, bits)
            d = deltas[:n].astype(np.int32)
            d = ((d >> 1) ^ -(d & 1)) & 0xFF  # unzigzag
            out[b0:b0 + n, k] = ((int(last[k]) + np.cumsum(d)) & 0xFF).astype(np.uint8)
        last = out[b0 + n - 1].copy()
    if pos > len(data) - max(stride, 32):
        raise MeshoptError("stream overruns its tail")
    return out.tobytes()


def filter_quaternion(raw: bytes, count: int, stride: int) -> bytes:
    """QUATERNION filter: three components plus (scale | max-component index) → normalised xyzw, same width."""
    if stride == 8:
        q = np.frombuffer(raw, "<i2").reshape(count, 4).astype(np.float64)
        top = 32767.0
    elif stride == 4:
        q = np.frombuffer(raw, np.int8).reshape(count, 4).astype(np.float64)
        top = 127.0
    else:
        raise MeshoptError(f"QUATERNION filter with stride {stride}")
    w_int = q[:, 3].astype(np.int64)
    sf = (w_int | 3).astype(np.float64)
    ss = (1.0 / np.sqrt(2.0)) / sf
    xyz = q[:, :3] * ss[:, None]
    w = np.sqrt(np.maximum(1.0 - (xyz ** 2).sum(1), 0.0))
    comp = np.concatenate([xyz, w[:, None]], axis=1)
    ints = np.where(comp >= 0, np.floor(comp * top + 0.5), np.ceil(comp * top - 0.5))
    qc = (w_int & 3)
    out = np.empty_like(ints)
    rows = np.arange(count)
    out[rows, (qc + 1) & 3] = ints[:, 0]
    out[rows, (qc + 2) & 3] = ints[:, 1]
    out[rows, (qc + 3) & 3] = ints[:, 2]
    out[rows, qc & 3] = ints[:, 3]
    return out.astype("<i2" if stride == 8 else np.int8).tobytes()


def filter_exponential(raw: bytes, count: int, stride: int) -> bytes:
    """EXPONENTIAL filter: each 32-bit value is a signed 24-bit mantissa and a signed 8-bit exponent."""
    v = np.frombuffer(raw, "<i4").astype(np.int64)
    e = v >> 24
    m = ((v & 0xFFFFFF) ^ 0x800000) - 0x800000
    return np.ldexp(m.astype(np.float64), e.astype(np.int64)).astype("<f4").tobytes()


def decode_buffer_view(ext: dict, buffer: bytes) -> bytes:
    """The decoded bytes of a buffer view carrying EXT_meshopt_compression `ext` over `buffer`."""
    mode = ext.get("mode")
    if mode != "ATTRIBUTES":
        raise MeshoptError(f"mode {mode} (only ATTRIBUTES is supported for animation data)")
    off, length = ext.get("byteOffset", 0), ext["byteLength"]
    src = buffer[off:off + length]
    if len(src) < length:
        raise MeshoptError("the compressed data reaches past its buffer")
    count, stride = ext["count"], ext["byteStride"]
    raw = decode_vertex_buffer(src, count, stride)
    filt = ext.get("filter", "NONE")
    if filt == "NONE":
        return raw
    if filt == "QUATERNION":
        return filter_quaternion(raw, count, stride)
    if filt == "EXPONENTIAL":
        return filter_exponential(raw, count, stride)
    raise MeshoptError(f"filter {filt}")
