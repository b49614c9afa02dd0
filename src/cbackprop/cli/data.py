"""The files the commands read and write: data files (a CSV with a header row, a .npy
matrix, a .npz archive) read into a Data record, the task a target asks for, and the
checks on a path before any work is done with it."""
import csv
import os

import numpy as np

from cbackprop.cli.report import CLIError, note, shortened

MAX_CLASSES_INFERRED = 20          # an integer target with at most this many values is labels
INDEX_NAMES = ("", "Unnamed: 0")   # pandas' to_csv writes its index under '', read_csv names it


class Data:
    """Features X (float64, m x n), target y (or None), and where they came from."""

    def __init__(self, path, X, y, features, target, kind, n_columns):
        self.path, self.X, self.y = path, X, y
        self.features, self.target = features, target     # names (CSV) or None; name/index
        self.kind, self.n_columns = kind, n_columns

    def distinct(self):
        """What tells the task and the classes: y itself, or the distinct values of a Dask
        y (computed where its partitions are)."""
        from cbackprop import cluster
        return cluster.unique_labels(self.y) if cluster.is_dask(self.y) else self.y


def data_kind(path):
    """'npy', 'npz' or 'csv' (every other name, .tsv included), by the file's suffix."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".npy", ".npz"):
        return ext[1:]
    return "csv"


def check_exists(path):
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a data file")


def check_writable(path, suffixes=None):
    """Fail before the work, not after it: the folder of path must exist, path must not be
    a folder, and (for a picture) its suffix must be one matplotlib writes."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{path}: no such folder to write into ({folder})")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a folder, not a file to write")
    if suffixes and os.path.splitext(path)[1].lower() not in suffixes:
        raise CLIError(f"{path}: the picture must end in one of {', '.join(suffixes)}")


def read_data(path, target=None, need_target=True, features=None, drop=()):
    """A Data from a CSV file (with a header row), a .npy matrix or a .npz archive.

    target: the column (CSV name or index, .npy index) or array (.npz) to predict; None
    with need_target=False reads features only. features: the CSV columns to take as
    features, by name (a model's); default every column but the target and drop."""
    check_exists(path)
    kind = data_kind(path)
    if kind == "csv":
        return _read_csv(path, target, features, drop, need_target)
    if drop:
        raise CLIError("--drop applies to CSV files (name columns in the header)")
    if kind == "npy":
        return _read_npy(path, target, need_target)
    return _read_npz(path, target, need_target)


def infer_task(y):
    """'classification' for text labels or integer values with few distinct values."""
    if y.dtype.kind not in "biuf":
        return "classification"
    values = np.unique(y)
    if np.all(np.mod(values, 1) == 0) and len(values) <= MAX_CLASSES_INFERRED:
        return "classification"
    return "regression"


def as_labels(y):
    """Integer-valued numbers as int64 labels (so that '3' prints as 3, not 3.0)."""
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0) and np.abs(y).max() < 2**53:
        return y.astype(np.int64)
    return y


