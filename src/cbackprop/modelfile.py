"""Model files: save and read a network with everything fit learned.

A model file is an ``.npz`` archive (a zip of ``.npy`` arrays) that any NumPy can read with
``allow_pickle=False``:

- ``metadata``: a 0-d string array holding JSON: the format name and version, the
  architecture (layer sizes, activations, output, loss, dtype), what the outputs mean
  (class labels, target kind), the package version, the training summary and, for every
  other member, its shape, dtype and SHA-256;
- ``Theta1``, ``Theta2``, ...: the weight matrices, bias in column 0 (the course's names);
- ``classes`` (classifiers), ``history_loss``, ``history_val_score``, ... (fitted networks),
  ``scaler_offset`` and ``scaler_scale`` (networks trained on scaled features);
- a saved scikit-learn estimator (format version 2): its parameters and fitted attributes in
  the metadata's ``estimator`` object, ``estimator_feature_names_in`` (and its other arrays),
  its class labels in ``classes``. ``cbackprop.sklearn.load`` rebuilds the estimator;
  ``cbackprop.load`` gives its Network, which predicts the same labels.

Nothing in a file is ever executed: arrays of Python objects are refused before they are
read, and every value is checked (format version, each member's presence, shape, dtype,
checksum and finiteness, the metadata's consistency with the arrays) before a network is
built. Any problem raises :class:`ModelFileError`, a ``ValueError``, naming the file.
Only regular files are read (a FIFO or a device is refused before it is opened for
reading); every member's declared shape must be non-negative and fit in the file, reads are
bounded by the declared sizes, and the memory a load takes is a small multiple of the
model's size whatever the file claims. Duplicate members are refused.

The SHA-256 digests detect corruption and accidental edits, not a deliberate forgery: they
are checksums, not a signature. A file edited and then given recomputed digests loads. Load
model files only from sources you trust as you would any other data.

Saving writes a temporary file next to the target and renames it over the target
(``os.replace``), so an interrupted save never leaves a half-written model.

:func:`save` reads a network's public attributes; :func:`read` returns a
:class:`~cbackprop._spec.NetworkSpec`, which ``Network.load`` (``cbackprop.load``) builds
the network from: this module sits below network.py and never imports it.
"""
import errno
import hashlib
import json
import math
import os
import stat
import tempfile
import zipfile
from collections import Counter, OrderedDict
from datetime import datetime, timezone

import numpy as np

from cbackprop import _targets, _validation as v
from cbackprop._spec import NetworkSpec
from cbackprop._version import __version__
from cbackprop._targets import TargetCoding
from cbackprop.preprocessing import SCALERS, Scaler

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "save", "read", "read_metadata"]

FORMAT = "cbackprop-model"
FORMAT_VERSION = 2        # 2: files of estimators; a Network's file is still written as 1, so
                          # that older cbackprop reads it
MAX_METADATA_BYTES = 1 << 24          # 16 MiB of JSON is far more than any model needs
HISTORY_KEYS = ("loss", "val_loss", "val_score", "time")
# dtypes class labels may have in a file: bool, integers, floats, text (never objects)
CLASS_KINDS = "biufUS"
ESTIMATOR_CLASSES = ("BackpropClassifier", "BackpropRegressor")


class ModelFileError(ValueError):
    """A model file that cannot be read: not a model, truncated, corrupted, inconsistent,
    or written by a newer cbackprop."""



# ------------------------------------------------------------------------------- saving


def _little(dtype):
    """The dtype's little-endian form: files describe and checksum arrays in it, so that a
    file written on a big-endian machine reads the same."""
    return dtype.newbyteorder("<") if dtype.byteorder != "|" else dtype


def _sha256(arr):
    arr = np.array(arr, dtype=_little(arr.dtype), order="C")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def _classes_for_file(classes):
    """(array a file can hold, how to restore it): object arrays of text are stored as text."""
    classes = np.asarray(classes)
    if classes.dtype.kind in CLASS_KINDS:
        return classes, "array"
    if classes.dtype.kind == "O":
        if all(isinstance(c, str) for c in classes):
            return classes.astype(str), "object"
        try:
            plain = np.array(classes.tolist())
        except ValueError:
            plain = classes
        if plain.dtype.kind in "biuf":
            return plain, "object"
    raise TypeError(f"class labels of dtype {classes.dtype} cannot be saved: use numbers or "
                    "strings")


