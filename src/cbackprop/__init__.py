"""cbackprop: backpropagation for fully connected networks, compiled with Cython and BLAS."""
from cbackprop import reference
from cbackprop.gradcheck import check_gradients
from cbackprop.io import ModelFileError, load
from cbackprop.network import Network
from cbackprop.training import ConvergenceWarning, TrainingInterrupted

__version__ = "0.1.0"
__all__ = ["ConvergenceWarning", "ModelFileError", "Network", "TrainingInterrupted",
           "check_gradients", "load", "reference", "__version__"]
