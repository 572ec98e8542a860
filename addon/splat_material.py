"""The splat's drawing, built in code: a Geometry Nodes modifier instancing one quad per Gaussian and a material
that shades each quad with the Gaussian's exact ray response.

Each quad is the unit square [-1, 1]² placed by the point attributes `hf_quad_rot`/`hf_quad_scale`
(`splat_import.quad_frames`), so in the instance's object space the Gaussian is isotropic with standard
deviation 1/QUAD_EXTENT. For a ray through the shading point p (object space, on the quad, z = 0) with direction
d (the view vector taken to object space), the largest Gaussian value along the ray is
exp(-½ K² (|p|² − (p·d)²/|d|²)), K = QUAD_EXTENT: the same quantity 3DGS's projected 2D Gaussian evaluates
(the 3D Gaussian's marginal along the ray), so thick Gaussians seen at an angle keep their footprint.
alpha = min(0.999, sigmoid(opacity) · that), dropped below 1/255 (gsplat's rules). Colour is
max(SH(dir) + 0.5, 0) with 3DGS's real SH basis (degree 0 by default), taken from sRGB to linear so that the
Standard view transform displays the splat's own values. Emission + Transparent mix: Cycles and EEVEE agree.
"""
from __future__ import annotations

import bpy

from .splat_import import QUAD_EXTENT

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)
GROUP_NAME = "HeadForge Splats"
MAX_PREVIEW_INPUT = "Max Preview Splats"


class _Graph:
    """Tiny helper: create and link shader nodes with scalars or sockets as inputs."""

    def __init__(self, nt):
        self.nt = nt

    def node(self, kind, **props):
        n = self.nt.nodes.new(kind)
        for k, v in props.items():
            setattr(n, k, v)
        return n

    def _feed(self, sock, v):
        if isinstance(v, bpy.types.NodeSocket):
            self.nt.links.new(v, sock)
        else:
            sock.default_value = v

    def math(self, op, a, b=0.0):
        n = self.node("ShaderNodeMath", operation=op)
        self._feed(n.inputs[0], a)
        self._feed(n.inputs[1], b)
        return n.outputs[0]

    def vmath(self, op, a, b=None, c=None, scale=None):
        n = self.node("ShaderNodeVectorMath", operation=op)
        self._feed(n.inputs[0], a)
        if b is not None:
            self._feed(n.inputs[1], b)
        if c is not None:
            self._feed(n.inputs[2], c)
        if scale is not None:
            self._feed(n.inputs["Scale"], scale)
        return n.outputs["Value"] if op in ("DOT_PRODUCT", "LENGTH", "DISTANCE") else n.outputs["Vector"]

    def attr(self, name):
        return self.node("ShaderNodeAttribute", attribute_type="INSTANCER", attribute_name=name).outputs["Factor"]

    def combine(self, x, y, z):
        n = self.node("ShaderNodeCombineXYZ")
        for i, v in enumerate((x, y, z)):
            self._feed(n.inputs[i], v)
        return n.outputs[0]

    def separate(self, v):
        n = self.node("ShaderNodeSeparateXYZ")
        self._feed(n.inputs[0], v)
        return n.outputs[0], n.outputs[1], n.outputs[2]


def _sh_basis(g: _Graph, x, y, z, degree: int) -> list:
    """Real SH basis values 1..(degree+1)²−1 (3DGS/gsplat order and signs) for a unit direction (x, y, z)."""
    m = g.math
    out = [m("MULTIPLY", y, -SH_C1), m("MULTIPLY", z, SH_C1), m("MULTIPLY", x, -SH_C1)]
    if degree < 2:
        return out
    xx, yy, zz = m("MULTIPLY", x, x), m("MULTIPLY", y, y), m("MULTIPLY", z, z)
    xy, yz, xz = m("MULTIPLY", x, y), m("MULTIPLY", y, z), m("MULTIPLY", x, z)
    xx_m_yy = m("SUBTRACT", xx, yy)
    out += [m("MULTIPLY", xy, SH_C2[0]), m("MULTIPLY", yz, SH_C2[1]),
            m("MULTIPLY", m("SUBTRACT", m("MULTIPLY", zz, 2.0), m("ADD", xx, yy)), SH_C2[2]),
            m("MULTIPLY", xz, SH_C2[3]), m("MULTIPLY", xx_m_yy, SH_C2[4])]
    if degree < 3:
        return out
    four_zz_m = m("SUBTRACT", m("MULTIPLY", zz, 4.0), m("ADD", xx, yy))
    out += [m("MULTIPLY", m("MULTIPLY", y, m("SUBTRACT", m("MULTIPLY", xx, 3.0), yy)), SH_C3[0]),
            m("MULTIPLY", m("MULTIPLY", xy, z), SH_C3[1]),
            m("MULTIPLY", m("MULTIPLY", y, four_zz_m), SH_C3[2]),
            m("MULTIPLY", m("MULTIPLY", z, m("SUBTRACT", m("MULTIPLY", zz, 2.0),
                                              m("MULTIPLY", m("ADD", xx, yy), 3.0))), SH_C3[3]),
            m("MULTIPLY", m("MULTIPLY", x, four_zz_m), SH_C3[4]),
            m("MULTIPLY", m("MULTIPLY", z, xx_m_yy), SH_C3[5]),
            m("MULTIPLY", m("MULTIPLY", x, m("SUBTRACT", xx, m("MULTIPLY", yy, 3.0))), SH_C3[6])]
    return out


