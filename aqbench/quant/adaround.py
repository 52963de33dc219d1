"""AdaRound (Nagel, Amjad, van Baalen, Louizos, Blankevoort, "Up or Down? Adaptive Rounding for Post-Training
Quantization", ICML 2020) on the suite's grid.

Each weight is rounded down or up from its position on its row's grid: W_hat = s (floor(W / s) + h(V)) (+ lo),
h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1) the rectified sigmoid (zeta = 1.1, gamma = -0.1). V is
learned to minimise the layer's output reconstruction on its calibration inputs,
    ||X W_hat^T - X W^T||^2 / ||X W_near^T - X W^T||^2 + lambda mean(1 - |2 h(V) - 1|^beta),
the regulariser pushing every h to 0 or 1 as beta anneals from 20 to 2 after a warm-up without it (the
paper's schedule). The paper sums both terms (lambda = 0.01), so their balance depends on the layer's scale and
size: here the reconstruction is relative to round-to-nearest's (W_near) and the regulariser a mean, so one
lambda (1.0) serves every layer. On synthetic layers lambda = 0.01 in this form left ~80% of the variables soft
and gained little over nearest; 1.0 came close to GPTQ at 3-4 bits (tests/test_modern_ptq.py). V starts where W_hat = W (h = the fractional part). At the end h is made hard: rounded up
where h >= 0.5, down otherwise, so every weight lands on one of its two neighbouring grid points.
"""

import torch

from aqbench.quant.rounding import RowGrid

ZETA, GAMMA = 1.1, -0.1


def rectified_sigmoid(v):
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def initial_v(rest):
    """V with h(V) = rest (the fractional part of each weight's grid position)."""
    p = ((rest - GAMMA) / (ZETA - GAMMA)).clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p))


def beta_at(step, iters, warmup, start=20.0, end=2.0):
    """The regulariser's exponent: None during warm-up (no regulariser), then linear from start to end."""
    first = int(warmup * iters)
    if step < first:
        return None
    return start + (end - start) * (step - first) / max(iters - first, 1)


def adaround_weight(w, x, bits, grid, iters, lr=0.03, reg_weight=1.0, warmup=0.2, batch_rows=512, seed=0,
                    lo=None, hi=None):  # fmt: skip
    """(W_hat, floor position, up, soft share) for weight w (rows, cols) and calibration inputs x (n, cols): the
    AdaRound weight, each weight's lower grid point (in steps), whether it was rounded up (0/1), and the share of
    rounding variables still strictly between 0 and 1 before they were made hard (0 = converged)."""
    w = w.detach().float()
    x = x.detach().float()
    rg = RowGrid.of(w, bits, grid, lo, hi)
    pos = rg.position(w)
    base = torch.floor(pos)
    v = initial_v(pos - base).requires_grad_(True)
    nearest = reconstruction(x, w, rg.nearest(w)).clamp_min(1e-30)
    opt = torch.optim.Adam([v], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for step in range(iters):
            xb = x[torch.randint(0, x.shape[0], (min(batch_rows, x.shape[0]),), generator=gen)]
            w_soft = rg.value(base + rectified_sigmoid(v), w)
            loss = reconstruction(xb, w, w_soft) / nearest
            beta = beta_at(step, iters, warmup)
            if beta is not None:
                loss = loss + reg_weight * (1 - (2 * rectified_sigmoid(v) - 1).abs().pow(beta)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    up = (v.detach() >= 0).float()  # h(V) >= 0.5 exactly where V >= 0
    return rg.value(base + up, w), base, up, soft_share(v.detach())


def reconstruction(x, w, w_hat):
    """||X W_hat^T - X W^T||^2 summed over outputs, averaged over the tokens of x."""
    return (x @ (w_hat - w).T).pow(2).sum(1).mean()


def soft_share(v):
    """The share of rounding variables not yet 0 or 1 (a convergence measure: 0 when all are hard)."""
    h = rectified_sigmoid(v)
    return float(((h > 0) & (h < 1)).float().mean())
