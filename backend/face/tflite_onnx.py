"""MediaPipe's face models (.tflite) as ONNX graphs for onnxruntime: the OpenCV runtime's faster engine.

A small reader of the TFLite flatbuffer (only the schema fields these models use) and a translation of their
operators (convolutions, depthwise convolutions, PReLU, additions, max pooling, padding, reshapes, concatenation;
float16 weights dequantised) to ONNX, activations kept NCHW. Outputs keep the TFLite tensor names and layouts.
Only what MediaPipe's detector, mesh and iris models contain is translated; anything else is a ModelMissingError
naming the operator.
"""
from __future__ import annotations

import functools

import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table

from ..errors import ModelMissingError

# TFLite builtin operator codes (schema.fbs) this translator knows.
ADD, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEPTH_TO_SPACE, DEQUANTIZE = 0, 2, 3, 4, 5, 6
MAX_POOL_2D, MUL, RELU, RESHAPE, RESIZE_BILINEAR, PAD, PRELU, DENSIFY = 17, 18, 19, 22, 23, 34, 54, 124
NAMES = {DEPTH_TO_SPACE: "DEPTH_TO_SPACE", RESIZE_BILINEAR: "RESIZE_BILINEAR", DENSIFY: "DENSIFY", ADD: "ADD",
         CONCATENATION: "CONCATENATION", CONV_2D: "CONV_2D", DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D",
         DEQUANTIZE: "DEQUANTIZE", MAX_POOL_2D: "MAX_POOL_2D", MUL: "MUL", RELU: "RELU", RESHAPE: "RESHAPE", PAD: "PAD",
         PRELU: "PRELU"}
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}  # TFLite TensorType → numpy


# --- the flatbuffer -------------------------------------------------------------------------------------------

class _Table:
    """One flatbuffer table: field i's value by its vtable slot (schema order)."""

    def __init__(self, buf: bytes, pos: int):
        self.t = Table(buf, pos)

    def _off(self, i: int) -> int:
        return self.t.Offset(4 + 2 * i)

    def scalar(self, i: int, flags, default=0):
        o = self._off(i)
        return self.t.Get(flags, o + self.t.Pos) if o else default

    def table(self, i: int) -> "_Table | None":
        o = self._off(i)
        return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, i: int) -> list["_Table"]:
        o = self._off(i)
        if not o:
            return []
        start, n = self.t.Vector(o), self.t.VectorLen(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * k)) for k in range(n)]

    def array(self, i: int, dtype) -> np.ndarray:
        o = self._off(i)
        if not o:
            return np.zeros(0, dtype)
        start, n = self.t.Vector(o), self.t.VectorLen(o)
        return np.frombuffer(self.t.Bytes, dtype, n, start).copy()

    def string(self, i: int) -> str | None:
        o = self._off(i)
        return self.t.String(o + self.t.Pos).decode() if o else None


_INDEX_TYPES = {1: np.int32, 2: np.uint16, 3: np.uint8}  # TFLite SparseIndexVector union


def _densify(values: np.ndarray, shape: tuple, sparsity: _Table, path: str) -> np.ndarray:
    """A sparse constant (TFLite SparsityParameters: per traversed dimension dense, or CSR segments and
    indices) as a dense array. Block-sparse layouts are not translated."""
    order = [int(v) for v in sparsity.array(0, np.int32)]
    if sparsity.array(1, np.int32).size or order != sorted(order):
        raise ModelMissingError(f"{path}: a block-sparse or reordered sparse tensor is not translated.",
                                code="model.corrupt")
    levels = []
    for dm in sparsity.tables(2):
        if dm.scalar(0, nt.Int8Flags) == 0:  # DENSE
            levels.append(("dense", dm.scalar(1, nt.Int32Flags)))
        else:  # SPARSE_CSR: the segments' and indices' vectors, each a one-field table of its union type
            seg, idx = dm.table(3), dm.table(5)
            levels.append(("csr", seg.array(0, _INDEX_TYPES[dm.scalar(2, nt.Uint8Flags)]).astype(np.int64),
                           idx.array(0, _INDEX_TYPES[dm.scalar(4, nt.Uint8Flags)]).astype(np.int64)))
    dense = np.zeros(shape, values.dtype)
    rows = [((), 0)]  # (index so far, position at this level)
    for level in levels:
        if level[0] == "dense":
            rows = [(ix + (i,), pos * level[1] + i) for ix, pos in rows for i in range(level[1])]
        else:
            seg, idx = level[1], level[2]
            rows = [(ix + (int(idx[k]),), k) for ix, pos in rows for k in range(seg[pos], seg[pos + 1])]
    for n, (ix, _) in enumerate(rows):
        dense[ix] = values[n]
    return dense


