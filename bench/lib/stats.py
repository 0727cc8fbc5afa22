"""Small statistics shared by the benchmark helpers (stdlib only)."""

import math


def percentile(values, p):
    """Nearest-rank percentile of `values` (p in 0..100); None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, math.ceil(p / 100 * len(s)) - 1)
    return s[k]