def _srgb_to_linear(g: _Graph, c):
    m = g.math
    lo = m("DIVIDE", c, 12.92)
    hi = m("POWER", m("DIVIDE", m("ADD", c, 0.055), 1.055), 2.4)
    return m("ADD", hi, m("MULTIPLY", m("LESS_THAN", c, 0.04045), m("SUBTRACT", lo, hi)))


def splat_material(sh_degree: int = 0, render_method: str = "DITHERED",
                   rest_per_channel: int | None = None) -> bpy.types.Material:
    """A new splat material reading the instancer's (per-Gaussian) attributes; SH up to `sh_degree` (0..3).

    `rest_per_channel`: the file's f_rest count per channel ((file degree + 1)² − 1), default that of sh_degree."""
    rest_per_channel = (sh_degree + 1) ** 2 - 1 if rest_per_channel is None else rest_per_channel
    mat = bpy.data.materials.new(f"HeadForge Splat SH{sh_degree}")
    mat.surface_render_method = render_method
    mat.use_backface_culling = False
    if hasattr(mat, "use_transparency_overlap"):
        mat.use_transparency_overlap = True
    mat["headforge_sh_degree"] = sh_degree
    nt = mat.node_tree
    nt.nodes.clear()
    g = _Graph(nt)
    m = g.math

    # Gaussian falloff along the view ray, in the quad's object space.
    obj = g.node("ShaderNodeTexCoord").outputs["Object"]
    ox, oy, _ = g.separate(obj)
    p = g.combine(ox, oy, 0.0)
    incoming = g.node("ShaderNodeNewGeometry").outputs["Incoming"]
    xf = g.node("ShaderNodeVectorTransform", vector_type="VECTOR", convert_from="WORLD", convert_to="OBJECT")
    nt.links.new(incoming, xf.inputs[0])
    d = xf.outputs[0]
    pd, dd, pp = g.vmath("DOT_PRODUCT", p, d), g.vmath("DOT_PRODUCT", d, d), g.vmath("DOT_PRODUCT", p, p)
    dist2 = m("SUBTRACT", pp, m("DIVIDE", m("MULTIPLY", pd, pd), m("MAXIMUM", dd, 1e-30)))
    falloff = m("EXPONENT", m("MULTIPLY", m("MAXIMUM", dist2, 0.0), -0.5 * QUAD_EXTENT ** 2))
    opacity = m("DIVIDE", 1.0, m("ADD", 1.0, m("EXPONENT", m("MULTIPLY", g.attr("opacity"), -1.0))))
    alpha = m("MINIMUM", m("MULTIPLY", opacity, falloff), 0.999)
    alpha = m("MULTIPLY", alpha, m("GREATER_THAN", alpha, 1.0 / 255.0 - 1e-7))

    # Colour: SH_C0·f_dc + 0.5 (+ higher bands along the camera→Gaussian direction), clamped at 0.
    rgb = g.vmath("MULTIPLY_ADD", g.combine(*(g.attr(f"f_dc_{c}") for c in range(3))), (SH_C0,) * 3)
    rgb.node.inputs[2].default_value = (0.5, 0.5, 0.5)
    if sh_degree > 0:
        view = g.vmath("NORMALIZE", g.vmath("SCALE", incoming, scale=-1.0))
        x, y, z = g.separate(view)
        for k, basis in enumerate(_sh_basis(g, x, y, z, sh_degree)):
            # f_rest is channel-major in the file: f_rest_{c·(K−1)+k}, with K−1 = the file's count per channel.
            coef = g.combine(*(g.attr(f"f_rest_{c * rest_per_channel + k}") for c in range(3)))
            rgb = g.vmath("MULTIPLY_ADD", coef, g.combine(basis, basis, basis), rgb)
    rgb = g.vmath("MAXIMUM", rgb, (0.0, 0.0, 0.0))
    r, gg, b = g.separate(rgb)
    lin = g.node("ShaderNodeCombineColor")
    for i, c in enumerate((r, gg, b)):
        nt.links.new(_srgb_to_linear(g, c), lin.inputs[i])

    emit = g.node("ShaderNodeEmission")
    nt.links.new(lin.outputs[0], emit.inputs["Color"])
    emit.inputs["Strength"].default_value = 1.0
    mix = g.node("ShaderNodeMixShader")
    nt.links.new(alpha, mix.inputs["Fac"])
    nt.links.new(g.node("ShaderNodeBsdfTransparent").outputs[0], mix.inputs[1])
    nt.links.new(emit.outputs[0], mix.inputs[2])
    out = g.node("ShaderNodeOutputMaterial")
    nt.links.new(mix.outputs[0], out.inputs["Surface"])
    return mat


