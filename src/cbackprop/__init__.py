"""cbackprop: backpropagation for fully connected networks, compiled with Cython and BLAS."""
from cbackprop import reference
from cbackprop.gradcheck import check_gradients
from cbackprop.modelfile import ModelFileError
from cbackprop.network import Network
from cbackprop.preprocessing import Scaler
from cbackprop.training import ConvergenceWarning, TrainingInterrupted

from cbackprop._version import __version__

load = Network.load
__all__ = ["ConvergenceWarning", "ModelFileError", "Network", "Scaler", "TrainingInterrupted",
           "check_gradients", "load", "reference", "__version__"]
