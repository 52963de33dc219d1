"""The timing every benchmark uses: the median of repeated calls, after one warm-up call (allocations, caches)."""

import statistics
import time


def median_seconds(fn, repeats, warmup=True):
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