def splat_node_group(material: bpy.types.Material, keep_sh: bool) -> bpy.types.NodeTree:
    """Points → one quad instance per Gaussian (rotation/scale from hf_quad_*), subsampled in the viewport.

    In the viewport each point is kept with probability min(1, Max Preview Splats / count) (a fixed random
    subset); renders always draw every splat."""
    ng = bpy.data.node_groups.new(GROUP_NAME, "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    cap = ng.interface.new_socket(MAX_PREVIEW_INPUT, in_out="INPUT", socket_type="NodeSocketInt")
    cap.default_value, cap.min_value = 200_000, 0
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, link = ng.nodes, ng.links.new
    gin, gout = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")

    # Attributes the drawing does not read are dropped before instancing (they stay on the mesh).
    geo = gin.outputs[0]
    for pattern in ("scale_*", "rot_*", "nx", "ny", "nz") + (() if keep_sh else ("f_rest_*",)):
        rm = nodes.new("GeometryNodeRemoveAttribute")
        rm.inputs["Pattern Mode"].default_value = "Wildcard"
        rm.inputs["Name"].default_value = pattern
        link(geo, rm.inputs["Geometry"])
        geo = rm.outputs[0]

    count = nodes.new("GeometryNodeAttributeDomainSize")
    count.component = "MESH"
    link(gin.outputs[0], count.inputs[0])
    ratio = nodes.new("ShaderNodeMath")
    ratio.operation = "DIVIDE"
    link(gin.outputs[1], ratio.inputs[0])
    link(count.outputs["Point Count"], ratio.inputs[1])
    rnd = nodes.new("FunctionNodeRandomValue")
    rnd.data_type = "BOOLEAN"
    link(ratio.outputs[0], rnd.inputs["Probability"])
    rnd.inputs["Seed"].default_value = 7
    viewport = nodes.new("GeometryNodeIsViewport")
    not_vp = nodes.new("FunctionNodeBooleanMath")
    not_vp.operation = "NOT"
    link(viewport.outputs[0], not_vp.inputs[0])
    keep = nodes.new("FunctionNodeBooleanMath")
    keep.operation = "OR"
    link(not_vp.outputs[0], keep.inputs[0])
    link([s for s in rnd.outputs if s.type == "BOOLEAN"][0], keep.inputs[1])

    quad = nodes.new("GeometryNodeMeshGrid")
    quad.inputs["Size X"].default_value = quad.inputs["Size Y"].default_value = 2.0
    quad.inputs["Vertices X"].default_value = quad.inputs["Vertices Y"].default_value = 2
    setmat = nodes.new("GeometryNodeSetMaterial")
    setmat.inputs["Material"].default_value = material
    link(quad.outputs["Mesh"], setmat.inputs["Geometry"])
    rot = nodes.new("GeometryNodeInputNamedAttribute")
    rot.data_type = "QUATERNION"
    rot.inputs["Name"].default_value = "hf_quad_rot"
    scale = nodes.new("GeometryNodeInputNamedAttribute")
    scale.data_type = "FLOAT_VECTOR"
    scale.inputs["Name"].default_value = "hf_quad_scale"

    inst = nodes.new("GeometryNodeInstanceOnPoints")
    link(geo, inst.inputs["Points"])
    link(keep.outputs[0], inst.inputs["Selection"])
    link(setmat.outputs[0], inst.inputs["Instance"])
    link(rot.outputs["Attribute"], inst.inputs["Rotation"])
    link(scale.outputs["Attribute"], inst.inputs["Scale"])
    link(inst.outputs[0], gout.inputs[0])
    return ng


def add_splat_modifier(ob, material, max_preview: int = 200_000) -> bpy.types.Modifier:
    """Give `ob` (a splat point mesh) its quad-drawing Geometry Nodes modifier."""
    keep_sh = int(material.get("headforge_sh_degree", 0)) > 0
    mod = ob.modifiers.new("HeadForge Splats", "NODES")
    mod.node_group = splat_node_group(material, keep_sh)
    set_max_preview(ob, max_preview)
    return mod


def set_max_preview(ob, max_preview: int) -> None:
    mod = ob.modifiers.get("HeadForge Splats")
    key = next(i.identifier for i in mod.node_group.interface.items_tree
               if getattr(i, "in_out", "") == "INPUT" and i.name == MAX_PREVIEW_INPUT)
    props = getattr(mod, "properties", None)  # Blender ≥ 5.3: inputs are RNA properties, not ID properties
    if props is not None and hasattr(props, "inputs"):
        getattr(props.inputs, key).value = int(max_preview)
    else:
        mod[key] = int(max_preview)
    ob.update_tag()
