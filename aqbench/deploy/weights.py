"""A quantized layer's integers laid out for ONNX Runtime's kernels, and read back.

The packed file stores, per row n of a Linear, integer codes q[n, k] and the grid's step s[n] and minimum
lo[n] (weight = q * s + lo; aqbench.export.decode_codes). ORT's kernels want other layouts:

- MatMulNBits (com.microsoft): codes of one width b in {2, 4, 8} as bytes [N, K blocks, block * b / 8], low
  bits first along K (the packed file's own bit order, row by row, each row padded to whole blocks), a scale
  and a zero point per block (every block of a row gets the row's scale: our groups are rows, its blocks run
  along K). Weight = (q - z) * s.
- MatMulIntegerToFloat (com.microsoft): uint8 codes [K, N] with a uint8 zero point per column.

The offset the kernels cannot hold (lo, or what an integer zero point leaves of it) is added after the
product as rowsum(x) * offset[n] (aqbench.deploy.graph). Widths ORT cannot run (3; 5 to 7) are stored at the
next width it runs (4; 8) with the same codes, so the grid values are the same.
"""

import numpy as np
import torch

from aqbench.quant.pack import pack, unpack

NBITS_WIDTHS = (2, 4, 8)  # what MatMulNBits runs ("Only 2b, 4b and 8b quantization is supported")
MAX_BLOCK = 128  # the fastest block length measured for one scale per row (benchmarks/bench_onnx.py)


def stored_bits(bits, min_bits=2):
    """The width ORT holds a `bits`-bit group at: the smallest runnable width at or above bits and min_bits."""
    for width in NBITS_WIDTHS:
        if width >= max(bits, min_bits):
            return width
    raise ValueError(f"{bits}-bit weights cannot be stored for ONNX Runtime (at most 8 bits)")


def block_size(k):
    """MatMulNBits' block length along K (a power of two from 16 to MAX_BLOCK): the longest that pads K by at most
    an eighth (OCS's split channels make K odd: 776 takes 64, not 128 with 15% of padding), else the one that
    pads least. Long blocks are faster (fewer scales to apply), padding is work for nothing."""
    sizes = [b for b in (128, 64, 32, 16) if b <= MAX_BLOCK]
    padded = lambda b: -(-k // b) * b
    for b in sizes:
        if padded(b) - k <= k / 8:
            return b
    return min(sizes, key=lambda b: (padded(b), -b))


def _pack_rows(values, bits):
    """Each row of an integer matrix packed at `bits` bits, low bits first; rows must fill whole bytes."""
    values = torch.as_tensor(values, dtype=torch.int64)
    rows, length = values.shape
    assert (length * bits) % 8 == 0, "each row must fill whole bytes"
    return pack(values.reshape(-1), bits).numpy().reshape(rows, length * bits // 8)


def nbits_blocks(codes, bits, block):
    """MatMulNBits' B input: codes [N, K] (integers in [0, 2^bits - 1]) as uint8 [N, K blocks, block*bits/8]."""
    codes = torch.as_tensor(codes, dtype=torch.int64)
    n, k = codes.shape
    blocks = -(-k // block)
    padded = torch.zeros((n, blocks * block), dtype=torch.int64)
    padded[:, :k] = codes
    return _pack_rows(padded, bits).reshape(n, blocks, block * bits // 8)


def nbits_codes(b_input, bits, k):
    """The codes [N, K] that nbits_blocks laid out: the inverse, for checks and tests."""
    b_input = np.asarray(b_input, dtype=np.uint8)
    n = b_input.shape[0]
    per_row = b_input.shape[1] * b_input.shape[2] * 8 // bits
    codes = unpack(torch.from_numpy(b_input.reshape(-1).copy()), bits, n * per_row).reshape(n, per_row)
    return codes[:, :k]


def nbits_zero_points(zero, bits, blocks):
    """MatMulNBits' uint8 zero points: one per block (the row's zero point in every block), packed at `bits`
    bits with each row padded to a whole byte, as [N, ceil(blocks * bits / 8)]."""
    zero = torch.as_tensor(zero, dtype=torch.int64).reshape(-1, 1).expand(-1, blocks)
    per_byte = 8 // bits
    width = -(-blocks // per_byte) * per_byte
    padded = torch.zeros((zero.shape[0], width), dtype=torch.int64)
    padded[:, :blocks] = zero
    return _pack_rows(padded, bits)


def nbits_zero_values(zero_points, bits, blocks):
    """The per-block zero points that nbits_zero_points packed: [N, blocks]."""
    zero_points = np.asarray(zero_points, dtype=np.uint8)
    n, width = zero_points.shape
    values = unpack(torch.from_numpy(zero_points.reshape(-1).copy()), bits, n * width * 8 // bits)
    return values.reshape(n, -1)[:, :blocks]


def centered_zero(lo, scale, bits):
    """An integer zero point per row that keeps the kernels' integers centred, and what it leaves of the offset:
    q * s + lo = (q - z) * s + r with z = round(-lo / s) in [0, 2^bits - 1] and r = lo + z * s (on the symmetric
    grid z = 2^(bits-1) - 1 and r is float rounding only). Pruned rows (s = 0) get z = 0, r = 0."""
    lo = torch.as_tensor(lo, dtype=torch.float32)
    scale = torch.as_tensor(scale, dtype=torch.float32)
    top = torch.as_tensor(2 ** torch.as_tensor(bits) - 1, dtype=torch.float32)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = torch.where(scale > 0, torch.minimum(torch.round(-lo / safe).clamp_min(0), top), torch.zeros_like(lo))
    residual = torch.where(scale > 0, lo + zero * scale, torch.zeros_like(lo))
    return zero.long(), residual
