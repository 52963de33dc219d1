"""Bit packing: b-bit unsigned integers (1 <= b <= 8) stored back to back in bytes, least significant bit first
(a 2-bit tensor is 4 values per byte; 3-bit values straddle bytes). Exact for every width; the last byte is
zero-padded. numpy's packbits / unpackbits do the work in C.
"""

import numpy as np
import torch

from aqbench.errors import AqbenchError


def packed_bytes(count, bits):
    return (count * bits + 7) // 8


def pack(values, bits):
    """A uint8 tensor holding `values` (integers in [0, 2^bits - 1]) at `bits` bits each."""
    if not 1 <= bits <= 8:
        raise AqbenchError(f"cannot pack {bits}-bit values: 1 to 8 bits")
    v = torch.as_tensor(values).reshape(-1)
    if v.numel() and (int(v.min()) < 0 or int(v.max()) >= 2**bits):
        raise AqbenchError(f"values outside [0, {2**bits - 1}] cannot be packed at {bits} bits")
    v = v.to(torch.uint8).numpy()
    planes = np.unpackbits(v[:, None], axis=1, bitorder="little")[:, :bits]  # (n, bits), LSB first
    return torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="little"))


def unpack(data, bits, count):
    """The `count` integers that pack(values, bits) stored in `data`, as int64."""
    raw = np.asarray(torch.as_tensor(data, dtype=torch.uint8).numpy())
    if raw.size != packed_bytes(count, bits):
        raise AqbenchError(f"{raw.size} bytes do not hold {count} values of {bits} bits")
    planes = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    full = np.zeros((count, 8), dtype=np.uint8)
    full[:, :bits] = planes
    return torch.from_numpy(np.packbits(full, axis=1, bitorder="little").reshape(-1).astype(np.int64))
