"""`cbackprop export`: a model file (a Network's or a saved estimator's) as an ONNX model or
a C99 header (cbackprop.export)."""
import cbackprop as cb
from cbackprop import export
from cbackprop.cli.data import check_exists, check_writable
from cbackprop.cli.report import out

FORMATS = ("onnx", "c")
DTYPES = ("float32", "float64", "float", "double")
SAME_AS = {"float": "float32", "double": "float64"}


def cmd_export(args):
    check_exists(args.model)
    path = args.out or ("model.onnx" if args.format == "onnx" else f"{args.name}.h")
    check_writable(path)
    net = cb.load(args.model)      # an estimator's file too: its network, with its labels
    if args.format == "onnx":
        proto = export.to_onnx(net, path, dtype=args.dtype)
        dtype = SAME_AS.get(args.dtype, args.dtype) or net.dtype.name
        outputs = ", ".join(o.name for o in proto.graph.output)
        out(f"wrote {path}: ONNX (opset {proto.opset_import[0].version}, {dtype}), input X, "
            f"outputs {outputs}")
    else:
        dtype = args.dtype or "float"
        export.to_c(net, name=args.name, dtype=dtype, path=path)
        out(f"wrote {path}: a C99 header ({SAME_AS.get(dtype, dtype)}), functions "
            f"{args.name}_predict_proba, {args.name}_predict, ...")
    return 0
