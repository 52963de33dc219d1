"""Progress of long loops: a tqdm bar on a terminal; in a log file, a plain line every `every` seconds.

tqdm's carriage-return updates turn a log file into one endless line; a job's log should read top to bottom.
TQDM_DISABLE=1 silences both.
"""

import logging
import os
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("aqbench.progress")


class Progress:
    def __init__(self, total, desc, every=10.0):
        self.total, self.desc, self.every = total, desc, every
        self.quiet = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true")
        self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True, mininterval=1.0) if sys.stderr.isatty() else None
        self.n, self.postfix = 0, {}
        self.start = self.last = time.time()

    def update(self, n=1, **postfix):
        self.n += n
        self.postfix.update(postfix)
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
        elif time.time() - self.last >= self.every:
            self._line()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif time.time() - self.start >= self.every:
            self._line()  # a final line only for loops long enough to have reported

    def _line(self):
        self.last = now = time.time()
        if self.quiet:
            return
        rate = self.n / max(now - self.start, 1e-9)
        left = (self.total - self.n) / rate if rate else float("nan")
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        log.info(
            "%s: %d/%d (%.0f%%)%s, %.0f s elapsed, ~%.0f s left",
            self.desc,
            self.n,
            self.total,
            100 * self.n / max(self.total, 1),
            extra,
            now - self.start,
            left,
        )
