"""A network as an ONNX graph: the scaler as Sub and Div, one Gemm a layer (the bias as its
C input), the activations as ONNX operators, then the outputs of predict_proba and predict.

Outputs, as skl2onnx names them: classifiers give ``label`` (the original class labels:
int64, double, bool or string; for multi-label models a 0/1 int64 matrix) and
``probabilities``; regressors ``variable`` (n x outputs). The input ``X`` has a dynamic
batch dimension."""
import numpy as np

from cbackprop.export._model import (MULTILABEL, VALUES, ExportError, describe, export_dtype,
                                     label_values)

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
        if layer.activation not in ACTIVATIONS:
            raise ExportError(f"layer {l}: the activation {layer.activation!r} has no ONNX "
                              "export")
        z = g.node("Gemm", [a, g.real(f"W{l}", layer.weights), g.real(f"b{l}", layer.bias)],
                   f"z{l}", transB=1)
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