def read_model(path: str):
    """(tensors [(name, shape, dtype, constant or None)], inputs, outputs, operators [(code, custom name,
    inputs, outputs, options table, custom options bytes)]) of the model's first subgraph."""
    buf = open(path, "rb").read()
    model = _Table(buf, int.from_bytes(buf[:4], "little"))
    codes = [(max(c.scalar(0, nt.Int8Flags), c.scalar(3, nt.Int32Flags)), c.string(1)) for c in model.tables(1)]
    buffers = [b.array(0, np.uint8) for b in model.tables(4)]
    graph = model.tables(2)[0]
    tensors = []
    for t in graph.tables(0):
        dtype = DTYPES.get(t.scalar(1, nt.Uint8Flags))
        data = buffers[t.scalar(2, nt.Uint32Flags)]
        shape = tuple(int(v) for v in t.array(0, np.int32))
        const = None
        if data.size and dtype is not None:
            sparsity = t.table(6)
            const = data.view(dtype).reshape(shape) if sparsity is None else _densify(data.view(dtype), shape,
                                                                                        sparsity, path)
        tensors.append((t.string(3), shape, dtype, const))
    ops = [(codes[o.scalar(0, nt.Uint32Flags)][0], codes[o.scalar(0, nt.Uint32Flags)][1],
            [int(v) for v in o.array(1, np.int32)], [int(v) for v in o.array(2, np.int32)], o.table(4),
            bytes(o.array(5, np.uint8))) for o in graph.tables(3)]
    return tensors, [int(v) for v in graph.array(1, np.int32)], [int(v) for v in graph.array(2, np.int32)], ops


# --- translation ----------------------------------------------------------------------------------------------

