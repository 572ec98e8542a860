"""The colour each face of a Blender mesh shows, per material, read from its shader: for checking that colours
survive export and re-import (run inside Blender; numpy only)."""
import numpy as np


def _srgb_to_linear(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _loop_colours(me, sock, n_l):
    """(loops, 3) linear colour a material socket gives each face corner; None when not understood."""
    if not sock.links:
        v = sock.default_value
        v = [v] * 3 if isinstance(v, float) else v[:3]
        return np.tile(np.array(v, np.float64), (n_l, 1))
    link = sock.links[0]
    node = link.from_node
    if node.type == "TEX_IMAGE" and node.image is not None:
        img = node.image
        w, h = img.size
        px = np.empty(w * h * img.channels, np.float32)
        img.pixels.foreach_get(px)
        px = px.reshape(h, w, img.channels)[..., :3].astype(np.float64)
        if img.colorspace_settings.name == "sRGB" and not img.is_float:
            px = _srgb_to_linear(px)
        vec = node.inputs["Vector"].links
        uv_name = vec[0].from_node.uv_map if vec and vec[0].from_node.type == "UVMAP" else ""
        layer = me.uv_layers.get(uv_name) if uv_name else me.uv_layers.active
        if layer is None:
            return None
        uv = np.empty(n_l * 2, np.float32)
        layer.uv.foreach_get("vector", uv)
        uv = uv.reshape(-1, 2)
        x = np.clip((uv[:, 0] % 1.0) * w, 0, w - 1).astype(int)
        y = np.clip((uv[:, 1] % 1.0) * h, 0, h - 1).astype(int)
        return px[y, x]
    if node.type in ("VERTEX_COLOR", "ATTRIBUTE"):
        if node.type == "ATTRIBUTE" and (node.attribute_type != "GEOMETRY" or link.from_socket.name != "Color"):
            return None
        name = node.layer_name if node.type == "VERTEX_COLOR" else node.attribute_name
        attr = me.color_attributes.get(name) if name else me.color_attributes.active_color
        if attr is None:
            return None
        c = np.empty(len(attr.data) * 4, np.float32)
        attr.data.foreach_get("color", c)
        c = c.reshape(-1, 4)[:, :3].astype(np.float64)
        if attr.domain == "POINT":
            vi = np.empty(n_l, np.int32)
            me.loops.foreach_get("vertex_index", vi)
            c = c[vi]
        return c
    if node.type == "MIX" and node.data_type == "RGBA" and node.blend_type in ("MULTIPLY", "MIX"):
        socks = [s for s in node.inputs if s.enabled]
        fac, a, b = socks[0], socks[1], socks[2]
        if fac.links:
            return None
        ca, cb = _loop_colours(me, a, n_l), _loop_colours(me, b, n_l)
        if ca is None or cb is None:
            return None
        mixed = ca * cb if node.blend_type == "MULTIPLY" else cb
        return ca + fac.default_value * (mixed - ca)
    return None


def face_colours(ob) -> dict:
    """{material name: [mean RGB over faces, std RGB over faces, faces]}: the linear base colour each face shows,
    from what feeds the Principled BSDF's Base Color (images at the faces' UVs, colour attributes, values, their
    multiply/mix). None for a source this does not understand."""
    me = ob.data
    n_f, n_l = len(me.polygons), len(me.loops)
    mi = np.zeros(n_f, np.int32)
    me.polygons.foreach_get("material_index", mi)
    ls = np.zeros(n_f, np.int64)
    me.polygons.foreach_get("loop_start", ls)
    lt = np.zeros(n_f, np.int64)
    me.polygons.foreach_get("loop_total", lt)
    out = {}
    for i, slot in enumerate(ob.material_slots):
        mat = slot.material
        faces = np.nonzero(mi == i)[0]
        if mat is None or not len(faces) or mat.node_tree is None:
            continue
        bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
        loop_col = _loop_colours(me, bsdf.inputs["Base Color"], n_l) if bsdf is not None else None
        if loop_col is None:
            out[mat.name] = None
            continue
        fc = (np.add.reduceat(loop_col, ls) / lt[:, None])[faces]
        out[mat.name] = [fc.mean(0).round(4).tolist(), fc.std(0).round(4).tolist(), int(len(faces))]
    return out
