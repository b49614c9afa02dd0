"""Deployment: a trained Network or estimator as an ONNX model (``to_onnx``, with onnx
installed: ``pip install "cbackprop[onnx]"``) or as one dependency-free C99 header
(``to_c``). Both compute what ``predict`` and ``predict_proba`` do, the Network's feature
scaling (``scaler_``) included; ``cbackprop export`` writes them from a model file."""
from cbackprop.export._c import check_c_name, to_c
from cbackprop.export._model import ExportError
from cbackprop.export._onnx import to_onnx

__all__ = ["ExportError", "check_c_name", "to_c", "to_onnx"]
