"""The tiles of kernels/target.py fit the register files they are chosen for,
and the kernels agree under every instruction set this host can run.

The static test compiles simd.py's standalone kernels (the matrix product's
tile and the per-sample pass) for CPUs this machine need not have (LLVM
cross-compiles to any of them) and reads each one's inner loop in the
assembly: no operand there may address the stack, where a value that did
not fit a register would go, and the multiply-adds must run on vectors of
the width the table promises."""

import os
import re
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as ll
import pytest
from numba.core import config

from fastmlp.kernels import target
from fastmlp.kernels.simd import tile_module
from fastmlp.kernels.target import TILES, instruction_set

ROOT = Path(__file__).resolve().parents[1]
X86, ARM = "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"

# (triple, CPU, key of TILES); each CPU name implies its features.
TARGETS = [(X86, "haswell", "avx2"), (X86, "znver3", "avx2"),
           (X86, "skylake-avx512", "avx512"), (X86, "znver4", "avx512"),
           (ARM, "neoverse-n1", "neon"), (ARM, "apple-m1", "neon"),
           (X86, "x86-64", "generic")]

# Per key: the loop's multiply-add instruction (for 32-bit floats, for 64-bit
# floats), a pattern whose group is the shape of each vector operand, and the
# shape every one must have.
ARITHMETIC = {
    "avx512": ((r"vfmadd\d+ps", r"vfmadd\d+pd"), r"%([xyz]mm)\d+", ("zmm", "zmm")),
    "avx2": ((r"vfmadd\d+ps", r"vfmadd\d+pd"), r"%([xyz]mm)\d+", ("ymm", "ymm")),
    "generic": ((r"(mul|add)ps", r"(mul|add)pd"), r"%([xyz]mm)\d+", ("xmm", "xmm")),
    "neon": ((r"fmla", r"fmla"), r"\bv\d+\.(\d+[bhsd])\b", ("4s", "2d")),
}
VECTOR_REGISTER = r"%[xyz]mm\d|\bq\d+\b|\bv\d+\."
LABEL = re.compile(r"^([\w.$]+):")


def assembly(triple, cpu, module):
    """The assembly of an llvmlite ``module`` for ``cpu``, after the O3
    pipeline Numba runs (loop vectorizer on, SLP vectorizer off)."""
    ll.initialize_all_targets()
    ll.initialize_all_asmprinters()
    parsed = ll.parse_assembly(str(module))
    parsed.triple = triple
    machine = ll.Target.from_triple(triple).create_target_machine(cpu=cpu, opt=3)
    parsed.data_layout = str(machine.target_data)
    options = ll.create_pipeline_tuning_options(speed_level=3)
    options.loop_vectorization = bool(config.LOOP_VECTORIZE)
    options.slp_vectorization = bool(config.SLP_VECTORIZE)
    passes = ll.create_pass_builder(machine, options)
    passes.getModulePassManager().run(parsed, passes)
    return machine.emit_assembly(parsed)


def functions(text):
    """{name: lines} of the functions in an assembly text."""
    found, name = {}, None
    for line in text.splitlines():
        label = LABEL.match(line)
        if label and not label.group(1).startswith("."):
            name = label.group(1)
            found[name] = []
        elif name:
            found[name].append(line)
    return found


def _blocks(lines):
    """The basic blocks of a function's assembly lines: (label or None,
    instructions); a block ends at a label or after a branch."""
    blocks = [(None, [])]
    for line in lines:
        text = re.sub(r"\s(#|//)\s.*", "", line).strip()  # not an AArch64 "#3"
        label = LABEL.match(text)
        if label:
            blocks.append((label.group(1), []))
        elif text and not text.startswith("."):
            if blocks[-1][1] and _branch(blocks[-1][1][-1]):
                blocks.append((None, []))
            blocks[-1][1].append(text)
    return blocks


def _branch(instruction):
    """What ``instruction`` does to control: "jump" (unconditional, or a
    return), "branch" (conditional) or None."""
    mnemonic = instruction.split()[0]
    if mnemonic.startswith(("ret", "jmp")) or mnemonic in ("b", "br"):
        return "jump"
    if mnemonic.startswith(("j", "b.", "cbz", "cbnz", "tbz", "tbnz")):
        return "branch"
    return None


def inner_loop(lines):
    """The instructions of a function's loops, in order: the blocks of its
    control-flow graph that lie on a cycle. LLVM's assembly carries no block
    names ("tile.loop" is gone) and lays a loop's rare paths out of line, so
    the loop is found from the branches."""
    blocks = _blocks(lines)
    index = {label: i for i, (label, _) in enumerate(blocks) if label}
    successors = []
    for i, (_, body) in enumerate(blocks):
        kind = _branch(body[-1]) if body else None
        to = re.split(r"[\s,]+", body[-1])[-1] if kind else None
        successors.append(([index[to]] if to in index else [])
                          + ([i + 1] if kind != "jump" and i + 1 < len(blocks) else []))
    return [instruction for i, (_, body) in enumerate(blocks)
            if _reaches(successors, i) for instruction in body]


def _reaches(successors, start):
    """Whether a path of one or more edges leads from block ``start`` back to it."""
    seen, todo = set(), list(successors[start])
    while todo:
        block = todo.pop()
        if block == start:
            return True
        if block not in seen:
            seen.add(block)
            todo.extend(successors[block])
    return False