def _finite_matrix(path, X, names, lines=None):
    """Refuse NaN and inf, naming the first bad cell (by CSV line, or by row from 0)."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"line {lines[row]}" if lines else f"row {row}"
        what = f"column {names[col]!r}" if names else f"column {col}"
        raise CLIError(f"{path}: {where}, {what} is {X[row, col]}: NaN and inf are not allowed "
                       "(remove or impute missing values first)")
    return X


# ------------------------------------------------------------------------------------ CSV


def _csv_table(path):
    """(header, rows, the file's line number of each row): blank lines skipped, every row
    as long as the header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CLIError(f"{path}: empty file: a CSV needs a header row of column names")
        header = [h.strip() for h in header]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue                                   # blank line
            if len(row) != len(header):
                raise CLIError(f"{path}: line {reader.line_num} has {len(row)} fields but the "
                               f"header has {len(header)} (a bad CSV file?)")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise CLIError(f"{path}: bad CSV at line {reader.line_num}: {exc}") from None
    if len(set(header)) != len(header):
        seen, dup = set(), set()
        for h in header:
            (dup if h in seen else seen).add(h)
        dup = sorted(dup)
        raise CLIError(f"{path}: duplicate column names {dup}")
    if not rows:
        raise CLIError(f"{path}: no data rows after the header")
    return header, rows, lines


def _positions(header):
    """{column name: index}, built once: lookups by name are then O(1), not a scan of the
    header each (a CSV of 10^5 columns made them quadratic)."""
    return {h: j for j, h in enumerate(header)}


def _csv_column(path, header, name, what, positions=None):
    """The index of a column given by name, or by index (negative from the end)."""
    positions = _positions(header) if positions is None else positions
    if name in positions:
        return positions[name]
    if name.startswith("Unnamed: ") and name[9:].isdigit():      # pandas' name of a '' column
        j = int(name[9:])
        if j < len(header) and header[j] == "":
            return j
    try:
        index = int(name)
    except (TypeError, ValueError):
        index = None
    if index is not None and -len(header) <= index < len(header):
        return index % len(header)
    raise CLIError(f"{path}: no {what} column {name!r}; the columns are: {shortened(header, 20)}")


def _csv_features(path, cells, names, lines):
    """The feature cells as a float64 matrix; an error naming the first cell that is not a
    number."""
    try:
        X = np.array(cells, dtype=np.float64)
    except ValueError:
        for r, row in enumerate(cells):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "is empty" if not cell.strip() else f"is {cell!r}, not a number"
                    raise CLIError(f"{path}: line {lines[r]}, column {names[j]!r} {what} "
                                   "(features must be numbers: encode or drop that column, "
                                   "impute missing values)") from None
        raise
    return _finite_matrix(path, X, names, lines)


def _integers(cells):
    """The cells as int64 if every one is an integer, else None: labels beyond 2**53 stay
    exact (as floats, 2**53 + 1 would become 2**53 and merge two classes)."""
    try:
        return np.array(cells).astype(np.int64)
    except (ValueError, OverflowError):
        return None


def _index_column(path, header, rows, target):
    """Whether the first column is pandas' index (df.to_csv without index=False): unnamed,
    not the target, and holding increasing integers from 0 (0..n-1 unless rows were
    filtered out)."""
    if header[0] not in INDEX_NAMES or target == 0 or len(header) < 2:
        return False
    values = _integers([row[0].strip() for row in rows])
    return (values is not None and values[0] >= 0
            and bool(np.all(np.diff(values) > 0)))


def _csv_target(path, raw, name, lines):
    """The target column: integers as int64 and other numbers as float64 when every cell
    is one, else text labels."""
    for r, cell in enumerate(raw):
        if not cell:
            raise CLIError(f"{path}: line {lines[r]}: the target {name!r} is missing")
    y = _integers(raw)
    if y is not None:
        return y
    try:
        y = np.array(raw, dtype=np.float64)
    except ValueError:
        return np.array(raw)                               # text labels
    bad = ~np.isfinite(y)
    if bad.any():
        r = int(np.argmax(bad))
        raise CLIError(f"{path}: line {lines[r]}: the target {name!r} is {raw[r]!r}; "
                       "NaN and inf are not allowed")
    return y


def _read_csv(path, target, features, drop, need_target):
    header, rows, lines = _csv_table(path)
    positions = _positions(header)
    t = _csv_column(path, header, target, "target", positions) if target is not None else None
    if t is None and need_target:
        raise CLIError("--target COLUMN is needed: name the column to predict")
    if features is not None:
        missing = [n for n in features if n not in positions]
        if missing:
            raise CLIError(f"{path}: the model's feature column(s) {missing[:5]} are missing")
        cols = [positions[n] for n in features]
    else:
        dropped = {_csv_column(path, header, n, "--drop", positions) for n in drop}
        if 0 not in dropped and _index_column(path, header, rows, t):
            dropped.add(0)
            note(f"{path}: the first column (named {header[0]!r}, integers from "
                 f"{rows[0][0].strip()} up) looks like pandas' index: left out of the features "
                 "(to keep it, give it a name in the header; df.to_csv(index=False) writes none)")
        cols = [j for j in range(len(header)) if j != t and j not in dropped]
        if not cols:
            raise CLIError(f"{path}: no feature columns left besides the target")
    names = [header[j] for j in cols]
    X = _csv_features(path, [[row[j] for j in cols] for row in rows], names, lines)
    if t is None:
        return Data(path, X, None, names, None, "csv", len(header))
    y = _csv_target(path, [row[t].strip() for row in rows], header[t], lines)
    return Data(path, X, y, names, header[t], "csv", len(header))


# ---------------------------------------------------------------------------- .npy, .npz


def _numeric(path, arr, what):
    if arr.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} must hold numbers; got dtype {arr.dtype}")
    return arr


