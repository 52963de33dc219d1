"""Where and in what precision a model runs: train.device (auto, cpu, cuda) and train.mixed_precision (bf16)."""

import torch

from aqbench.errors import AqbenchError


def pick_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AqbenchError("train.device is 'cuda' but no CUDA GPU is visible. Fix: set train.device: auto or cpu")
    return torch.device(name)


def uses_bf16(device, mixed_precision):
    """train.mixed_precision: bf16 autocast on a CUDA device only; CPU runs stay in fp32 whatever the setting."""
    return mixed_precision == "bf16" and device.type == "cuda"


def autocast(device, mixed_precision):
    """The forward pass's precision context. bf16 needs no loss scaling (fp16 would); the weights, their
    gradients and the optimizer state stay fp32. Quantized layers compute in fp32 (aqbench.quant.modules)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, mixed_precision))
