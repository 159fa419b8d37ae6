"""Percentiles and summaries of samples."""

import math
import statistics


def percentile(values, q: float) -> float:
    """The q-th percentile (0..100), linear between the two nearest ranks."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = (len(data) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary(values) -> dict:
    data = list(values)
    if not data:
        return {"n": 0}
    return {"n": len(data), "p50": percentile(data, 50), "p90": percentile(data, 90),
            "p99": percentile(data, 99), "mean": statistics.fmean(data), "min": min(data),
            "max": max(data)}


def median(values) -> float:
    return statistics.median(values) if values else math.nan