def _read_npy(path, target, need_target):
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read this .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or 0 in arr.shape:
        raise CLIError(f"{path}: a .npy data file must hold one non-empty 2-D array (samples x "
                       f"columns); got shape {getattr(arr, 'shape', None)}")
    _numeric(path, arr, "the array")
    n_cols = arr.shape[1]
    if target is None and not need_target:          # every column a feature
        X = _finite_matrix(path, arr.astype(np.float64), None)
        return Data(path, X, None, None, None, "npy", n_cols)
    try:
        t = -1 if target is None else int(target)
    except (TypeError, ValueError):
        raise CLIError(f"for .npy data --target is a column index (default -1, the last "
                       f"column); got {target!r}") from None
    if not -n_cols <= t < n_cols:
        raise CLIError(f"{path}: no column {t}; the array has {n_cols} columns")
    t %= n_cols
    X = np.delete(arr, t, axis=1).astype(np.float64)
    y = arr[:, t] if arr.dtype.kind in "biu" else arr[:, t].astype(np.float64)   # ints exact
    _finite_matrix(path, np.column_stack([X, y]), None)
    return Data(path, X, y, None, t, "npy", n_cols)


def _read_npz(path, target, need_target):
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read this .npz file ({exc})") from None
    except Exception as exc:                       # zipfile's errors for a damaged archive
        raise CLIError(f"{path}: not a readable .npz file ({exc})") from None
    y_name = target if target is not None else "y"
    if target is not None and y_name not in arrays:
        raise CLIError(f"{path}: no array {y_name!r}; the file holds {sorted(arrays)}")
    others = [k for k in arrays if k != y_name]
    x_name = "X" if "X" in arrays else (others[0] if len(others) == 1 else None)
    if x_name is None:
        raise CLIError(f"{path}: a .npz data file needs arrays 'X' and 'y' (or --target NAME); "
                       f"it holds {sorted(arrays)}")
    X = _numeric(path, arrays[x_name], f"the array {x_name!r}")
    if X.ndim != 2 or 0 in X.shape:
        raise CLIError(f"{path}: {x_name!r} must be a non-empty 2-D array; got shape {X.shape}")
    X = _finite_matrix(path, X.astype(np.float64), None)
    y = arrays.get(y_name)
    if y is None:
        if need_target:
            raise CLIError(f"{path}: no target array 'y'; name it with --target (the file holds "
                           f"{sorted(arrays)})")
    else:
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise CLIError(f"{path}: {y_name!r} must be 1-D with one value per row of "
                           f"{x_name!r} ({X.shape[0]}); got shape {y.shape}")
        if y.dtype.kind not in "biufU":
            raise CLIError(f"{path}: {y_name!r} must hold numbers or text; got dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise CLIError(f"{path}: {y_name!r} contains NaN or inf")
    return Data(path, X, y, None, y_name if y is not None else None, "npz", X.shape[1])
