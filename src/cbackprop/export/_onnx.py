"""A network as an ONNX graph: the scaler as Sub and Div, one Gemm a layer (the bias as its
C input), the activations as ONNX operators, then the outputs of predict_proba and predict.

Outputs, as skl2onnx names them: classifiers give ``label`` (the original class labels:
int64, double, bool or string; for multi-label models a 0/1 int64 matrix) and
``probabilities``; regressors ``variable`` (n x outputs). The input ``X`` has a dynamic
batch dimension."""
import numpy as np

from cbackprop.export._model import (MULTILABEL, VALUES, ExportError, describe, export_dtype,
                                     label_values)
from cbackprop.reference import ELLIOTT_STEEPNESS, ELU_ALPHA, LEAKY_SLOPE

OPSET = 17          # every operator used here is in it; runtimes from 2022 on run it
IR_VERSION = 8      # the oldest IR of opset 17, so that older onnxruntime builds load it
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "identity": "Identity",
               "softmax": "Softmax", "exp": "Exp"}


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('ONNX export needs onnx; install it with '
                          'pip install "cbackprop[onnx]"') from exc
    return onnx


class _Graph:
    """Nodes and constants, named in order."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.constants = [], []

    def constant(self, name, array):
        tensor = self.onnx.numpy_helper.from_array(np.asarray(array), name)
        self.constants.append(tensor)
        return name

    def real(self, name, array):
        """A constant in the model's float type."""
        return self.constant(name, np.asarray(array, dtype=self.dtype))

    def node(self, op, inputs, output, **attributes):
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output,
                                                     **attributes))
        return output


# Issue 16's units from elementary operators, in the model's float type. ONNX's LeakyRelu,
# Elu and Softplus would do for float32, but their alpha is a float32 attribute (0.01 is
# 0.0099999998 in a float64 model), and ONNX Runtime (1.32) runs Elu and Softplus on float32
# only: one graph for both types.

def _leaky_relu(g, z, l):
    """max(z, slope z), the slope below 1."""
    return g.node("Max", [z, g.node("Mul", [z, g.real(f"slope{l}", LEAKY_SLOPE)], f"sz{l}")],
                  f"a{l}")


def _elu(g, z, l):
    """z > 0 ? z : alpha (exp(min(z, 0)) - 1)."""
    e = g.node("Exp", [g.node("Min", [z, g.real(f"zero{l}", 0.0)], f"neg{l}")], f"e{l}")
    low = g.node("Mul", [g.node("Sub", [e, g.real(f"one{l}", 1.0)], f"em1{l}"),
                         g.real(f"alpha{l}", ELU_ALPHA)], f"low{l}")
    return g.node("Where", [g.node("Greater", [z, f"zero{l}"], f"pos{l}"), z, low], f"a{l}")


def _softplus(g, z, l):
    """max(z, 0) + log(1 + exp(-|z|)): never overflows."""
    e = g.node("Exp", [g.node("Neg", [g.node("Abs", [z], f"abs{l}")], f"nabs{l}")], f"e{l}")
    log = g.node("Log", [g.node("Add", [e, g.real(f"one{l}", 1.0)], f"ope{l}")], f"log{l}")
    return g.node("Add", [g.node("Relu", [z], f"pos{l}"), log], f"a{l}")


def _elliott(g, z, l):
    """FANN_ELLIOT, which ONNX has no operator for: (t / 2) / (1 + |t|) + 1/2, t = s z."""
    t = g.node("Mul", [z, g.real(f"steepness{l}", ELLIOTT_STEEPNESS)], f"t{l}")
    d = g.node("Add", [g.node("Abs", [t], f"abs_t{l}"), g.real(f"one{l}", 1.0)], f"d{l}")
    q = g.node("Div", [g.node("Mul", [t, g.real(f"half{l}", 0.5)], f"half_t{l}"), d], f"q{l}")
    return g.node("Add", [q, f"half{l}"], f"a{l}")


COMPOSED = {"leaky_relu": _leaky_relu, "elu": _elu, "softplus": _softplus, "elliott": _elliott}


