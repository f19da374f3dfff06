"""What fastmlp runs on: ``show_config()``, ``python -m fastmlp info``, and
``header()``, the one line a benchmark prints.

The CPU and instruction set Numba compiles for and the matrix-product tile
chosen for them (fastmlp.kernels.target), the per-sample path's pieces and
passes (fastmlp.kernels.samples), which products go to BLAS, the
BLAS libraries in the process with their threads, Numba's threading layer and thread counts, the folder of
the compiled kernels' cache, and the versions of the numerical libraries.
Reading them changes nothing: no environment variable, no thread pool, no
thread count, and Numba's threads are not started. It does load SciPy's
BLAS, the library Numba calls for ``np.dot``, to report it.
"""

import llvmlite
import llvmlite.binding as ll
import numba
import numpy
import scipy

from . import __version__
from .kernels import target
from .kernels.blas import BLAS_PRODUCTS, gemm
from .kernels.samples import PER_SAMPLE
from .threads import get_num_threads


def config():
    """The fields show_config prints, by name: strings, numbers, booleans,
    None for a threading layer not started yet, and a dict per BLAS library
    (library, version, architecture, threads, threading_layer, path)."""
    # here, not on import fastmlp: SciPy's BLAS loaded, threadpoolctl (15 ms)
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_info

    tiles = target.HOST
    return {
        "fastmlp": __version__,
        "cpu": target.CPU_NAME,
        "host_cpu": ll.get_host_cpu_name(),
        "cpu_from_NUMBA_CPU_NAME": numba.config.CPU_NAME is not None,
        "instruction_set": tiles.isa,
        "tile_nn": f"{tiles.rows} rows x {tiles.vectors} vectors of {tiles.vector_bytes} bytes",
        "per_sample": PER_SAMPLE,
        "blas": BLAS_PRODUCTS,
        "blas_libraries": [
            {"library": info["internal_api"], "version": info["version"],
             "architecture": info.get("architecture"), "threads": info["num_threads"],
             "threading_layer": info.get("threading_layer"), "path": info["filepath"]}
            for info in threadpool_info() if info["user_api"] == "blas"],
        "threading_layer": numba.config.THREADING_LAYER,
        "threading_layer_in_use": _threading_layer(),
        "threads": get_num_threads(),
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
        "cache_dir": gemm.stats.cache_path,
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "scipy": scipy.__version__,
    }


def show_config(file=None):
    """Print config(), a field a line (a BLAS library a line), to ``file``
    (default: standard output)."""
    fields = config()
    width = max(map(len, fields))
    for name, value in fields.items():
        if name == "blas_libraries":
            lines = [f"{_library(b)}: {b['path']}" for b in value] or ["none loaded"]
        else:
            lines = ["not started yet" if value is None else value]
        for i, line in enumerate(lines):
            print(f"{name if i == 0 else '':<{width}}  {line}", file=file)


def header():
    """One line of what a benchmark ran on: version, CPU, instruction set,
    tile, BLAS libraries and threads."""
    fields = config()
    tiles = target.HOST
    blas = " + ".join(map(_library, fields["blas_libraries"])) or "none"
    return (f"fastmlp {fields['fastmlp']}, {fields['cpu']}, {fields['instruction_set']}, "
            f"tile {tiles.rows}x{tiles.vectors}x{tiles.vector_bytes}B, BLAS {blas}, "
            f"{fields['threads']} of {fields['numba_num_threads']} threads")


def _library(blas):
    """A BLAS library of config() in a few words: "openblas 0.3.30 (Haswell, 2 threads)"."""
    return (f"{blas['library']} {blas['version']} ({blas['architecture']}, "
            f"{blas['threads']} threads)")


def _threading_layer():
    """The threading layer Numba runs, None before its first parallel run."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None
