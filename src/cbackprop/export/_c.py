"""A network as one dependency-free C99 header: the weights as static const arrays (the
scaler folded into the first layer), a forward pass, and the prediction functions.

    classifiers:  void NAME_predict_proba(const T *x, T *out)   NAME_N_OUTPUTS values
                  int NAME_predict(const T *x)                  an index into NAME_classes
    multi-label:  void NAME_predict_proba(const T *x, T *out), each label's probability
                  void NAME_predict_labels(const T *x, int *out), 0/1 a label
    regression:   void NAME_predict_values(const T *x, T *out)
    all:          void NAME_forward(const T *x, T *out)          the output units h

T is float or double. The functions are static inline unless NAME_API is defined before
the header is included (``#define NAME_API`` in one .c file gives external functions)."""
import re

import numpy as np

from cbackprop._version import __version__
from cbackprop.reference import ELLIOTT_STEEPNESS, ELU_ALPHA, LEAKY_SLOPE
from cbackprop.export._model import (CLASSES, MULTILABEL, VALUES, ExportError, describe,
                                     export_dtype, label_values)

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while _Bool _Complex _Imaginary".split())
ACTIVATION_CODES = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "softmax": 4, "exp": 5,
                    "leaky_relu": 6, "elu": 7, "softplus": 8, "elliott": 9}
PER_LINE = 6                 # numbers a line of the arrays


def check_c_name(name):
    """name if it can prefix C identifiers (not a keyword nor reserved); else ValueError."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"the C name must be a C identifier (letters, digits, _; not starting "
                         f"with a digit); got {name!r}")
    if name in C_KEYWORDS or name.startswith("__") or re.match(r"_[A-Z]", name):
        raise ValueError(f"the C name {name!r} is a C keyword or a reserved identifier")
    return name


def _number(x, ctype):
    """x as a C literal of ctype that reads back to the same value."""
    text = f"{float(x):.9g}" if ctype == "float" else f"{float(x):.17g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + ("f" if ctype == "float" else "")


def _c_string(text):
    """A C string literal: printable ASCII as is, anything else as octal escapes of UTF-8."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _array(ctype, name, values, comment):
    cells = list(values)
    rows = [", ".join(cells[i:i + PER_LINE]) for i in range(0, len(cells), PER_LINE)]
    body = ",\n    ".join(rows)
    return f"/* {comment} */\nstatic const {ctype} {name}[{len(cells)}] = {{\n    {body}\n}};\n"


def _classes_array(name, classes):
    kind, values = label_values(classes)
    if kind == "string":
        return _array("char *const", f"{name}_classes", [_c_string(v) for v in values],
                      "the class labels, in the order of the outputs")
    ctype = {"int64": "long long", "bool": "int", "double": "double"}[kind]
    cells = [repr(float(v)) if kind == "double" else str(int(v)) for v in values]
    return _array(ctype, f"{name}_classes", cells, "the class labels, in the order of the "
                                                    "outputs")


