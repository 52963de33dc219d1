"""The task registry: importing this package registers sst2, mnli, conll03 and squad."""

from aqbench.tasks import conll03, mnli, squad, sst2  # noqa: F401  (registration)
from aqbench.tasks.base import Task, get_task, task_names  # noqa: F401
