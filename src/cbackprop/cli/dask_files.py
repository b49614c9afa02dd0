"""Data files read through Dask (`pip install "cbackprop[dask]"`): several CSV files
named by a glob pattern ("data/part-*.csv"), Parquet files or folders, or any data file
with --dask. The features and target come back as Dask arrays in a Data record, so that
`cbackprop train` fits on the cluster (cbackprop.cluster), never pulling X to the client."""
import glob
import os

from cbackprop.cli.data import INDEX_NAMES, Data
from cbackprop.cli.report import CLIError, note

PARQUET = (".parquet", ".pq")


def wanted(path, dask_option):
    """Whether DATA is read through Dask: --dask given, a glob pattern or Parquet."""
    return (dask_option is not None or any(c in path for c in "*?[")
            or path.lower().endswith(PARQUET)
            or (os.path.isdir(path) and bool(glob.glob(os.path.join(path, "*.parquet")))))


def _frame(path):
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise CLIError(f"{path}: reading files through Dask needs dask ({exc.name} is "
                       "missing): pip install 'cbackprop[dask]'") from None
    parquet = path.lower().endswith(PARQUET) or os.path.isdir(path)
    if not parquet and not glob.glob(path):
        raise CLIError(f"{path}: no file matches")
    try:
        return dd.read_parquet(path) if parquet else dd.read_csv(path, sample=1 << 20)
    except (OSError, ValueError, ImportError) as exc:
        raise CLIError(f"{path}: cannot be read through Dask ({type(exc).__name__}: {exc})") \
            from None


def _column(path, columns, name, what):
    """A column's name from a name or a 0-based index (as the CSV reader takes them)."""
    if name in columns:
        return name
    text = str(name).strip()
    if text.lstrip("-").isdigit() and -len(columns) <= int(text) < len(columns):
        return columns[int(text)]
    raise CLIError(f"{path}: {what} {name!r} is not a column (columns: "
                   f"{', '.join(map(str, columns[:10]))}{', ...' if len(columns) > 10 else ''})")


def read(path, target, drop=()):
    """A Data of Dask arrays: X (float64, the feature columns), y (the target)."""
    if target is None:
        raise CLIError("--target COLUMN is needed: name the column to predict")
    frame = _frame(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    t = _column(path, columns, target, "the target")
    dropped = {_column(path, columns, d, "--drop") for d in drop}
    if columns[0] in INDEX_NAMES and columns[0] != t and columns[0] not in dropped:
        dropped.add(columns[0])
        note(f"{path}: the first column (named {columns[0]!r}) looks like pandas' index: left "
             "out of the features (give it a name to keep it)")
    features = [c for c in columns if c != t and c not in dropped]
    if not features:
        raise CLIError(f"{path}: no feature columns left besides the target")
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    text = [c for c in features if not (is_numeric_dtype(frame[c].dtype)
                                        or is_bool_dtype(frame[c].dtype))]
    if text:
        raise CLIError(f"{path}: feature column(s) {text[:5]} hold text; drop them (--drop) "
                       "or encode them as numbers first")
    X = frame[features].astype("float64").to_dask_array(lengths=True)
    target_column = frame[t]
    if not is_numeric_dtype(target_column.dtype):
        target_column = target_column.astype(object)     # text labels as Python strings
    y = target_column.to_dask_array(lengths=True)
    kind = "parquet" if path.lower().endswith(PARQUET) or os.path.isdir(path) else "csv"
    return Data(path, X, y, features, t, kind, len(columns))