def _jsonable(obj, where):
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} must be JSON-serializable with finite numbers ({exc})") from None


def _network_of(model):
    """The Network of a model: a Network, or an estimator holding one in ``network_``
    (recognized by the attributes a Network has, so that this module needs no import of it)."""
    for candidate in (model, getattr(model, "network_", None)):
        if all(hasattr(candidate, a) for a in ("thetas", "layer_sizes", "target_coding_")):
            return candidate
    raise TypeError(f"save needs a cbackprop Network (or a fitted estimator with network_); "
                    f"got {type(model).__name__}")


def _snapshot_thetas(net):
    """Copies of the Thetas taken at one moment: the flat parameter vector is copied once
    (a fit on another thread may be updating it) and the copies are cut from it, so that
    what is hashed is what is written, and all layers come from the same moment."""
    shapes = [tuple(t.shape) for t in net.thetas]
    params = getattr(net, "params", None)
    if isinstance(params, np.ndarray) and params.size == sum(a * b for a, b in shapes):
        flat = np.array(params, copy=True)
        out, start = [], 0
        for a, b in shapes:
            out.append(flat[start:start + a * b].reshape(a, b).copy())
            start += a * b
        if all(np.shares_memory(t, params) for t in net.thetas):
            return out
    return [np.array(t, copy=True, order="C") for t in net.thetas]


def _estimator_state(model, net):
    """(JSON state, arrays, class labels) of an estimator (its ``_model_file_state()``, so that
    this module needs no import of scikit-learn), or None for a Network."""
    if model is net or not hasattr(model, "_model_file_state"):
        return None
    state, arrays, classes = model._model_file_state()
    state = _jsonable({**state, "arrays": sorted(arrays)}, "the estimator's state")
    return state, {f"estimator_{k}": np.asarray(a) for k, a in arrays.items()}, classes


def _arrays_and_metadata(net, thetas, estimator=None):
    arrays = OrderedDict((f"Theta{l}", t) for l, t in enumerate(thetas, start=1))
    meta = {
        "format": FORMAT,
        "format_version": 2 if estimator else 1,
        "cbackprop_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "layer_sizes": list(net.layer_sizes),
        "activation": list(net.activation),
        "output": net.output,
        "loss": net.loss,
        "dtype": net.dtype.name,
        "target": {"kind": net.target_coding_.kind,
                   "one_dimensional": net.target_coding_.one_dimensional},
    }
    # an estimator's network is trained on class indices: the file holds its labels
    classes = estimator[2] if estimator and estimator[2] is not None else net.classes_
    if classes is not None:
        arrays["classes"], meta["target"]["classes_as"] = _classes_for_file(classes)
    if estimator:
        meta["estimator"] = estimator[0]
        arrays.update(estimator[1])
    history = getattr(net, "history_", None)          # present once fitted
    if history is not None:
        meta["n_iter"] = int(net.n_iter_)
        meta["history"] = [k for k in HISTORY_KEYS if k in history]
        lists = {k: list(history[k]) for k in meta["history"]}   # copies, taken once
        for key in meta["history"]:
            values = np.array(lists[key], dtype=np.float64)
            if values.ndim != 1 or not np.isfinite(values).all():
                raise ValueError(f"net.history_[{key!r}] must be a list of finite numbers")
            arrays[f"history_{key}"] = values
    scaler = net.scaler_
    if scaler is not None:
        if scaler.n_features != net.layer_sizes[0]:
            raise ValueError(f"net.scaler_ scales {scaler.n_features} features, the network "
                             f"takes {net.layer_sizes[0]}")
        meta["scaler"] = scaler.kind
        arrays["scaler_offset"] = np.array(scaler.offset, copy=True)
        arrays["scaler_scale"] = np.array(scaler.scale, copy=True)
    meta["info"] = _jsonable(net.info_ or {}, "net.info_")
    names = arrays.get("estimator_feature_names_in")
    if names is not None and "features" not in meta["info"]:
        # the command line's predict and evaluate find a CSV's columns by these names
        meta["info"]["features"] = names.tolist()
    meta["arrays"] = {name: {"shape": list(a.shape), "dtype": _little(a.dtype).str,
                             "sha256": _sha256(a)}
                      for name, a in arrays.items()}
    return arrays, meta


