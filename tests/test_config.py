"""fastmlp.show_config() and header(): what they report for this host, and
that reading it changes nothing."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import llvmlite
import numba
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  (config() loads it: load it before comparing)
import threadpoolctl

import fastmlp
from fastmlp import kernels
from fastmlp.config import config, header
from fastmlp.kernels import target
from fastmlp.kernels.blas import BLAS_PRODUCTS, gemm
from fastmlp.kernels.samples import PIECES

FIELDS = ["fastmlp", "cpu", "host_cpu", "cpu_from_NUMBA_CPU_NAME", "instruction_set", "tile_nn",
          "per_sample", "blas", "blas_libraries", "threading_layer", "threading_layer_in_use",
          "threads", "numba_num_threads", "cache_dir", "numpy", "numba", "llvmlite", "scipy"]


def blas_pools():
    return [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_config_describes_this_host():
    fields = config()
    assert list(fields) == FIELDS
    tiles = target.HOST
    assert fields["cpu"] == target.CPU_NAME
    assert fields["cpu_from_NUMBA_CPU_NAME"] == (numba.config.CPU_NAME is not None)
    assert fields["instruction_set"] == tiles.isa
    assert fields["tile_nn"] == (f"{tiles.rows} rows x {tiles.vectors} vectors of "
                                 f"{tiles.vector_bytes} bytes")
    assert fields["per_sample"] == (f"batch 1: each layer's columns in {PIECES} pieces over up "
                                    f"to {PIECES} threads, passes of {tiles.row_vectors} "
                                    f"vectors of {tiles.vector_bytes} bytes")
    assert fields["blas"] == BLAS_PRODUCTS
    assert fields["threads"] == fastmlp.get_num_threads()
    assert fields["numba_num_threads"] == numba.config.NUMBA_NUM_THREADS
    assert fields["threading_layer"] == numba.config.THREADING_LAYER
    expected_cache = numba.config.CACHE_DIR or str(Path(kernels.__file__).parent / "__pycache__")
    assert fields["cache_dir"].startswith(expected_cache)
    assert [fields[name] for name in ["fastmlp", "numpy", "numba", "llvmlite", "scipy"]] == [
        fastmlp.__version__, np.__version__, numba.__version__, llvmlite.__version__,
        scipy.__version__]


def test_config_lists_every_blas_library_with_its_threads():
    libraries = config()["blas_libraries"]
    assert sorted((b["path"], b["threads"]) for b in libraries) == sorted(
        (i["filepath"], i["num_threads"]) for i in blas_pools())
    assert any("scipy" in b["path"] for b in libraries)  # the BLAS Numba calls


def test_threading_layer_in_use_after_a_parallel_run():
    C = np.zeros((3, 2))
    gemm(C, np.ones((3, 4)), np.ones((4, 2)), 1.0, 0.0)
    assert config()["threading_layer_in_use"] == numba.threading_layer()


def test_show_config_prints_a_field_a_line():
    out = io.StringIO()
    fastmlp.show_config(out)
    lines = out.getvalue().splitlines()
    named = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert named == FIELDS
    assert re.search(rf"^instruction_set +{re.escape(target.HOST.isa)}$", out.getvalue(), re.M)
    assert len(lines) == len(FIELDS) - 1 + max(1, len(blas_pools()))


def test_show_config_changes_nothing():
    environment, pools = dict(os.environ), threadpoolctl.threadpool_info()
    threads = fastmlp.get_num_threads()
    fastmlp.show_config(io.StringIO())
    assert dict(os.environ) == environment
    assert threadpoolctl.threadpool_info() == pools
    assert fastmlp.get_num_threads() == threads


def test_show_config_starts_no_numba_threads():
    code = ("import io, numba, fastmlp; fastmlp.show_config(io.StringIO()); "
            "print(fastmlp.config.config()['threading_layer_in_use']); numba.threading_layer()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout == "None\n"
    assert "Threading layer is not initialized" in result.stderr


def test_info_follows_numba_cpu_name():
    """Under another instruction set's environment, info reports its tiles."""
    for key in target.runnable_variants():
        env = {**os.environ, **target.variant_environment(key)}
        result = subprocess.run([sys.executable, "-m", "fastmlp", "info"], env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        fields = dict(re.split(r"\s{2,}", line, maxsplit=1)
                      for line in result.stdout.splitlines() if not line.startswith(" "))
        assert fields["instruction_set"] == target.TILES[key].isa
        assert fields["cpu_from_NUMBA_CPU_NAME"] == str(key != target.ISA)


def test_header_is_one_line():
    line = header()
    tiles = target.HOST
    assert "\n" not in line
    assert line.startswith(f"fastmlp {fastmlp.__version__}, {target.CPU_NAME}, {tiles.isa}, "
                           f"tile {tiles.rows}x{tiles.vectors}x{tiles.vector_bytes}B, BLAS ")
    assert line.endswith(f", {fastmlp.get_num_threads()} of {numba.config.NUMBA_NUM_THREADS} "
                         "threads")
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", line)  # no date or time
