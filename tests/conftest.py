import numpy as np
import pytest

from fastmlp import registry

# Relative tolerance of a kernel against the float64 reference, per dtype.
RTOL = {"float32": 1e-5, "float64": 1e-10}


def own_names(table):
    """The names of a registry table's entries, aliases left out, in its order."""
    return [name for name, entry in table.items() if name == entry.name]


ACTIVATIONS = own_names(registry.ACTIVATIONS)
LOSSES = own_names(registry.LOSSES)


def assert_close(actual, expected, dtype):
    """Each element within RTOL of its reference value rounded to ``dtype``,
    with an absolute floor of RTOL times the array's largest value (for results
    of cancellation) and of the dtype's smallest normal number (subnormals)."""
    rtol = RTOL[dtype]
    expected = np.asarray(expected).astype(dtype).astype(np.float64)
    floor = max(rtol * np.abs(expected).max(initial=0.0), np.finfo(dtype).tiny)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=rtol, atol=floor)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
