"""cbackprop: backpropagation for fully connected networks, compiled with Cython and BLAS."""
from cbackprop import blocks, cluster, export, reference, sources
from cbackprop.blocks import BlockSums, block_sums, tree_sum
from cbackprop.gradcheck import check_gradients
from cbackprop.lr_range import LRFind, lr_find
from cbackprop.modelfile import ModelFileError
from cbackprop.network import Network
from cbackprop.preprocessing import Scaler
from cbackprop.training import ConvergenceWarning, DivergenceError, TrainingInterrupted

from cbackprop._version import __version__

load = Network.load
__all__ = ["BlockSums", "ConvergenceWarning", "DivergenceError", "LRFind", "ModelFileError",
           "Network", "Scaler", "TrainingInterrupted", "block_sums", "blocks",
           "check_gradients", "cluster", "export", "load", "lr_find", "reference", "sources",
           "tree_sum", "__version__"]