def _umask():
    """The process's umask, read without changing it where Linux allows (os.umask sets it,
    for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save(model, path):
    """Write a model file (see the module's docstring); returns the path.

    model: a Network, or an estimator holding one in ``network_`` (a BackpropClassifier or
    BackpropRegressor also saves its parameters, labels, feature names and fitted
    attributes, which ``cbackprop.sklearn.load`` restores). Saved with it:
    ``classes_``, ``target_coding_``, ``history_``/``n_iter_`` (if fitted), ``scaler_`` (a
    :class:`~cbackprop.preprocessing.Scaler`, if set) and ``info_`` (a JSON-serializable
    dict). Optimizer state is not saved. The parameters are copied once, at the start, and
    that copy is hashed and written: a save from a callback or another thread during a fit
    writes a file that loads (the parameters of one moment of the fit).
    The file appears whole or not at all: it is written to a temporary file in the same
    directory, then renamed over path.
    """
    net = _network_of(model)
    thetas = _snapshot_thetas(net)                # one copy: hashed and written as is
    if not all(np.isfinite(t).all() for t in thetas):
        raise ModelFileError("the network's parameters contain NaN or inf: load would refuse "
                             "such a file, so it is not written")
    arrays, meta = _arrays_and_metadata(net, thetas, _estimator_state(model, net))
    meta["metadata_sha256"] = _metadata_digest(meta)
    arrays["metadata"] = np.array(json.dumps(meta, allow_nan=False, indent=1))
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike; got {type(path).__name__}")
    target = os.fsdecode(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the model file", target)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "no such directory to save the model in", folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())        # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ------------------------------------------------------------------------------ loading


class _Reader:
    """Reads and checks the members of one model file."""

    def __init__(self, path, zf, file_size):
        self.path, self.zf = path, zf
        self.file_size = file_size

    def fail(self, message):
        return ModelFileError(f"{self.path}: {message}")

    def member(self, name):
        try:
            return self.zf.getinfo(name + ".npy")
        except KeyError:
            raise self.fail(f"the array {name!r} is missing (truncated or tampered file)") from None

    def read(self, name, shape=None, kind=None, dtype=None, max_bytes=None):
        """The array `name`, after checking its header against what is expected and before
        reading more than the header."""
        info = self.member(name)
        what = "the metadata" if name == "metadata" else f"the array {name!r}"
        if max_bytes is not None and info.file_size > max_bytes + 4096:
            raise self.fail(f"{what} claims {info.file_size} bytes, more than the limit of "
                            f"{max_bytes >> 20} MiB (not a model written by cbackprop)")
        limit = self.file_size
        if info.compress_type == zipfile.ZIP_STORED and info.file_size > limit:
            raise self.fail(f"{what} claims {info.file_size} bytes, more than "
                            f"the file holds (corrupted file)")
        try:
            with self.zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise self.fail(f"the array {name!r} has an unsupported .npy version {version}")
                if got_dtype.hasobject:
                    raise self.fail(f"the array {name!r} holds Python objects; model files "
                                    "hold plain numbers and text only, and objects are never "
                                    "unpickled")
                if shape is not None and tuple(got_shape) != tuple(shape):
                    raise self.fail(f"the array {name!r} has shape {tuple(got_shape)}, expected "
                                    f"{tuple(shape)} (tampered or inconsistent file)")
                want = np.dtype(dtype) if dtype is not None else None
                if want is not None and (got_dtype.kind, got_dtype.itemsize) != (want.kind,
                                                                                 want.itemsize):
                    raise self.fail(f"the array {name!r} has dtype {got_dtype}, expected {want}")
                if kind is not None and got_dtype.kind not in kind:
                    raise self.fail(f"the array {name!r} has dtype {got_dtype}, which a model "
                                    "file does not use there")
                if (not isinstance(got_shape, tuple)
                        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                   for d in got_shape)):
                    raise self.fail(f"the array {name!r} declares an invalid shape "
                                    f"{got_shape!r} (dimensions must be non-negative integers)")
                nbytes = math.prod(got_shape) * got_dtype.itemsize   # exact: Python ints
                if max_bytes is not None and nbytes > max_bytes:
                    raise self.fail(f"{what} holds {nbytes} bytes, more than the limit of "
                                    f"{max_bytes >> 20} MiB (not a model written by cbackprop)")
                if nbytes > limit or nbytes > info.file_size:
                    raise self.fail(f"the array {name!r} is larger than its file entry "
                                    "(corrupted or truncated file)")
                data = f.read(nbytes) if nbytes else b""      # nbytes >= 0: a bounded read
                if len(data) != nbytes or f.read(1):
                    raise self.fail(f"the array {name!r} does not have the size its header "
                                    "says (corrupted or truncated file)")
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise self.fail(f"the array {name!r} cannot be read: {exc} (corrupted or truncated "
                            "file)") from None
        arr = np.frombuffer(data, dtype=got_dtype)
        del data
        arr = arr.reshape(got_shape, order="F" if fortran else "C")
        if not got_dtype.isnative:
            arr = arr.astype(got_dtype.newbyteorder("="))
        return np.array(arr, order="C")           # a writable copy (0-d stays 0-d)


def _metadata_digest(meta):
    """SHA-256 of the metadata (less this digest) in a canonical JSON form: an edited
    activation, scaler or class list shows, as the arrays' digests show edited numbers."""
    rest = {k: val for k, val in meta.items() if k != "metadata_sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _metadata(reader):
    raw = reader.read("metadata", shape=(), kind="U", max_bytes=MAX_METADATA_BYTES)
    try:
        meta = json.loads(str(raw[()]))
    except ValueError as exc:
        raise reader.fail(f"the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise reader.fail(f"not a cbackprop model file (its metadata does not name the format "
                          f"{FORMAT!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise reader.fail(f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise reader.fail(
            f"written by a newer cbackprop ({meta.get('cbackprop_version', '?')}, model format "
            f"version {version}); this cbackprop {__version__} reads format version "
            f"{FORMAT_VERSION} and older: upgrade cbackprop (pip install -U cbackprop)")
    try:
        digest = _metadata_digest(meta)
    except ValueError:                             # NaN or inf in it: never written by save
        digest = None
    if meta.get("metadata_sha256") != digest:
        raise reader.fail("the metadata was modified after saving (its checksum does not "
                          "match): refusing a tampered or corrupted file")
    return meta


def _field(reader, meta, key, kind, where=None):
    """meta[key] (or where[key]), which must be of type kind (bools are not ints)."""
    value = (meta if where is None else where).get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise reader.fail(f"the metadata field {key!r} is missing or invalid: {value!r}")
    return value


def _build(reader, meta):
    """The NetworkSpec a checked metadata dict and the file's arrays describe."""
    sizes = _field(reader, meta, "layer_sizes", list)
    activation = _field(reader, meta, "activation", list)
    output = _field(reader, meta, "output", str)
    loss = _field(reader, meta, "loss", str)
    dtype = _field(reader, meta, "dtype", str)
    listed = _field(reader, meta, "arrays", dict)
    try:
        sizes = v.check_layer_sizes(sizes)
        dtype = v.check_dtype(dtype)
        activation = v.check_activations(activation, len(sizes) - 2)
        v.check_output_and_loss(output, loss, sizes[-1])
    except (TypeError, ValueError) as exc:
        raise reader.fail(f"invalid architecture in the metadata: {exc}") from None

    expected = {f"Theta{l + 1}": ((sizes[l + 1], sizes[l] + 1), dtype)
                for l in range(len(sizes) - 1)}
    target = _field(reader, meta, "target", dict)
    kind = target.get("kind")
    if kind not in (None, *_targets.KINDS):
        raise reader.fail(f"unknown target kind {kind!r}")
    one_dim = _field(reader, meta, "one_dimensional", bool, target)
    has_classes = "classes_as" in target
    if kind == _targets.LABELS and not has_classes:
        raise reader.fail("a classifier's file without its class labels")
    if has_classes and kind in (_targets.MATRIX, _targets.REGRESSION):
        raise reader.fail(f"class labels with the target kind {kind!r}: the metadata is "
                          "inconsistent with the arrays (classes are for kind 'labels')")
    values = output in v.VALUE_OUTPUTS
    if has_classes and values:
        raise reader.fail(f"class labels with {output} outputs: the metadata is inconsistent "
                          "with the arrays")
    if kind == _targets.REGRESSION and not values:
        raise reader.fail(f"the target kind 'regression' with {output!r} outputs: the "
                          "metadata is inconsistent (regression uses identity or exp outputs)")
    if values and kind not in (None, _targets.REGRESSION):
        raise reader.fail(f"{output} outputs with the target kind {kind!r}: the metadata is "
                          f"inconsistent ({output} outputs give regression values)")
    if has_classes:
        expected["classes"] = (None, None)
    estimator = meta.get("estimator")
    if estimator is not None:
        if (not isinstance(estimator, dict) or estimator.get("class") not in ESTIMATOR_CLASSES
                or not isinstance(estimator.get("arrays"), list)
                or not all(isinstance(n, str) and n.isidentifier()
                           for n in estimator["arrays"])):
            raise reader.fail(f"invalid estimator section in the metadata: {estimator!r:.200}")
        expected.update((f"estimator_{n}", (None, None)) for n in estimator["arrays"])
    history = meta.get("history")
    if history is not None:
        if not isinstance(history, list) or not set(history) <= set(HISTORY_KEYS):
            raise reader.fail(f"invalid history keys {history!r}")
        n_iter = _field(reader, meta, "n_iter", int)
        if n_iter < 0:
            raise reader.fail(f"invalid n_iter {n_iter}")
        for key in history:
            expected[f"history_{key}"] = (None, np.float64)
    scaler_kind = meta.get("scaler")
    if scaler_kind is not None:
        if scaler_kind not in SCALERS:
            raise reader.fail(f"unknown scaler {scaler_kind!r}")
        expected["scaler_offset"] = ((sizes[0],), np.float64)
        expected["scaler_scale"] = ((sizes[0],), np.float64)

    members = {n[:-4] for n in reader.zf.namelist() if n.endswith(".npy")}
    extra = (members | set(listed)) - set(expected) - {"metadata"}
    if extra or set(n + ".npy" for n in members) != set(reader.zf.namelist()):
        raise reader.fail(f"unexpected members {sorted(extra) or reader.zf.namelist()} "
                          "(tampered file)")
    arrays = {}
    for name, (shape, want) in expected.items():
        entry = listed.get(name)
        if not isinstance(entry, dict):
            raise reader.fail(f"the metadata does not describe the array {name!r}")
        if shape is None:
            shape = entry.get("shape")
            if (not isinstance(shape, list) or len(shape) != 1 or not isinstance(shape[0], int)
                    or isinstance(shape[0], bool) or shape[0] < 0):
                raise reader.fail(f"the array {name!r} must be 1-D with a non-negative length; "
                                  f"the metadata says {shape!r}")
        plain = name == "classes" or name.startswith("estimator_")   # labels, names: text too
        arr = reader.read(name, shape, kind=CLASS_KINDS if plain else "f", dtype=want)
        if [*arr.shape] != entry.get("shape") or _little(arr.dtype).str != entry.get("dtype"):
            raise reader.fail(f"the array {name!r} does not match its description in the "
                              "metadata (tampered file)")
        if _sha256(arr) != entry.get("sha256"):
            raise reader.fail(f"the array {name!r} fails its checksum (corrupted or tampered "
                              "file)")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise reader.fail(f"the array {name!r} contains NaN or inf")
        arrays[name] = arr

    spec = NetworkSpec([arrays[f"Theta{l}"] for l in range(1, len(sizes))], activation,
                       output, loss, dtype, target_coding=TargetCoding(kind, one_dim))
    if has_classes:
        spec.classes = _restore_classes(reader, arrays["classes"], target, output, sizes[-1])
    if history is not None:
        lengths = {arrays[f"history_{k}"].shape[0] for k in history}
        if len(lengths) > 1:
            raise reader.fail("the history arrays differ in length")
        spec.history = {k: arrays[f"history_{k}"].tolist() for k in history}
        spec.n_iter = n_iter
    if scaler_kind is not None:
        if (arrays["scaler_scale"] <= 0).any():
            raise reader.fail("the scaler's scales must be positive")
        spec.scaler = Scaler(scaler_kind, arrays["scaler_offset"], arrays["scaler_scale"])
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise reader.fail("the metadata field 'info' must be an object")
    spec.info = info
    if estimator is not None:
        spec.estimator = {**estimator, "arrays": {n: arrays[f"estimator_{n}"]
                                                  for n in estimator["arrays"]}}
    return spec


def _restore_classes(reader, classes, target, output, n_outputs):
    if not (len(classes) == n_outputs or (n_outputs == 1 and len(classes) == 2
                                          and output == "sigmoid")):
        raise reader.fail(f"{len(classes)} classes do not fit {n_outputs} output units")
    if classes.dtype.kind == "f" and not np.isfinite(classes).all():
        raise reader.fail("the class labels contain NaN or inf")
    if len(np.unique(classes)) != len(classes) or not np.array_equal(np.unique(classes), classes):
        raise reader.fail("the class labels must be sorted and distinct")
    how = target.get("classes_as")
    if how == "object":
        return np.array(classes.tolist(), dtype=object)
    if how != "array":
        raise reader.fail(f"invalid classes_as {how!r}")
    return classes


def _open_regular(path):
    """(display path, open binary file, its size) for a path (str, bytes or os.PathLike)
    naming a regular file. FIFOs, devices and sockets are refused without blocking: the file
    is opened non-blocking, then checked with fstat on what was opened (no race)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike; got {type(path).__name__}")
    path = os.fspath(path)
    shown = os.fsdecode(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{shown}: no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{shown}: is a directory, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{shown}: not a regular file (a FIFO, device or socket), not a "
                             "model file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelFileError(f"{shown}: cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{shown}: not a regular file (a FIFO, device or socket), "
                                 "not a model file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return shown, f, st.st_size


def _open_zip(path):
    shown, f, size = _open_regular(path)
    try:
        zf = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        f.close()
        raise ModelFileError(f"{shown}: not a cbackprop model file (not a zip archive; "
                             "truncated or corrupted?)") from None
    except (OSError, EOFError, ValueError) as exc:
        f.close()
        raise ModelFileError(f"{shown}: cannot be read ({exc})") from None
    except BaseException:
        f.close()
        raise
    names = zf.namelist()
    if len(names) != len(set(names)):
        dup = sorted(n for n, c in Counter(names).items() if c > 1)
        zf.close()
        f.close()
        raise ModelFileError(f"{shown}: duplicate members {dup} (tampered file: a zip reader "
                             "would take the last one silently)")
    return shown, f, zf, size


def read(path):
    """Read and check a model file written by :func:`save` (or ``Network.save``); returns
    its NetworkSpec (``cbackprop.load`` builds the Network from it).

    It holds the parameters (bit for bit), ``classes_``, the target coding, ``history_``
    and ``n_iter_`` (if it was fitted), ``scaler_`` (a Scaler, or None) and ``info_``.
    path: a str, bytes or os.PathLike naming a regular file.
    Raises :class:`ModelFileError` for anything but a valid model file of a known format
    version (a FIFO or a device included), FileNotFoundError if there is no file.
    """
    path, f, zf, size = _open_zip(path)
    try:
        with f, zf:
            reader = _Reader(path, zf, size)
            if "metadata.npy" not in zf.namelist():
                raise ModelFileError(f"{path}: not a cbackprop model file (no metadata)")
            return _build(reader, _metadata(reader))
    except (ModelFileError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:      # zipfile and numpy fail in many ways on a damaged archive
        raise ModelFileError(f"{path}: cannot be read, the file is damaged "
                             f"({type(exc).__name__}: {exc})") from None


def read_metadata(path):
    """The JSON metadata of a model file, checked only for its format version."""
    path, f, zf, size = _open_zip(path)
    try:
        with f, zf:
            return _metadata(_Reader(path, zf, size))
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path}: not a cbackprop model file (not a zip archive)") from None
