"""Write a Rig as a binary glTF 2.0 (.glb) with pygltflib: one skinned mesh (a primitive per material) with
52 morph targets named in `mesh.extras.targetNames`, an armature of joint nodes, and the skin texture.

World (metres, +Z up, face −Y) is converted to glTF axes (+Y up, face +Z). Morph targets that touch few
vertices are stored as sparse accessors.
"""
from __future__ import annotations

import io

import numpy as np

from ..fileio import write_bytes
from ..headmodel.frames import world_to_gltf
from ..render.raster import vertex_normals
from .build import BONE_PARENTS, BONES, Rig

FLOAT, UINT, USHORT, UBYTE = 5126, 5125, 5123, 5121
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class _Bin:
    """Accumulates the binary chunk and its bufferViews/accessors."""

    def __init__(self, gl):
        self.gl = gl
        self.data = bytearray()

    def view(self, arr: np.ndarray, target: int | None = None) -> int:
        import pygltflib as g

        while len(self.data) % 4:
            self.data.append(0)
        b = np.ascontiguousarray(arr).tobytes()
        self.gl.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(b), target=target))
        self.data.extend(b)
        return len(self.gl.bufferViews) - 1

    def accessor(self, arr: np.ndarray, type_: str, ctype: int, target: int | None = None, minmax: bool = False,
                 normalized: bool = False) -> int:
        import pygltflib as g

        acc = g.Accessor(bufferView=self.view(arr, target), componentType=ctype, count=len(arr), type=type_,
                         normalized=normalized or None)
        if minmax:
            acc.min = np.asarray(arr).reshape(len(arr), -1).min(axis=0).astype(float).tolist()
            acc.max = np.asarray(arr).reshape(len(arr), -1).max(axis=0).astype(float).tolist()
        self.gl.accessors.append(acc)
        return len(self.gl.accessors) - 1

    def morph(self, delta: np.ndarray) -> int:
        """A VEC3 float accessor for a morph target's POSITION offsets (n, 3), sparse when that is smaller."""
        import pygltflib as g

        nz = np.nonzero(np.abs(delta).max(axis=1) > 1e-7)[0].astype(np.uint32)
        n = len(delta)
        if len(nz) == 0:
            nz = np.array([0], np.uint32)
        if len(nz) * 16 < n * 12:
            vals = delta[nz].astype(np.float32)
            acc = g.Accessor(componentType=FLOAT, count=n, type="VEC3", byteOffset=None,
                             sparse=g.Sparse(count=len(nz),
                                             indices=g.AccessorSparseIndices(bufferView=self.view(nz),
                                                                             componentType=UINT),
                                             values=g.AccessorSparseValues(bufferView=self.view(vals))))
            full = np.zeros((n, 3), np.float32)
            full[nz] = vals
        else:
            full = delta.astype(np.float32)
            acc = g.Accessor(bufferView=self.view(full, ARRAY_BUFFER), componentType=FLOAT, count=n, type="VEC3")
        acc.min = full.min(axis=0).astype(float).tolist()
        acc.max = full.max(axis=0).astype(float).tolist()
        self.gl.accessors.append(acc)
        return len(self.gl.accessors) - 1


