"""What methods share: the calibration set and calibration of activation ranges."""

from aqbench.data import load_split, subsample
from aqbench.errors import AqbenchError
from aqbench.quant.modules import act_quantizers, calibrating
from aqbench.tasks.kinds import featurize
from aqbench.train import predict


def calibration_features(task, data_dir, tokenizer, settings, n, seed):
    """Features of n training examples (a seeded subset): the same set for every method at a given seed.
    Only training data is used, so evaluation data never shapes a quantizer."""
    examples = subsample(load_split(data_dir, "train"), n, seed)
    return featurize(task, examples, tokenizer, settings, with_labels=False)


def calibrate(model, features, pad_id, settings):
    """Set every activation quantizer's range to the min/max it sees on the calibration features."""
    with calibrating(model) as quantizers:
        if quantizers:
            predict(model, features, settings["eval_batch_size"], pad_id, settings["device"], desc="calibrate",
                    mixed_precision=settings.get("mixed_precision"))
    missing = [q for q in act_quantizers(model) if not q.calibrated]
    if missing:
        raise AqbenchError(f"{len(missing)} activation quantizers saw no data during calibration")
    return len(act_quantizers(model))
