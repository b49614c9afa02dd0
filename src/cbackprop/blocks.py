"""The block as the unit of work: the sums one block of rows contributes to the cost and
its gradient, and how blocks add up.

J = (1/W) sum_i w_i loss_i + lam/(2W) sum W^2 (docs/design.md, "The math") is a sum
over rows, divided by the total weight W, plus a term of the parameters alone. So a
block of rows contributes three sums: of the weighted losses, of the weighted
gradients (the flat parameter layout), and of the weights. Sums of blocks add up in
any grouping; whoever holds the total weight adds the regularization once
(`objective`). Data out of memory (cbackprop.sources) and on a Dask cluster
(cbackprop.cluster) are both built on this.

`tree_sum` adds in a fixed pairwise tree in the blocks' order, so the bits of a total
depend on how the rows were cut into blocks, never on who computed which block.
"""
from dataclasses import dataclass

import numpy as np

from cbackprop import _validation as v
from cbackprop._core import core

BLOCK_ROWS = 256                 # rows a kernel block (Network's; the time hardly depends on it)


@dataclass(frozen=True)
class BlockSums:
    """What one block of rows (or several, added) contributes to J and its gradient.

    loss: sum_i w_i loss_i; grad: sum_i w_i dloss_i/dparams in the flat parameter layout
    (None when only the cost was asked for); weight: sum_i w_i; rows: the number of rows.
    """
    loss: float
    grad: object
    weight: float
    rows: int

    def __add__(self, other):
        if not isinstance(other, BlockSums):
            return NotImplemented
        if (self.grad is None) != (other.grad is None):
            raise ValueError("cannot add block sums with and without a gradient")
        grad = None if self.grad is None else self.grad + other.grad
        return BlockSums(self.loss + other.loss, grad, self.weight + other.weight,
                         self.rows + other.rows)


def kernel_block_rows(m):
    """Rows a kernel block for m rows on one thread: even blocks of at most BLOCK_ROWS."""
    if m <= 0:
        return 1
    blocks = -(-m // BLOCK_ROWS)
    return -(-m // blocks)


def layout_sums(layout, X, Y, w, params, want_grad=True, n_threads=1):
    """block_sums on arrays already checked (C-contiguous, the parameters' dtype, finite,
    shapes matching layout): the compiled core's sums, without the GIL. The kernel's
    blocks and threads are fixed by the rows and n_threads alone, so the same block gives
    the same bits wherever it runs."""
    grad = np.zeros(params.size if want_grad else 0, dtype=params.dtype)
    m = X.shape[0]
    loss = core.cost_grad(layout, X, Y, w, params, grad, 1.0, 0.0, kernel_block_rows(m),
                          n_threads)
    weight = float(w.sum(dtype=np.float64)) if w.size else float(m)
    return BlockSums(float(loss), grad if want_grad else None, weight, int(m))


def block_sums(net, X, Y, sample_weight=None, params=None, want_grad=True, n_threads=1):
    """The sums one block of rows contributes to J: a `BlockSums` of the weighted loss, the
    weighted gradient (flat, laid out as ``net.params``) and the weight, unnormalized and
    unregularized, so that blocks add up in any grouping (``tree_sum``) and
    ``objective(net, total, lam)`` gives J and its gradient.

    X: (m, n_inputs); Y: the target matrix (m, n_outputs) as the kernels take it (one-hot
    for labels); params: a flat vector like ``net.params`` (default: the network's own).
    The compiled core runs without the GIL: blocks can be summed from several threads.
    """
    params = net.params if params is None else v.as_vector("params", params, net.dtype,
                                                             net.params.size)
    X = net._check_X(X)
    Y = v.check_targets(Y, X.shape[0], net.layer_sizes[-1], net.loss, net.dtype)
    w = v.check_sample_weight(sample_weight, X.shape[0], net.dtype, allow_zero_sum=True)
    return layout_sums(net._layout, X, Y, w, params, bool(want_grad), n_threads)


def tree_sum(sums):
    """The total of a sequence of BlockSums, added pairwise in a fixed tree in their order:
    ((s0 + s1) + (s2 + s3)) + ... The bits depend on the sequence only."""
    sums = list(sums)
    if not sums:
        raise ValueError("tree_sum needs at least one block")
    while len(sums) > 1:
        sums = [sums[k] + sums[k + 1] if k + 1 < len(sums) else sums[k]
                for k in range(0, len(sums), 2)]
    return sums[0]


def weight_mask(net):
    """True where the flat parameter vector holds a weight, False at the bias columns."""
    mask = np.ones(net.params.size, dtype=bool)
    for part in net.split(mask):
        part[:, 0] = False
    return mask


def objective(net, total, lam=0.0, params=None, mask=None):
    """(J, gradient) from the total of all blocks: the losses over the total weight W, plus
    lam/(2W) sum W^2 (bias excluded); the gradient likewise (None when total has none).
    mask: ``weight_mask(net)``, when called often."""
    params = net.params if params is None else params
    lam = v.check_lam(lam)
    if not total.weight > 0:
        raise ValueError(f"the total sample weight must be > 0; got {total.weight}")
    reg = lam / total.weight
    J = total.loss / total.weight + core.reg_cost(net._layout, params, reg)
    if total.grad is None:
        return J, None
    dtype = params.dtype.type
    grad = total.grad * dtype(1.0 / total.weight)
    if reg:
        mask = weight_mask(net) if mask is None else mask
        grad[mask] += dtype(reg) * params[mask]
    return J, grad