def rig_to_gltf(rig: Rig, texture_png: bytes | None, extras: dict | None = None,
                attachments: list[dict] | None = None):
    """→ pygltflib.GLTF2 with the binary blob set.

    `attachments`: extra rigid meshes (hair, accessories), each {name, verts (n, 3) world, faces (f, 3),
    uv (n, 2) glTF, texture (h, w, 3) uint8, bone, double_sided (optional: a sheet seen from both sides), extensions
    (optional: its material's glTF extensions, e.g. the hair's KHR_materials_specular)}, skinned wholly to that
    bone, without shape keys."""
    import pygltflib as g


    gl = g.GLTF2(asset=g.Asset(version="2.0", generator="HeadForge rig"))
    gl.scenes = [g.Scene(name="HeadForge", nodes=[])]
    gl.scene = 0
    binbuf = _Bin(gl)

    # materials
    mats = {}

    def material(name, **kw):
        mats[name] = len(gl.materials)
        gl.materials.append(g.Material(name=name, **kw))

    used = {p.material for p in rig.primitives}
    if "skin" in used and texture_png is not None:
        gl.images.append(g.Image(bufferView=binbuf.view(np.frombuffer(texture_png, np.uint8)), mimeType="image/png",
                                 name="skin"))
        gl.samplers.append(g.Sampler(magFilter=9729, minFilter=9987, wrapS=33071, wrapT=33071))
        gl.textures.append(g.Texture(sampler=0, source=0))
        material("skin", pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorTexture=g.TextureInfo(index=0), metallicFactor=0.0, roughnessFactor=0.7))
    elif "skin" in used:
        material("skin", pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=[0.8, 0.62, 0.52, 1.0], metallicFactor=0.0, roughnessFactor=0.7))
    for name, rough in (("skin_flat", 0.7), ("eye", 0.15), ("mouth", 0.6), ("gums", 0.4), ("teeth", 0.3),
                        ("lashes", 0.8)):
        if name in used:
            material(name, pbrMetallicRoughness=g.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=rough))

    # joints: nodes 0..5, translations relative to the parent
    J = world_to_gltf(rig.joints)
    for j, name in enumerate(BONES):
        p = BONE_PARENTS[j]
        t = J[j] - (J[p] if p >= 0 else 0.0)
        gl.nodes.append(g.Node(name=name, translation=[float(x) for x in t],
                               children=[k for k, q in enumerate(BONE_PARENTS) if q == j]))
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(BONES), 1, 1))
    ibm[:, :3, 3] = -J
    ibm_acc = binbuf.accessor(ibm.transpose(0, 2, 1).reshape(-1, 16), "MAT4", FLOAT)  # column-major
    gl.skins.append(g.Skin(name="Armature", inverseBindMatrices=ibm_acc, joints=list(range(len(BONES))),
                           skeleton=0))

    basis = world_to_gltf(rig.basis)
    deltas = world_to_gltf(rig.deltas)  # (52, V, 3)
    prims = []
    for p in rig.primitives:
        vid = p.vertex_ids
        pos = basis[vid]
        nrm = vertex_normals(pos.astype(np.float64), p.faces).astype(np.float32)
        w = rig.weights[vid]
        order = np.argsort(-w, axis=1)[:, :4]  # (n, 4) strongest 4 joints
        wj = np.take_along_axis(w, order, axis=1)
        wj = (wj / wj.sum(axis=1, keepdims=True)).astype(np.float32)
        joints = np.where(wj > 0, order, 0).astype(np.uint16)
        attrs = g.Attributes(POSITION=binbuf.accessor(pos, "VEC3", FLOAT, ARRAY_BUFFER, minmax=True),
                             NORMAL=binbuf.accessor(nrm, "VEC3", FLOAT, ARRAY_BUFFER),
                             JOINTS_0=binbuf.accessor(joints, "VEC4", USHORT, ARRAY_BUFFER),
                             WEIGHTS_0=binbuf.accessor(wj, "VEC4", FLOAT, ARRAY_BUFFER))
        if p.uv is not None:
            attrs.TEXCOORD_0 = binbuf.accessor(p.uv.astype(np.float32), "VEC2", FLOAT, ARRAY_BUFFER)
        if p.colour is not None:
            attrs.COLOR_0 = binbuf.accessor(np.clip(p.colour, 0, 1).astype(np.float32), "VEC3", FLOAT, ARRAY_BUFFER)
        targets = [g.Attributes(POSITION=binbuf.morph(deltas[k][vid])) for k in range(len(rig.key_names))]
        idx = binbuf.accessor(p.faces.astype(np.uint32).reshape(-1), "SCALAR", UINT, ELEMENT_ARRAY_BUFFER)
        prims.append(g.Primitive(attributes=attrs, indices=idx, material=mats[p.material], targets=targets,
                                 mode=4, extras={"name": p.name}))
    gl.meshes.append(g.Mesh(name="head", primitives=prims, weights=[0.0] * len(rig.key_names),
                            extras={"targetNames": list(rig.key_names)}))
    gl.nodes.append(g.Node(name="head", mesh=0, skin=0))
    scene_nodes = [0, len(gl.nodes) - 1]
    for att in attachments or []:
        pos = world_to_gltf(att["verts"])
        faces = np.asarray(att["faces"], np.int64)
        nrm = vertex_normals(pos.astype(np.float64), faces).astype(np.float32)
        n = len(pos)
        joints = np.zeros((n, 4), np.uint16)
        joints[:, 0] = BONES.index(att.get("bone", "head"))
        wts = np.zeros((n, 4), np.float32)
        wts[:, 0] = 1.0
        gl.images.append(g.Image(bufferView=binbuf.view(np.frombuffer(png_bytes(att["texture"]), np.uint8)),
                                 mimeType="image/png", name=att["name"]))
        if not gl.samplers:
            gl.samplers.append(g.Sampler(magFilter=9729, minFilter=9987, wrapS=33071, wrapT=33071))
        gl.textures.append(g.Texture(sampler=0, source=len(gl.images) - 1))
        material(att["name"], pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorTexture=g.TextureInfo(index=len(gl.textures) - 1), metallicFactor=0.0, roughnessFactor=0.8),
            doubleSided=bool(att.get("double_sided", False)))
        attrs = g.Attributes(POSITION=binbuf.accessor(pos, "VEC3", FLOAT, ARRAY_BUFFER, minmax=True),
                             NORMAL=binbuf.accessor(nrm, "VEC3", FLOAT, ARRAY_BUFFER),
                             TEXCOORD_0=binbuf.accessor(np.asarray(att["uv"], np.float32), "VEC2", FLOAT,
                                                        ARRAY_BUFFER),
                             JOINTS_0=binbuf.accessor(joints, "VEC4", USHORT, ARRAY_BUFFER),
                             WEIGHTS_0=binbuf.accessor(wts, "VEC4", FLOAT, ARRAY_BUFFER))
        idx = binbuf.accessor(faces.astype(np.uint32).reshape(-1), "SCALAR", UINT, ELEMENT_ARRAY_BUFFER)
        gl.meshes.append(g.Mesh(name=att["name"], primitives=[
            g.Primitive(attributes=attrs, indices=idx, material=mats[att["name"]], mode=4)]))
        gl.nodes.append(g.Node(name=att["name"], mesh=len(gl.meshes) - 1, skin=0))
        scene_nodes.append(len(gl.nodes) - 1)
    gl.scenes[0].nodes = scene_nodes
    add_material_extensions(gl, {att["name"]: att.get("extensions") for att in attachments or []})
    if extras:
        gl.extras = extras
    gl.buffers = [g.Buffer(byteLength=len(binbuf.data))]
    gl.set_binary_blob(bytes(binbuf.data))
    return gl


def add_material_extensions(gl, extensions: dict[str, dict | None]) -> None:
    """Give the materials of `gl` (pygltflib.GLTF2) named in `extensions` those glTF extensions (merged over their
    own) and list them in extensionsUsed. In place; also re-dresses a .glb read back (benchmarks/hair_look)."""
    used = set(gl.extensionsUsed or [])
    for mat in gl.materials:
        ext = extensions.get(mat.name)
        if ext:
            mat.extensions = {**(mat.extensions or {}), **ext}
            used |= set(ext)
    gl.extensionsUsed = sorted(used)


def write_rig_glb(path, rig: Rig, texture_png: bytes | None, extras: dict | None = None,
                  attachments: list[dict] | None = None) -> int:
    """Write `rig` to `path` atomically; returns the file size in bytes."""
    gl = rig_to_gltf(rig, texture_png, extras, attachments)
    data = b"".join(gl.save_to_bytes())
    write_bytes(path, data)
    return len(data)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=4)
    return buf.getvalue()
