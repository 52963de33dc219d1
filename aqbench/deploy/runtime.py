"""ONNX Runtime on the CPU: a session of an exported model (one clear error for a file that is not one) and
predictions through the same batching as PyTorch's (aqbench.prediction.predict_with)."""

from pathlib import Path

import numpy as np

from aqbench.errors import AqbenchError


def session(model, threads=1, what=None):
    """An InferenceSession on the CPU execution provider with every graph optimization, from a path, the
    serialized bytes or an onnx.ModelProto. threads: intra-op threads (0 = ORT's choice, one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT warns about shapes it merges leniently
    # idle threads sleep instead of spinning: several sessions are timed in turn in one process (the latency
    # stage), and one session's spinning pool would steal the cores of the next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model
    if hasattr(model, "SerializeToString"):
        source = model.SerializeToString()
    elif not isinstance(model, bytes):
        path = Path(model)
        what = what or str(path)
        if not path.is_file():
            raise AqbenchError(f"ONNX model not found: {path}. Fix: run its export job (snakemake makes it)")
        source = str(path)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own types (InvalidProtobuf, InvalidGraph, Fail ...) for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AqbenchError(
            f"{what or 'the ONNX model'} cannot be loaded by ONNX Runtime ({first[:300]}). Fix: delete "
            "it and rerun its export job (snakemake --forcerun export_<method>)"
        ) from e


def runner(sess):
    """run(batch) -> {output name: array} for aqbench.prediction.predict_with: the batch's int64 inputs the model takes
    (token type ids default to zeros, as in PyTorch)."""
    wanted = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]

    def run(batch):
        feed = {}
        for name in wanted:
            if name in batch:
                feed[name] = batch[name].numpy().astype(np.int64)
            elif name == "token_type_ids":
                feed[name] = np.zeros_like(batch["input_ids"].numpy(), dtype=np.int64)
            else:
                raise AqbenchError(f"the ONNX model needs input {name!r}, which the task's features do not have")
        return dict(zip(outputs, sess.run(outputs, feed)))

    return run


def predict(sess, features, batch_size, pad_id, desc="eval onnx", sort=False):
    from aqbench.prediction import predict_with

    return predict_with(runner(sess), features, batch_size, pad_id, desc, sort)