def _labels(g, model, h):
    """(label output's name, element type, shape) from the network's outputs h."""
    onnx = g.onnx
    int64 = onnx.TensorProto.INT64
    if model.task == MULTILABEL:
        on = g.node("GreaterOrEqual", [h, g.real("half", 0.5)], "on")
        return g.node("Cast", [on], "label", to=int64), int64, [None, model.n_units]
    if model.binary:        # class 1 when p >= 0.5, as predict does: a tie is class 1
        on = g.node("GreaterOrEqual", [h, g.real("half", 0.5)], "on")
        column = g.node("Cast", [on], "index_column", to=int64)
        flat = g.constant("flat", np.array([-1], dtype=np.int64))
        index = g.node("Reshape", [column, flat], "index")
    else:                   # the first maximum, as np.argmax
        index = g.node("ArgMax", [h], "index", axis=1, keepdims=0)
    if model.classes is None:
        return g.node("Identity", [index], "label"), int64, [None]
    kind, values = label_values(model.classes)
    if kind == "string":
        tensor = onnx.helper.make_tensor("classes", onnx.TensorProto.STRING, [len(values)],
                                         [v.encode("utf-8") for v in values])
        g.constants.append(tensor)
        elem = onnx.TensorProto.STRING
    else:
        g.constant("classes", values)
        elem = onnx.helper.np_dtype_to_tensor_dtype(values.dtype)
    return g.node("Gather", ["classes", index], "label", axis=0), elem, [None]


def _probabilities(g, model, h):
    if model.binary:
        q = g.node("Sub", [g.real("one", 1.0), h], "one_minus_p")
        return g.node("Concat", [q, h], "probabilities", axis=1)
    if model.normalize:     # one-vs-all units: each row divided by its sum (at least tiny)
        axes = g.constant("axes", np.array([1], dtype=np.int64))
        total = g.node("ReduceSum", [h, axes], "row_sum", keepdims=1)
        floor = g.real("tiny", np.finfo(g.dtype).tiny)
        total = g.node("Max", [total, floor], "row_sum_floor")
        return g.node("Div", [h, total], "probabilities")
    return g.node("Identity", [h], "probabilities")


def build(model, dtype=None, name="cbackprop"):
    """The onnx.ModelProto of an export Model (float32 or float64, by default the model's)."""
    onnx = _onnx()
    helper = onnx.helper
    dtype = export_dtype(dtype, model.dtype)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    g = _Graph(onnx, dtype)
    a = "X"
    if model.scaler is not None:
        a = g.node("Sub", [a, g.real("offset", model.scaler.offset)], "centered")
        a = g.node("Div", [a, g.real("scale", model.scaler.scale)], "scaled")
    for l, layer in enumerate(model.layers, start=1):
        if layer.activation not in ACTIVATIONS and layer.activation not in COMPOSED:
            raise ExportError(f"layer {l}: the activation {layer.activation!r} has no ONNX "
                              "export")
        z = g.node("Gemm", [a, g.real(f"W{l}", layer.weights), g.real(f"b{l}", layer.bias)],
                   f"z{l}", transB=1)
        if layer.activation in COMPOSED:
            a = COMPOSED[layer.activation](g, z, l)
        else:
            extra = {"axis": 1} if layer.activation == "softmax" else {}
            a = g.node(ACTIVATIONS[layer.activation], [z], f"a{l}", **extra)
    outputs = []
    if model.task == VALUES:
        g.node("Identity", [a], "variable")
        outputs.append(helper.make_tensor_value_info("variable", elem, [None, model.n_units]))
    else:
        label, label_elem, label_shape = _labels(g, model, a)
        outputs.append(helper.make_tensor_value_info(label, label_elem, label_shape))
        _probabilities(g, model, a)
        outputs.append(helper.make_tensor_value_info("probabilities", elem,
                                                     [None, model.n_outputs]))
    inputs = [helper.make_tensor_value_info("X", elem, [None, model.n_features])]
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.constants)
    proto = helper.make_model(graph, producer_name="cbackprop",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(net_or_estimator, path=None, dtype=None):
    """The ONNX model (onnx.ModelProto) of a Network or a fitted estimator, written to path
    when given. The Network's scaler_ runs in front (Sub, Div): the model takes the features
    as ``cbackprop predict`` reads them. dtype: float32 or float64 (default: the network's).

    Outputs: ``label`` and ``probabilities`` for classifiers (predict and predict_proba),
    ``variable`` (n x outputs) for identity and exp outputs; the batch dimension is
    dynamic."""
    model = describe(net_or_estimator)
    proto = build(model, dtype)
    if path is not None:
        _onnx().save(proto, str(path))
    return proto