def _helpers(name, t, fn):
    """The one layer routine (z = b + W a, then the activation), shared by every layer."""
    return f"""static inline void {name}_layer_(const {t} *theta, int n_out, int n_in,
    const {t} *in, {t} *out, int activation)
{{
    int i, j;
    for (i = 0; i < n_out; ++i) {{
        const {t} *row = theta + (long)i * (n_in + 1);   /* bias first */
        {t} z = row[0];
        for (j = 0; j < n_in; ++j)
            z += row[j + 1] * in[j];
        if (activation == 1) {{     /* sigmoid, never overflowing: exp of -|z| only */
            {t} e = {fn['exp']}(z >= 0 ? -z : z);
            z = z >= 0 ? 1 / (1 + e) : e / (1 + e);
        }} else if (activation == 2) {{
            z = {fn['tanh']}(z);
        }} else if (activation == 3) {{
            z = z > 0 ? z : 0;
        }} else if (activation == 5) {{
            z = {fn['exp']}(z);
        }} else if (activation == 6) {{
            z = z > 0 ? z : {_number(LEAKY_SLOPE, t)} * z;
        }} else if (activation == 7) {{
            z = z > 0 ? z : {_number(ELU_ALPHA, t)} * {fn['expm1']}(z);
        }} else if (activation == 8) {{   /* softplus, never overflowing */
            z = (z > 0 ? z : 0) + {fn['log1p']}({fn['exp']}(z >= 0 ? -z : z));
        }} else if (activation == 9) {{   /* FANN_ELLIOT at steepness {ELLIOTT_STEEPNESS} */
            {t} s = {_number(ELLIOTT_STEEPNESS, t)} * z;
            z = s / 2 / (1 + (s >= 0 ? s : -s)) + {_number(0.5, t)};
        }}
        out[i] = z;
    }}
    if (activation == 4) {{         /* softmax, less the row's maximum */
        {t} top = out[0], sum = 0;
        for (i = 1; i < n_out; ++i)
            top = out[i] > top ? out[i] : top;
        for (i = 0; i < n_out; ++i) {{
            out[i] = {fn['exp']}(out[i] - top);
            sum += out[i];
        }}
        for (i = 0; i < n_out; ++i)
            out[i] /= sum;
    }}
}}
"""


def _forward(name, t, layers):
    widths = [l.weights.shape[0] for l in layers[:-1]]
    buffers = ["buf0", "buf1"][:min(2, len(widths))]
    lines = [f"{name.upper()}_API void {name}_forward(const {t} *x, {t} *out)", "{"]
    if buffers:
        width = max(widths)
        lines += [f"    {t} {b}[{width}];" for b in buffers]
    source = "x"
    for l, layer in enumerate(layers):
        target = "out" if l == len(layers) - 1 else buffers[l % 2]
        n_out, n_in = layer.weights.shape
        lines.append(f"    {name}_layer_({name}_theta{l + 1}, {n_out}, {n_in}, {source}, "
                     f"{target}, {ACTIVATION_CODES[layer.activation]});   "
                     f"/* {layer.activation} */")
        source = target
    lines.append("}")
    return "\n".join(lines) + "\n"


def _predictions(name, t, model):
    api = f"{name.upper()}_API"
    k = model.n_units
    if model.task == VALUES:
        return (f"{api} void {name}_predict_values(const {t} *x, {t} *out)\n"
                f"{{\n    {name}_forward(x, out);\n}}\n")
    if model.task == MULTILABEL:
        return (f"{api} void {name}_predict_proba(const {t} *x, {t} *out)\n"
                f"{{\n    {name}_forward(x, out);\n}}\n\n"
                f"{api} void {name}_predict_labels(const {t} *x, int *out)\n"
                f"{{\n    {t} h[{k}];\n    int i;\n    {name}_forward(x, h);\n"
                f"    for (i = 0; i < {k}; ++i)\n        out[i] = h[i] >= 0.5;\n}}\n")
    if model.binary:        # [1 - p, p]; class 1 when p >= 0.5, a tie included
        proba = f"    {t} p;\n    {name}_forward(x, &p);\n    out[0] = 1 - p;\n    out[1] = p;\n"
        predict = f"    {t} p;\n    {name}_forward(x, &p);\n    return p >= 0.5;\n"
    else:                   # the first maximum, as np.argmax
        proba = f"    {name}_forward(x, out);\n"
        if model.normalize:     # one-vs-all units: each row divided by its sum (>= tiny)
            tiny = _number(np.finfo(np.float32 if t == "float" else np.float64).tiny, t)
            proba += (f"    {t} sum = 0;\n    int i;\n    for (i = 0; i < {k}; ++i)\n"
                      f"        sum += out[i];\n    if (sum < {tiny})\n        sum = {tiny};\n"
                      f"    for (i = 0; i < {k}; ++i)\n        out[i] /= sum;\n")
        predict = (f"    {t} h[{k}];\n    int i, best = 0;\n    {name}_forward(x, h);\n"
                   f"    for (i = 1; i < {k}; ++i)\n        if (h[i] > h[best])\n"
                   f"            best = i;\n    return best;\n")
    return (f"{api} void {name}_predict_proba(const {t} *x, {t} *out)\n{{\n{proba}}}\n\n"
            f"{api} int {name}_predict(const {t} *x)\n{{\n{predict}}}\n")