def stack_operands(lines, loop):
    """The instructions of ``loop`` that read or write the stack: through the
    stack pointer, or through the frame pointer where the function (its
    assembly ``lines``) sets one up; else rbp and x29 are ordinary registers."""
    text = "\n".join(lines)
    stack = [r"\(%rsp\b", r"\[sp\b"]
    if re.search(r"mov\w*\s+%rsp, %rbp", text):
        stack.append(r"\(%rbp\b")
    if re.search(r"(mov|add)\s+x29, sp\b", text):
        stack.append(r"\[x29\b")
    return [i for i in loop if re.search("|".join(stack), i)]


def check_tiles(triple, cpu, key, bits, tiles=None, kernel="tile_nn"):
    """Problems of the inner loop of ``kernel`` ("tile_nn" or "rows_pass")
    built from ``tiles`` (default TILES[key]) for ``bits``-bit floats on
    ``cpu``, as lines of text; an empty list when it fits. ``key`` names the
    instructions the loop must use."""
    tiles = tiles or TILES[key]
    lines = functions(assembly(triple, cpu, tile_module(tiles, bits)))[kernel]
    arithmetic, operand, shapes = ARITHMETIC[key]
    arithmetic, shape = arithmetic[bits == 64], shapes[bits == 64]
    loop = inner_loop(lines)
    work = [i for i in loop if re.match(arithmetic + r"\b", i)]
    found = {s for i in work for s in re.findall(operand, i)}
    spills = stack_operands(lines, loop)
    accumulators = tiles.rows * tiles.vectors if kernel == "tile_nn" else tiles.row_vectors
    problems = []
    if not work or len(work) % accumulators:
        problems.append(f"{len(work)} {arithmetic} in the loop, not a multiple of the "
                        f"{accumulators} accumulators")
    if found != {shape}:
        problems.append(f"vector operands {sorted(found)}, expected {shape}")
    if spills:
        vector = sum(bool(re.search(VECTOR_REGISTER, i)) for i in spills)
        problems.append(f"{len(spills)} of the {len(loop)} instructions of the loop address "
                        f"the stack, {vector} with a vector register:\n    "
                        + "\n    ".join(spills))
    return problems


@pytest.mark.parametrize("kernel", ["tile_nn", "rows_pass"])
@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("triple, cpu, key", TARGETS)
def test_tiles_fit_the_register_file(triple, cpu, key, bits, kernel):
    problems = check_tiles(triple, cpu, key, bits, kernel=kernel)
    assert not problems, f"{kernel} on {cpu}, {bits}-bit floats:\n" + "\n".join(problems)


def test_check_tiles_sees_a_spill():
    """Haswell's tile and pass fit; with 36 accumulators, or 16 vectors of
    sums in the pass, for 16 registers they spill."""
    assert check_tiles(X86, "haswell", "avx2", 32) == []
    too_many = TILES["avx2"]._replace(rows=12, vectors=3)
    (problem,) = check_tiles(X86, "haswell", "avx2", 32, too_many)
    assert "address the stack" in problem
    assert check_tiles(X86, "haswell", "avx2", 32, kernel="rows_pass") == []
    too_wide = TILES["avx2"]._replace(row_vectors=16)
    (problem,) = check_tiles(X86, "haswell", "avx2", 32, too_wide, kernel="rows_pass")
    assert "address the stack" in problem


def test_check_tiles_sees_narrower_vectors():
    problems = check_tiles(X86, "haswell", "avx512", 32, TILES["avx2"])
    assert "vector operands ['ymm'], expected zmm" in problems


@pytest.mark.parametrize("triple, features, key", [
    (X86, "+avx512f,+avx512vl,+avx2,+fma,+avx", "avx512"),
    (X86, "+avx512f,-avx512vl,+avx2,+fma", "avx2"),
    (X86, "-avx512f,+avx2,+fma,+avx", "avx2"),
    (X86, "+avx2,-fma,+avx", "generic"),
    (X86, "+fma,+avx", "generic"),
    (X86, "", "generic"),
    ("i686-pc-linux-gnu", "+avx512f,+avx512vl,+avx2,+fma", "generic"),
    (ARM, "+neon", "neon"),
    ("arm64-apple-macosx14.0.0", "", "neon"),
])
def test_instruction_set(triple, features, key):
    assert instruction_set(triple, features) == key


def test_host_tiles_follow_numba_target():
    assert target.HOST is TILES[target.ISA]
    assert target.ISA == instruction_set(target.TRIPLE, target.CPU_FEATURES)
    assert target.ISA in target.runnable_variants()
    assert target.variant_environment(target.ISA) == {}


@pytest.mark.parametrize("key", target.runnable_variants())
def test_variant_environment_selects_its_tiles(key):
    features = target.variant_environment(key).get("NUMBA_CPU_FEATURES", target.CPU_FEATURES)
    assert instruction_set(target.TRIPLE, features) == key


def test_variant_environment_refuses_what_the_host_cannot_run():
    for key in set(TILES) - set(target.runnable_variants()):
        with pytest.raises(ValueError, match="cannot run"):
            target.variant_environment(key)


@pytest.mark.parametrize("key", [k for k in target.runnable_variants() if k != target.ISA])
def test_kernels_agree_under_variant(key, tmp_path):
    """test_kernels.py passes compiled for another instruction set, in a
    subprocess with an empty Numba cache (about 25 s each)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           **target.variant_environment(key)}
    tiles = subprocess.run(
        [sys.executable, "-c", "from fastmlp.kernels import target; print(repr(target.HOST))"],
        env=env, capture_output=True, text=True, check=True)
    assert tiles.stdout.strip() == repr(TILES[key])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_kernels.py"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
