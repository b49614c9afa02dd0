"""NetworkSpec: a network described in plain values.

The model file and the importers (scikit-learn's MLP, PyTorch state dicts, the course's .mat)
read what they are given into a NetworkSpec, and the network builds itself from it
(Network's from_* methods and load); saving and exporting read a Network's public
attributes. So those modules sit below network.py and never import it.
"""
from dataclasses import dataclass, field

from cbackprop._targets import TargetCoding


@dataclass
class NetworkSpec:
    thetas: list                         # Theta(1), Theta(2), ...: bias in column 0
    activation: object = "sigmoid"       # a name, or one per hidden layer
    output: str = "sigmoid"
    loss: str = "cross_entropy"
    dtype: object = None                 # None: float32 if every Theta is, else float64
    classes: object = None               # class labels, one per output unit (or 2 for one)
    target_coding: TargetCoding = field(default_factory=TargetCoding)
    history: object = None               # fit's history_ (a dict of lists) and n_iter_
    n_iter: int = 0
    scaler: object = None                # a preprocessing.Scaler, or None
    info: dict = field(default_factory=dict)
    estimator: object = None             # a saved estimator's state (modelfile), or None
