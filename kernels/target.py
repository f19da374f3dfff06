"""The instruction set Numba compiles for, and the matrix-product tiles chosen for it.

The tiles of simd.py keep their accumulators in vector registers for a whole
reduction, so their shape must fit the register file of the CPU the code runs
on: too many accumulators and LLVM spills them to the stack in the innermost
loop (a 64-byte tile of 24 vectors became 48 on AVX2, and ran at 0.55x of
OpenBLAS). ``TILES`` holds one shape per instruction set, after the
micro-kernels BLIS publishes for each (``kernels/*/3/bli_gemm_*``):

- AVX-512 (32 registers of 64 bytes): 8 rows by 3 vectors, 24 accumulators, the
  3 vectors of a row of B and the broadcast element of A: 28 registers (the
  shape of BLIS's skx sgemm 32x12, turned for row-major C).
- AVX2 with FMA (16 registers of 32 bytes): 6 rows by 2 vectors, 12
  accumulators + 2 + 1 = 15 registers, BLIS's haswell sgemm 6x16.
- NEON on AArch64 (32 registers of 16 bytes): 8 rows by 3 vectors, 28
  registers, BLIS's armv8a sgemm 8x12.
- Anything else (SSE2, 16 registers of 16 bytes, no FMA): 4 rows by 2
  vectors, 8 accumulators and a register for each product before its add.

The per-sample pass of samples.py (``rows_pass``) keeps a block of a
sample's sums in registers while it walks down the rows of W: a register per
vector of columns, and about 6 more for the row's scalars, their broadcasts
and loaded vectors (x86 keeps scalars in vector registers). Blocks of 16
vectors on AVX-512 and 8 on NEON, AVX2 and SSE2 fit (tests/test_target.py;
AVX2 spills from 12, NEON from 16); powers of two, so that a pass compiles
for 5 or 4 widths only.

The choice is a function of the CPU Numba compiles for (the host, or
``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``), never of timings, so a seeded fit
gives the same bits on one machine at any thread count. Instruction sets sum
in different tile orders, so their results differ by rounding.
"""

from typing import NamedTuple

import llvmlite.binding as ll
from numba.core import config
from numba.core.codegen import get_host_cpu_features


class Tiles(NamedTuple):
    """Register blocking of the matrix product for one instruction set."""
    isa: str            # the name show_config prints
    vector_bytes: int   # bytes of one vector register
    fma: bool           # a fused multiply-add instruction
    masked_loads: bool  # loads and stores of chosen lanes (AVX2's vmaskmov, AVX-512's masks)
    rows: int           # rows of C per tile_nn
    vectors: int        # vectors of columns of C per tile_nn
    row_vectors: int    # vectors of columns per rows_pass, a power of two


TILES = {
    "avx512": Tiles("AVX-512", 64, True, True, 8, 3, 16),
    "avx2": Tiles("AVX2+FMA", 32, True, True, 6, 2, 8),
    "neon": Tiles("NEON (AArch64)", 16, True, False, 8, 3, 8),
    "generic": Tiles("generic (SSE2 or other)", 16, False, False, 4, 2, 8),
}


def instruction_set(triple, features):
    """The key of TILES for an LLVM target triple and feature string
    ("+avx2,-avx512f,...")."""
    on = {f[1:] for f in features.split(",") if f.startswith("+")}
    if triple.startswith(("aarch64", "arm64")):
        return "neon"
    if triple.startswith("x86_64") and "avx512f" in on and "avx512vl" in on:
        return "avx512"
    if triple.startswith("x86_64") and {"avx2", "fma"} <= on:
        return "avx2"
    return "generic"


def compile_target():
    """(triple, CPU name, features) Numba compiles for, as its codegen reads them."""
    name = config.CPU_NAME or ll.get_host_cpu_name()
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None \
        else get_host_cpu_features()
    return ll.get_process_triple(), name, features


TRIPLE, CPU_NAME, CPU_FEATURES = compile_target()
ISA = instruction_set(TRIPLE, CPU_FEATURES)
HOST = TILES[ISA]


def variant_environment(key):
    """NUMBA_CPU_NAME and NUMBA_CPU_FEATURES that make Numba compile for
    TILES[key] on this x86-64 host, for a subprocess's environment: "avx2" as
    a Haswell (the host's features without AVX-512), "generic" as Numba's
    portable x86-64. Raises ValueError for a set this host cannot run."""
    if key not in runnable_variants():
        raise ValueError(f"this {ISA} host cannot run {key!r} code; it runs "
                         f"{', '.join(runnable_variants())}")
    if key == ISA:
        return {}
    if key == "generic":
        return {"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": ""}
    host = ll.get_host_cpu_features()
    features = ",".join(("-" if name.startswith(("avx512", "avx10", "amx")) or not on
                         else "+") + name for name, on in sorted(host.items()))
    return {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": features}


def runnable_variants():
    """Keys of TILES whose code this host runs: its own and the x86-64 ones below it."""
    if not TRIPLE.startswith("x86_64"):
        return [ISA]
    order = ["avx512", "avx2", "generic"]
    return order[order.index(ISA):]
