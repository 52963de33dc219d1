"""The PyTorch run's own float sensitivity: its outputs when every Linear input is perturbed by about what a
second implementation's summation order changes (a relative NOISE per element, seeded).

With 8-bit activations a last-place difference in front of a round() moves a value by a whole step, and on a
deep pretrained model those flips cascade: measured on all-MiniLM-L6-v2 fine-tuned on SST-2 (LQ w8, 8-bit
activations), ONNX Runtime's logits differed from PyTorch's by up to 0.62, one block at a time from 3e-6 after
block 0 to 75% of the elements after block 5, while PyTorch alone with a relative 1e-7 perturbation of its
embeddings' output moved by the same 0.62. The perturbed copy is the yardstick aqbench.deploy.parity measures
ORT's differences against, instead of a fixed fraction of the outputs' scale.
"""

NOISE = 1e-6  # relative, per element: a K-term float32 dot product summed in another order moves ~sqrt(K) ulps


def perturbed_predict(model, features, batch_size, pad_id, noise=NOISE, seed=0, desc="perturbed"):
    """aqbench.prediction.predict (batched by length, as the export's reference) with every nn.Linear and
    QuantLinear input multiplied by 1 + noise * N(0, 1), drawn from a generator seeded with `seed`."""
    import torch
    from torch import nn

    from aqbench.prediction import predict
    from aqbench.quant.modules import QuantLinear

    generator = torch.Generator().manual_seed(seed)

    def jitter(module, args):
        x = args[0]
        factor = 1 + noise * torch.randn(x.shape, generator=generator, dtype=torch.float32)
        return (x * factor.to(x.device, x.dtype), *args[1:])

    handles = [m.register_forward_pre_hook(jitter) for m in model.modules() if isinstance(m, (nn.Linear, QuantLinear))]
    try:
        return predict(model, features, batch_size, pad_id, "cpu", desc=desc, sort=True)
    finally:
        for handle in handles:
            handle.remove()
