"""GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers", ICLR 2023) on the suite's grid.

For one Linear with weight W (rows = output neurons) and the Hessian H = 2 X^T X of its calibration inputs, the
columns are quantized in order; the error each column's rounding leaves is spread over the columns not yet
quantized through the inverse Hessian (the Optimal Brain Surgeon update), so the layer's output error
||X W_hat^T - X W^T||^2 is what the rounding minimises, not the weights' own error. As the paper: the inverse
via the Cholesky factor of (H + damping I), damping = percdamp x mean(diag H); lazy updates in blocks of columns;
columns never seen (diag H = 0) are zeroed; optionally columns in order of decreasing diag H (act-order).

The grid is fixed before the columns are processed: each group of rows keeps the range the quantizer gives it
(min-max of the original weights, or the ranges passed in), so the result is on the same grid as every other
method's and any per-group bit assignment (mixed, pruned) works. With H = I no error is spread and the result
is round-to-nearest exactly (a test checks).
"""

import torch

from aqbench.quant.rounding import RowGrid


@torch.no_grad()
def gptq_weight(w, h, bits, grid, lo=None, hi=None, percdamp=0.01, block_size=128, act_order=False):
    """The GPTQ-rounded weight (on the grid of w's groups at `bits`), same shape and dtype as w."""
    w0 = w.detach()
    W = w0.clone().double()
    H = h.clone().double()
    rg = RowGrid.of(w0.double(), bits, grid, None if lo is None else lo.double(), None if hi is None else hi.double())
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(cols)
    W, H = W[:, perm], H[perm][:, perm]
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=H.dtype)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1, h1 = W[:, i1:i2].clone(), hinv[i1:i2, i1:i2]
        err = torch.zeros_like(W1)
        for i in range(i2 - i1):
            col = W1[:, i : i + 1]
            q = rg.value(torch.round(rg.position(col)), col)
            Q[:, i1 + i] = q[:, 0]
            e = (col - q) / h1[i, i]
            W1[:, i:] -= e @ h1[i : i + 1, i:]
            err[:, i] = e[:, 0]
        W[:, i2:] -= err @ hinv[i1:i2, i2:]
    Q = Q[:, torch.argsort(perm)]
    return Q.to(w0.dtype)


def output_error(h, w, w_hat):
    """The layer's squared output error per token, ||X W_hat^T - X W^T||^2 / n = tr(D H D^T) / 2 with
    D = W_hat - W and H = 2 X^T X / n (the bias cancels)."""
    d = w_hat.double() - w.double()
    return float(((d @ h.double()) * d).sum() / 2)