def _same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def convert(path: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()):
    """The .tflite model at `path` (or the part of it that computes the tensors named `outputs` from those named
    `inputs`; default: the model's own) as an onnx.ModelProto. 4-D inputs are NCHW float32, outputs keep
    TFLite's names and layouts."""
    # onnx (and onnxruntime below) stay lazy: the face package is imported by job planning and the doctor,
    # which load no model
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors, model_in, model_out, ops = read_model(path)
    index = {t[0]: i for i, t in enumerate(tensors)}
    ins_at = [index[n] for n in inputs] if inputs else model_in
    outs_at = [index[n] for n in outputs] if outputs else model_out
    maker = {o: k for k, op_ in enumerate(ops) for o in op_[3]}
    need, todo = set(), list(outs_at)
    while todo:  # the operators between the inputs and the outputs
        i = todo.pop()
        if i in ins_at or i not in maker or maker[i] in need:
            continue
        need.add(maker[i])
        todo += [j for j in ops[maker[i]][2] if j >= 0]
    ops = [op_ for k, op_ in enumerate(ops) if k in need]
    nodes, inits = [], []
    const = {i: t[3].astype(np.float32) if t[3] is not None and t[2] == np.float16 else t[3]
             for i, t in enumerate(tensors) if t[3] is not None}
    name = lambda i: f"t{i}"  # noqa: E731
    used = set()

    def init(i):  # a constant tensor, once
        if i not in used:
            used.add(i)
            arr = const[i]
            inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name(i)))
        return name(i)

    def extra(tag, arr):
        n = f"c{len(inits)}_{tag}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def op(kind, args, out, fused=0, **attrs):  # one node, then its fused activation
        if fused not in (0, 1, 3):
            raise ModelMissingError(f"{path}: fused activation {fused} is not translated.", code="model.corrupt")
        nodes.append(helper.make_node(kind, args, [out + "_pre" if fused else out], **attrs))
        if fused == 1:
            nodes.append(helper.make_node("Relu", [out + "_pre"], [out]))
        elif fused == 3:  # RELU6
            bounds = [extra("lo", np.float32(0)), extra("hi", np.float32(6))]
            nodes.append(helper.make_node("Clip", [out + "_pre", *bounds], [out]))

    for code, custom, ins, outs, opt, _ in ops:
        out = name(outs[0])
        if code in (DEQUANTIZE, DENSIFY):  # constants: done here
            const[outs[0]] = const[ins[0]].astype(np.float32)
            continue
        if code in (CONV_2D, DEPTHWISE_CONV_2D):
            depthwise = code == DEPTHWISE_CONV_2D
            padding, sw, sh = opt.scalar(0, nt.Int8Flags), opt.scalar(1, nt.Int32Flags), opt.scalar(2, nt.Int32Flags)
            fused = opt.scalar(4 if depthwise else 3, nt.Int8Flags)
            dw, dh = opt.scalar(5 if depthwise else 4, nt.Int32Flags, 1), opt.scalar(6 if depthwise else 5,
                                                                                    nt.Int32Flags, 1)
            w = const[ins[1]]  # conv (O, kh, kw, I); depthwise (1, kh, kw, C·m)
            wt = w.transpose(3, 0, 1, 2)[:, None] if depthwise else w.transpose(0, 3, 1, 2)
            wt = wt.reshape(wt.shape[0], -1, *wt.shape[-2:]) if depthwise else wt
            _, h, wd, c = tensors[ins[0]][1]
            kh, kw = w.shape[1:3]
            pads = [0, 0, 0, 0]
            if padding == 0:  # SAME
                (pt, pb), (pl, pr) = _same_pads(h, kh, sh, dh), _same_pads(wd, kw, sw, dw)
                pads = [pt, pl, pb, pr]
            args = [name(ins[0]), extra("w", wt.astype(np.float32))]
            if len(ins) > 2 and ins[2] >= 0:
                args.append(extra("b", const[ins[2]].astype(np.float32)))
            op("Conv", args, out, fused, strides=[sh, sw], pads=pads, dilations=[dh, dw], kernel_shape=[kh, kw],
               group=c if depthwise else 1)
        elif code == MAX_POOL_2D:
            padding, sw, sh = opt.scalar(0, nt.Int8Flags), opt.scalar(1, nt.Int32Flags), opt.scalar(2, nt.Int32Flags)
            fw, fh, fused = opt.scalar(3, nt.Int32Flags), opt.scalar(4, nt.Int32Flags), opt.scalar(5, nt.Int8Flags)
            _, h, wd, _ = tensors[ins[0]][1]
            pads = [0, 0, 0, 0]
            if padding == 0:
                (pt, pb), (pl, pr) = _same_pads(h, fh, sh), _same_pads(wd, fw, sw)
                pads = [pt, pl, pb, pr]
            op("MaxPool", [name(ins[0])], out, fused, kernel_shape=[fh, fw], strides=[sh, sw], pads=pads)
        elif code == PRELU:
            alpha, shape = const[ins[1]].astype(np.float32), tensors[ins[0]][1]
            if len(shape) == 4:  # per channel, NHWC's last axis
                if alpha.size != shape[3]:
                    raise ModelMissingError(f"{path}: a PRELU with alpha {alpha.shape} is not translated.",
                                            code="model.corrupt")
                alpha = alpha.reshape(-1, 1, 1)
            op("PRelu", [name(ins[0]), extra("alpha", alpha)], out)
        elif code in (ADD, MUL):
            fused = opt.scalar(0, nt.Int8Flags) if opt else 0
            if any(i in const and const[i].ndim == 4 for i in ins):
                raise ModelMissingError(f"{path}: a 4-D constant operand is not translated.", code="model.corrupt")
            op("Add" if code == ADD else "Mul", [init(i) if i in const else name(i) for i in ins], out, fused)
        elif code == DEPTH_TO_SPACE:  # TensorFlow's order is ONNX's DCR
            op("DepthToSpace", [name(ins[0])], out, blocksize=opt.scalar(0, nt.Int32Flags), mode="DCR")
        elif code == RESIZE_BILINEAR:
            align, half = opt.scalar(2, nt.BoolFlags), opt.scalar(3, nt.BoolFlags)
            _, h, wd, c = tensors[outs[0]][1]
            mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
            op("Resize", [name(ins[0]), "", "", extra("sizes", np.array([1, c, h, wd], np.int64))], out,
               mode="linear", coordinate_transformation_mode=mode)
        elif code == RELU:
            nodes.append(helper.make_node("Relu", [name(ins[0])], [out]))
        elif code == PAD:
            p = np.asarray(const[ins[1]], np.int64)[[0, 3, 1, 2]]  # NHWC rows → NCHW
            nodes.append(helper.make_node("Pad", [name(ins[0]), extra("pads", np.concatenate([p[:, 0], p[:, 1]]))],
                                          [out], mode="constant"))
        elif code == RESHAPE:  # on TFLite's NHWC layout: back to NHWC first when the input is 4-D
            src = name(ins[0])
            if len(tensors[ins[0]][1]) == 4:
                nodes.append(helper.make_node("Transpose", [src], [out + "_nhwc"], perm=[0, 2, 3, 1]))
                src = out + "_nhwc"
            shape = np.asarray(tensors[outs[0]][1], np.int64)
            if len(shape) == 4:
                raise ModelMissingError(f"{path}: a 4-D RESHAPE is not translated.", code="model.corrupt")
            nodes.append(helper.make_node("Reshape", [src, extra("shape", shape)], [out]))
        elif code == CONCATENATION:
            axis, fused = opt.scalar(0, nt.Int32Flags), opt.scalar(1, nt.Int8Flags)
            rank = len(tensors[outs[0]][1])
            if rank == 4:
                axis = [0, 2, 3, 1][axis % 4]
            op("Concat", [name(i) for i in ins], out, fused, axis=axis)
        else:
            raise ModelMissingError(f"{path}: the operator {custom or NAMES.get(code, code)} is not translated to "
                                    "ONNX.", code="model.corrupt", hint="Use the OpenCV engine for this model.")

    graph_outputs = []
    for i in outs_at:
        n, shape = name(i), tensors[i][1]
        if len(shape) == 4:  # back to TFLite's NHWC
            nodes.append(helper.make_node("Transpose", [n], [tensors[i][0]], perm=[0, 2, 3, 1]))
        else:
            nodes.append(helper.make_node("Identity", [n], [tensors[i][0]]))
        graph_outputs.append(helper.make_tensor_value_info(tensors[i][0], TensorProto.FLOAT, list(shape)))
    graph_inputs = []
    for k, i in enumerate(ins_at):
        shape = list(tensors[i][1])
        shape = [shape[0], shape[3], shape[1], shape[2]] if len(shape) == 4 else shape
        label = "input" if not inputs else tensors[i][0]
        nodes.insert(k, helper.make_node("Identity", [label], [name(i)]))
        graph_inputs.append(helper.make_tensor_value_info(label, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "mediapipe", graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="headforge")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@functools.lru_cache(maxsize=8)
def session(path: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()):
    """An onnxruntime session of the translated model (one thread: the face stage's figures must not depend on
    the machine's thread count, and these small models gain little from more)."""
    import onnxruntime as ort  # lazy, see convert

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(convert(path, inputs, outputs).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
