"""ORT's 8-bit integer GEMM (MatMulIntegerToFloat) with unsigned and with signed weights, beside FP32 MatMul, on
one BERT-base Linear, and whether each is exact on this CPU.

    .venv/bin/python benchmarks/bench_int8_gemm.py          # seconds

Why: on x86 CPUs without VNNI the u8 x s8 kernel adds pairs of products in int16 with saturation, so full-range
8-bit weight codes overflow; the suite's graphs hold uint8 weights (aqbench/deploy/graph.py, int8_gemm). Prints
the ms of each (median of 40 calls, three interleaved rounds, 1 thread), their ratio to FP32, the largest error of
each integer kernel against the exact integer product, the CPU's VNNI flags and the load average.
"""

import os
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

M, K, N = 128, 768, 3072  # 128 tokens through BERT-base's FFN input projection


def session(nodes, inputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def integer_gemm(weights, zero_points):
    inits = [
        numpy_helper.from_array(weights, "B"),
        numpy_helper.from_array(np.float32(1.0), "a_scale"),
        numpy_helper.from_array(np.ones(N, np.float32), "b_scale"),
        numpy_helper.from_array(np.uint8(0), "a_zero"),
        numpy_helper.from_array(zero_points, "b_zero"),
    ]
    node = helper.make_node(
        "MatMulIntegerToFloat", ["x", "B", "a_scale", "b_scale", "a_zero", "b_zero"], ["y"], domain="com.microsoft"
    )
    return session([node], [helper.make_tensor_value_info("x", TensorProto.UINT8, [M, K])], inits)


def median_ms(sess, x, calls=40):
    for _ in range(5):
        sess.run(None, {"x": x})
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        sess.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (K, N)).astype(np.uint8)  # weight codes over the whole 8-bit grid
    x8 = rng.integers(0, 256, (M, K)).astype(np.uint8)
    exact = x8.astype(np.int64) @ (codes.astype(np.int64) - 128)
    kernels = {
        "u8 x u8": integer_gemm(codes, np.full(N, 128, np.uint8)),
        "u8 x s8": integer_gemm((codes.astype(np.int16) - 128).astype(np.int8), np.zeros(N, np.int8)),
    }
    fp32 = session(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [numpy_helper.from_array(rng.standard_normal((K, N)).astype(np.float32), "W")],
    )
    x32 = rng.standard_normal((M, K)).astype(np.float32)
    times = {name: [] for name in ["fp32", *kernels]}
    for _ in range(3):  # interleaved rounds: each ratio compares medians from the same window
        times["fp32"].append(median_ms(fp32, x32))
        for name, sess in kernels.items():
            times[name].append(median_ms(sess, x8))
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    vnni = sorted({f for f in flags.split() if "vnni" in f}) or ["none"]
    fp = float(np.median(times["fp32"]))
    print(f"{M} x {K} x {N}, 1 thread, onnxruntime {ort.__version__}, VNNI flags: {', '.join(vnni)}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"| kernel | ms | x FP32 | max error |\n|---|---|---|---|\n| FP32 MatMul | {fp:.2f} | 1.00x | |")
    for name, sess in kernels.items():
        ms = float(np.median(times[name]))
        error = float(np.abs(sess.run(None, {"x": x8})[0] - exact).max())
        print(f"| {name} | {ms:.2f} | {fp / ms:.2f}x | {error:g} |")


if __name__ == "__main__":
    main()
