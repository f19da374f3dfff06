"""Inverted dropout with masks from a counter-based generator.

The mask of unit j of layer l (0: the inputs; 1..: the hidden layers) for the
sample at row r of its batch, in
update number ``step`` of a fit keyed ``key``, is a pure function of those
five integers (SplitMix64's finaliser, chained): the unit is dropped when the
top 24 bits of the hash fall below ``rate * 2**24``, and kept units are scaled
by 1 / (1 - rate). The same key gives the same masks at any thread count and
shard split, and the NumPy reference draws them from the same function.
"""

import numpy as np

from ._jit import cast_like, helper, kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)
BITS = 24  # of each unit's hash compared with the rate


@helper
def mix(z):
    """SplitMix64's finaliser of a uint64 (a uint64 array in NumPy)."""
    z = (z ^ (z >> _S30)) * _MIX_1
    z = (z ^ (z >> _S27)) * _MIX_2
    return z ^ (z >> _S31)


@helper
def row_seed(key, step, layer, row):
    """The hash from which every unit's draw of one row of one layer follows."""
    z = mix(np.uint64(key) + _GOLDEN)
    z = mix(z ^ np.uint64(step))
    z = mix(z ^ np.uint64(layer))
    return mix(z ^ np.uint64(row))


@helper
def threshold(rate):
    """Draws below this many 2**-24ths drop their unit."""
    return np.uint64(np.ceil(rate * 2.0**BITS))


@kernel
def dropout_forward(A, M, rate, key, step, layer, row0):
    """A *= M, with M (n, m) written (unless None): 0 for a dropped unit,
    1 / (1 - rate) for a kept one, row i of A being row ``row0 + i`` of its
    batch. Layer 0 is the input."""
    n, m = A.shape
    limit = threshold(rate)
    kept = cast_like(A, 1.0 / (1.0 - rate))
    zero = cast_like(A, 0.0)
    for i in range(n):
        seed = row_seed(key, step, layer, row0 + i)
        for j in range(m):
            scale = kept if (mix(seed ^ np.uint64(j)) >> _S40) >= limit else zero
            if M is not None:
                M[i, j] = scale
            A[i, j] *= scale
