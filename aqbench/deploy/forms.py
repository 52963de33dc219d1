"""The ways a quantized run can be laid out for ONNX Runtime (its deployment forms).

Every form is built from the same packed file (the run's codes, scales and offsets) and keeps the run's 8-bit
activations: each encoder Linear's input goes through QuantizeLinear / DequantizeLinear with the run's
calibrated range. They differ in how the weights are held and multiplied:

    exact   each group at the narrowest width ORT runs (2, 4, 8; 3-bit at 4, 5-7 at 8), the same codes;
            2/4-bit rows by MatMulNBits computing in fp32 on the run's quantized activations, 8-bit rows by the
            8-bit integer GEMM (MatMulIntegerToFloat, uint8 x uint8) on the activations' own integer codes. Both are the run's
            arithmetic, so its outputs equal the PyTorch run's within float rounding: model.onnx, checked.
    fast    as exact, but MatMulNBits with accuracy_level 4: ORT requantizes the (already 8-bit) activations
            to int8 per block of K and multiplies in integers. Faster, not the run's arithmetic: its metric is
            measured beside exact's.
    fast4   fast with 2-bit groups stored at 4 bits (same codes): ORT's 4-bit kernels are faster than its 2-bit
            ones at most shapes, so this is the deployable form of a 2-bit run; it holds twice the bits.
    w8a8    every group stored at 8 bits (same codes) and every row through the 8-bit integer GEMM: the run's
            arithmetic again, at 8 bits per weight.

An FP run has one form, fp32: plain MatMul.
"""

from dataclasses import dataclass

from aqbench.errors import AqbenchError


@dataclass(frozen=True)
class Form:
    name: str
    accuracy_level: int  # MatMulNBits: 0 computes in fp32, 4 with int8 activations
    min_bits: int  # groups narrower than this are stored at this width (the same codes)
    exact: bool  # computes the run's arithmetic: its outputs are checked against the run's
    int8_gemm: bool = True  # 8-bit rows through the 8-bit integer GEMM (else MatMulNBits at 8 bits)


FORMS = {
    f.name: f
    for f in (
        Form("exact", 0, 2, True),
        Form("fast", 4, 2, False),
        Form("fast4", 4, 4, False),
        Form("w8a8", 0, 8, True),
    )
}
FP_FORM = "fp32"


def get_form(name):
    if isinstance(name, Form):  # a form of one's own (benchmarks/bench_onnx.py compares MatMulNBits at 8 bits)
        return name
    if name not in FORMS:
        raise AqbenchError(f"unknown ONNX form {name!r}: use one of {', '.join(FORMS)}")
    return FORMS[name]


def forms_of(assignment):
    """The forms that differ for a run: exact always; fast where it has 2- or 4-bit rows (MatMulNBits); fast4
    where it has rows stored at 2 bits; w8a8 where rows are stored below 8 bits and its activations are
    quantized (the int8 GEMM multiplies their codes). An FP run (no assignment): fp32."""
    from aqbench.deploy.weights import stored_bits

    if assignment is None or not assignment.layers:
        return [FP_FORM]
    widths = {stored_bits(b) for layer in assignment.layers.values() for b in layer.bits if b > 0}
    quantized_acts = assignment.act_bits <= 8
    out = ["exact"]
    if widths & {2, 4} or not quantized_acts:
        out.append("fast")
    if 2 in widths:
        out.append("fast4")
    if quantized_acts and widths - {8}:
        out.append("w8a8")
    return out