def to_c(net_or_estimator, name="model", dtype="float", path=None):
    """One C99 header (the text; written to path when given) computing the network's
    predictions in float or double (float32, float64; None: the network's), the scaler_
    folded into the first layer. name prefixes every name of the header."""
    check_c_name(name)
    model = describe(net_or_estimator)
    ctype = "float" if export_dtype(dtype, model.dtype) is np.float32 else "double"
    for l, layer in enumerate(model.layers, start=1):
        if layer.activation not in ACTIVATION_CODES:
            raise ExportError(f"layer {l}: the activation {layer.activation!r} has no C export")
    layers = model.folded_layers()
    fn = {name: name + ("f" if ctype == "float" else "")
          for name in ("exp", "tanh", "expm1", "log1p")}
    upper = name.upper()
    sizes = "-".join(str(s) for s in [model.n_features] + [l.weights.shape[0] for l in layers])
    scaling = ("\n * (its feature scaling is folded into the weights)"
               if model.scaler is not None else "")
    parts = [f"""/* {name}.h: a cbackprop {__version__} network ({sizes}) as C99, in {ctype}.
 * Generated by cbackprop.export.to_c; needs only <math.h> (link with -lm).
 * Input: {model.n_features} features, as the model's predict takes them{scaling}.
 *
{_usage(name, ctype, model)} *
 * The functions are static inline; define {upper}_API (say, as nothing) before including
 * this header to declare them otherwise.
 */
#ifndef {upper}_H_INCLUDED
#define {upper}_H_INCLUDED

#include <math.h>

#ifndef {upper}_API
#define {upper}_API static inline
#endif

#define {upper}_N_FEATURES {model.n_features}
#define {upper}_N_OUTPUTS {model.n_outputs}
"""]
    for l, layer in enumerate(layers, start=1):
        theta = np.column_stack([layer.bias, layer.weights])
        parts.append(_array(ctype, f"{name}_theta{l}", [_number(x, ctype) for x in theta.ravel()],
                            f"Theta({l}), {theta.shape[0]} x {theta.shape[1]}, row by row: "
                            f"the bias first"))
    if model.task == CLASSES and model.classes is not None:
        parts.append(_classes_array(name, model.classes))
    parts += [_helpers(name, ctype, fn), _forward(name, ctype, layers),
              _predictions(name, ctype, model), f"#endif /* {upper}_H_INCLUDED */\n"]
    text = "\n".join(parts)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


def _usage(name, t, model):
    """The header comment's list of functions (no nested comments: they would end it)."""
    if model.task == VALUES:
        calls = [(f"void {name}_predict_values(const {t} *x, {t} *out)",
                  f"{model.n_outputs} values")]
    elif model.task == MULTILABEL:
        calls = [(f"void {name}_predict_proba(const {t} *x, {t} *out)",
                  "each label's probability"),
                 (f"void {name}_predict_labels(const {t} *x, int *out)", "0/1 a label")]
    else:
        where = f"an index into {name}_classes" if model.classes is not None else "its index"
        calls = [(f"void {name}_predict_proba(const {t} *x, {t} *out)",
                  f"{model.n_outputs} probabilities"),
                 (f"int {name}_predict(const {t} *x)", f"the class: {where}")]
    return "".join(f" *   {c};\n *       {what}\n" for c, what in calls)
