"""Q-BERT's Hessian spectrum, measured in one run: the cost of one Hessian-vector product (HVP) relative to one
training step on the same batch, the HVPs each block needs to converge, the whole spectrum's time, for the
demo model and for a BERT-base-shaped random model on a small batch; the three ways to compute an HVP (double
backward, as aqbench.hessian.hvp does; double backward reusing one batch's gradient graph, as top_eigenvalue
does for one batch; forward-over-reverse, torch.func.jvp of torch.func.grad) with their largest difference; and,
if PyHessian is installed (`pip install pyhessian`), PyHessian's top eigenvalue and time for the same block.

    .venv/bin/python benchmarks/bench_qbert.py [--threads 1]

Random weights and random tokens (no hub, no data): the point is cost, not the eigenvalues' values.
"""

import argparse
import time

import torch
from timing import median_seconds

from aqbench.hessian import block_weights, hvp, reusing_graph_hvp, top_eigenvalue

SHAPES = {
    "demo (4 x 64)": (
        {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 256},
        16,
        64,
    ),
    "BERT-base shape (12 x 768)": (
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
        4,
        64,
    ),
}


def model_and_batch(arch, batch, length, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(
        BertConfig(vocab_size=1000, num_labels=2, attn_implementation="eager", **arch)
    )
    g = torch.Generator().manual_seed(seed)
    data = {
        "input_ids": torch.randint(5, 1000, (batch, length), generator=g),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch,), generator=g),
    }
    return model, data


def train_step(model, batch):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        model.train()
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def forward_over_reverse_hvp(model, batch, params, v):
    """H v by forward-mode differentiation of the reverse-mode gradient (torch.func.jvp of torch.func.grad)."""
    from torch.func import functional_call, grad, jvp

    names = {id(p): n for n, p in model.named_parameters()}
    keys = [names[id(p)] for p in params]
    rest = {n: p for n, p in model.named_parameters()}

    def loss(ps):
        return functional_call(model, {**rest, **dict(zip(keys, ps))}, kwargs=batch).loss

    return list(jvp(grad(loss), (tuple(p.detach() for p in params),), (tuple(v),))[1])


def only(model, params):
    """Make `params` the only parameters that require gradients (what a block's Hessian is about)."""
    for q in model.parameters():
        q.requires_grad_(False)
    for q in params:
        q.requires_grad_(True)


def pyhessian_top(model, batch, params, tol, max_iter):
    """PyHessian's top eigenvalue restricted to `params` (it uses the parameters that require grad)."""
    from pyhessian import hessian

    class Logits(torch.nn.Module):  # PyHessian calls model(inputs) and criterion(outputs, targets)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids):
            return self.inner(input_ids=ids, attention_mask=batch["attention_mask"]).logits

    only(model, params)
    h = hessian(
        Logits(model).eval(), torch.nn.CrossEntropyLoss(), data=(batch["input_ids"], batch["labels"]), cuda=False
    )
    start = time.perf_counter()
    eigenvalues, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
    return eigenvalues[0], time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--max-iter", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import pyhessian  # noqa: F401

        have_pyhessian = True
    except ImportError:
        have_pyhessian = False

    print(f"tol {args.tol}, at most {args.max_iter} iterations, {args.threads} thread(s); random weights and tokens\n")
    print("| model | batch | train step s | one HVP (block 0) s | HVP / step | HVPs per block | spectrum s |")
    print("|---|---|---|---|---|---|---|")
    side, ways = [], []
    for name, (arch, batch_size, length) in SHAPES.items():
        model, batch = model_and_batch(arch, batch_size, length)
        step = median_seconds(train_step(model, batch), 3)
        model.eval()
        blocks = block_weights(model)
        params = blocks[0][1]
        only(model, params)
        v = [torch.randn_like(q) for q in params]
        one = median_seconds(lambda: hvp(model, [batch], params, v), 3)
        reuse = reusing_graph_hvp(model, batch, params)
        reused = median_seconds(lambda: reuse(v), 3)
        fwd = median_seconds(lambda: forward_over_reverse_hvp(model, batch, params, v), 3)
        ref = hvp(model, [batch], params, v)
        diff = max(
            float((a - b).abs().max() / a.abs().max())
            for other in (forward_over_reverse_hvp(model, batch, params, v), reuse(v))
            for a, b in zip(ref, other)
        )
        ways.append((name, one, reused, fwd, diff))
        iters, start = [], time.perf_counter()
        for _, block_params in blocks:
            only(model, block_params)
            iters.append(
                top_eigenvalue(model, [batch], block_params, args.max_iter, args.tol, torch.Generator().manual_seed(0))[
                    1
                ]
            )
        total = time.perf_counter() - start
        print(
            f"| {name} | {batch_size} x {length} | {step:.3f} | {one:.3f} | {one / step:.2f} | "
            f"{', '.join(map(str, iters))} | {total:.1f} |"
        )
        if have_pyhessian:
            only(model, params)
            start = time.perf_counter()
            lam0, _ = top_eigenvalue(model, [batch], params, args.max_iter, args.tol, torch.Generator().manual_seed(0))
            ours_t = time.perf_counter() - start
            theirs, theirs_t = pyhessian_top(model, batch, params, args.tol, args.max_iter)
            side.append((name, lam0, ours_t, theirs, theirs_t))
    print(
        "\n| model | double backward s | reusing the gradient graph s | forward-over-reverse s | "
        "fwd-over-rev / double backward | largest relative difference |"
    )
    print("|---|---|---|---|---|---|")
    for name, one, reused, fwd, diff in ways:
        print(f"| {name} | {one:.3f} | {reused:.3f} | {fwd:.3f} | {fwd / one:.2f} | {diff:.1e} |")
    print()
    if have_pyhessian:
        print("| model | block 0: aqbench lambda | time s | PyHessian lambda | time s | PyHessian / aqbench time |")
        print("|---|---|---|---|---|---|")
        for name, lam, t, their, tt in side:
            print(f"| {name} | {lam:.5g} | {t:.2f} | {their:.5g} | {tt:.2f} | {tt / t:.2f} |")
    else:
        print("PyHessian is not installed: `.venv/bin/pip install pyhessian` adds the side-by-side comparison.")


if __name__ == "__main__":
    main()
