"""The featurized form of a split that every task kind returns and the training, prediction and decoding read."""

from dataclasses import dataclass


@dataclass
class Features:
    """Model inputs (one dict per feature) and, per feature, the example it came from and what decoding needs."""

    inputs: list
    example_index: list
    extra: list | None = None

    def __len__(self):
        return len(self.inputs)
