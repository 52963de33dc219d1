"""The one exception type for problems a user can fix.

Its message names the problem and the fix; the CLI prints it as one line and exits non-zero,
never with a traceback.
"""


class AqbenchError(Exception):
    """A user-fixable problem (bad config, missing file, unreachable hub, NaN loss...)."""
