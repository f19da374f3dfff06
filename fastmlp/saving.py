"""Saving and loading models: one ``.npz`` file, read without pickle.

The file is a zip archive of ``.npy`` arrays, as ``numpy.savez`` writes it:
the object's named arrays (for an MLP, ``params``: the flat buffer) and
``fastmlp_metadata``, a uint8 array holding UTF-8 JSON::

    {"format": "fastmlp", "format_version": 1, "kind": "MLP",
     "fastmlp_version": "0.1.0", "state": {...}}

``state`` is the object's own description (for an MLP: sizes, activation,
loss, output, dtype, seed and, after ``fit`` on binary targets,
negative_label_). ``load`` picks the class by ``kind`` from a registry of
known classes, never by importing a name read from the file, and reads
arrays with ``allow_pickle=False``, so loading runs no code from the file.

Making another class savable: give it ``_save_state(self)``, returning
``(state, arrays)`` (a JSON-serialisable dict and a dict of named ndarrays),
and a classmethod ``_load_state(cls, state, arrays)`` that returns the
rebuilt object and raises ValueError (or TypeError) naming what is wrong;
then register it, e.g. with the decorator ``@register("MLPClassifier")``.
The module defining the class must be imported before ``load`` sees such a
file; fastmlp's package ``__init__`` imports every module that registers.
"""

import json
import numbers
import os
import secrets
import zipfile

import numpy as np

from .kernels import BINARY_CROSS_ENTROPY
from .model import MLP
from .registry import LOSSES

FORMAT = "fastmlp"
# Bump when a change to the file layout would make older fastmlp misread it.
FORMAT_VERSION = 1
METADATA = "fastmlp_metadata"

# kind -> (class, save_state(obj), load_state(state, arrays))
_KINDS = {}


def register(kind, cls=None, save_state=None, load_state=None):
    """Make instances of ``cls`` savable under the name ``kind``.

    ``save_state(obj) -> (state, arrays)`` and ``load_state(state, arrays) ->
    obj`` default to ``cls._save_state`` and ``cls._load_state``. Without
    ``cls``, returns a class decorator. Only instances of exactly ``cls`` are
    saved under ``kind``: a subclass must register a kind of its own.
    """
    if cls is None:
        return lambda cls: register(kind, cls, save_state, load_state)
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    if kind in _KINDS and _KINDS[kind][0] is not cls:
        raise ValueError(f"kind {kind!r} is already registered for {_KINDS[kind][0]!r}")
    _KINDS[kind] = (cls, save_state or cls._save_state, load_state or cls._load_state)
    return cls


def _kind_of(obj):
    for kind, (cls, save_state, _) in _KINDS.items():
        if type(obj) is cls:
            return kind, save_state
    raise TypeError(f"cannot save a {type(obj).__name__}: savable kinds are {sorted(_KINDS)} "
                    "(fastmlp.saving.register adds one)")


def _check_arrays(kind, arrays):
    for name, array in arrays.items():
        if not isinstance(name, str) or not name or name == METADATA:
            raise ValueError(f"{kind} array name {name!r} is empty, not a string or reserved")
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{kind} array {name!r} must be an ndarray, got "
                            f"{type(array).__name__}")
        if array.dtype.hasobject:
            raise TypeError(f"{kind} array {name!r} holds Python objects, which would need "
                            "pickle; store numbers or strings")


def save(obj, path):
    """Write a model to ``path`` (str or path-like), replacing any file there.

    The file is written at exactly ``path``: unlike ``numpy.savez``, no
    ``.npz`` is appended. The write is atomic: the archive goes to a
    temporary file in the same folder, is flushed to disk, then renamed onto
    ``path``; a failure at any point leaves an existing file at ``path`` as it
    was and removes the temporary file. The new file gets the default
    permissions (as ``open`` would create it), not those of the file it replaces.
    """
    from . import __version__

    kind, save_state = _kind_of(obj)
    state, arrays = save_state(obj)
    _check_arrays(kind, arrays)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "fastmlp_version": __version__, "state": state}
    try:
        text = json.dumps(metadata, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise TypeError(f"{kind} state must hold plain JSON values (str, int, finite float, "
                        f"bool, None, lists, dicts): {err}") from err
    arrays = {METADATA: np.frombuffer(text, dtype=np.uint8), **arrays}
    _write_atomic(os.fspath(path), lambda f: _write_npz(f, arrays))


def _write_npz(f, arrays):
    """An uncompressed .npz, as numpy.savez writes it, but refusing pickle."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _write_atomic(path, write):
    """Call ``write(f)`` on a new temporary file beside ``path``, fsync it and
    rename it onto ``path``; on any error remove it and re-raise."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename durable. Where a folder cannot be opened (Windows), the
    rename is as durable as the system makes it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Problem(Exception):
    """Why a file is not a readable fastmlp file; ``load`` adds the path."""


# The first bytes of a zip archive: with members, or empty.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# What numpy and zipfile raise on damaged or foreign files.
_READ_ERRORS = (ValueError, EOFError, OSError, zipfile.BadZipFile, NotImplementedError,
                RuntimeError)


def load(path):
    """Read a model written by ``save``; returns the rebuilt object.

    Raises FileNotFoundError (or another OSError) when the file cannot be
    opened, and ValueError naming ``path`` and the problem when it is not a
    readable fastmlp file: truncated or corrupted, another program's file,
    written by a newer fastmlp, inconsistent metadata, or holding arrays
    that would need pickle. Nothing in the file is executed.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            metadata, arrays = _read_npz(f)
            load_state = _check_metadata(metadata)
        except _Problem as problem:
            raise ValueError(f"cannot load {path}: {problem}") from problem.__cause__
    try:
        return load_state(metadata["state"], arrays)
    except (ValueError, TypeError, KeyError) as err:
        problem = f"missing field {err}" if isinstance(err, KeyError) else err
        raise ValueError(f"cannot load {path}: its {metadata['kind']} data is inconsistent: "
                         f"{problem}") from err


def _read_npz(f):
    """The metadata dict and every other array of an open .npz file."""
    head = f.read(4)
    if head not in ZIP_MAGIC:
        raise _Problem("not a fastmlp model file: it is empty" if not head else
                       f"not a fastmlp model file: an .npz (zip) archive starts with "
                       f"{ZIP_MAGIC[0]!r}, this file with {head!r}")
    f.seek(0)
    try:
        npz = np.load(f, allow_pickle=False)
    except _READ_ERRORS as err:
        raise _Problem(f"the .npz archive is truncated or corrupted "
                       f"({type(err).__name__}: {err})") from err
    with npz:
        if METADATA not in npz.files:
            raise _Problem(f"not a fastmlp model file: the .npz archive has no {METADATA!r} "
                           f"array (it holds {npz.files[:10]})")
        arrays = {}
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as err:  # what numpy raises for object arrays
                raise _Problem(f"array {name!r} cannot be read without pickle, or its header "
                               f"is damaged ({err}); fastmlp never writes Python objects and "
                               "never unpickles") from err
            except _READ_ERRORS as err:
                raise _Problem(f"array {name!r} is corrupted ({type(err).__name__}: "
                               f"{err})") from err
            if not isinstance(arrays[name], np.ndarray):
                raise _Problem(f"member {name!r} of the archive is not a .npy array")
    raw = arrays.pop(METADATA)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _Problem(f"{METADATA!r} must be a 1-D uint8 array, got {raw.dtype} {raw.shape}")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise _Problem(f"its metadata is not UTF-8 JSON ({err})") from err
    if not isinstance(metadata, dict):
        raise _Problem(f"its metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata, arrays


def _check_metadata(metadata):
    """The load_state function of the kind that valid metadata names."""
    if metadata.get("format") != FORMAT:
        raise _Problem(f"not a fastmlp model file (format {metadata.get('format')!r})")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Problem(f"unknown format version {version!r}")
    if version > FORMAT_VERSION:
        from . import __version__
        raise _Problem(f"written by fastmlp {metadata.get('fastmlp_version')} in format "
                       f"version {version}; this fastmlp {__version__} reads format versions "
                       f"up to {FORMAT_VERSION}: upgrade fastmlp")
    kind = metadata.get("kind")
    if kind not in _KINDS:
        raise _Problem(f"it holds a {kind!r}, which this fastmlp cannot load "
                       f"(known kinds: {sorted(_KINDS)})")
    if not isinstance(metadata.get("state"), dict):
        raise _Problem("its metadata has no 'state' object")
    return _KINDS[kind][2]


# The MLP's side of the protocol, kept here so that model.py needs no change.

_MLP_STATE = {"sizes", "activation", "loss", "output", "dtype", "seed"}


def mlp_save_state(model):
    """State and arrays of an MLP: its constructor arguments and ``params``.

    A seed that is not an integer (a Generator, a SeedSequence) is saved as
    None; the loaded model's own generator starts from the seed, not from
    where the saved model's generator had got to.
    """
    seed = model.seed
    state = {"sizes": [int(s) for s in model.sizes], "activation": model.activation,
             "loss": model.loss, "output": model.output, "dtype": model.dtype.name,
             "seed": int(seed) if isinstance(seed, numbers.Integral) else None}
    if any(model.dropout):
        state["dropout"] = list(model.dropout)
    if model.input_dropout:
        state["input_dropout"] = model.input_dropout
    if hasattr(model, "negative_label_"):
        state["negative_label_"] = int(model.negative_label_)
    return state, {"params": model.params}


def mlp_load_state(state, arrays):
    """An MLP built from its state, with ``params`` copied into its buffer
    (so that its ``weights`` views stay valid)."""
    optional = {"negative_label_", "dropout", "input_dropout"}
    if not _MLP_STATE <= set(state) <= _MLP_STATE | optional:
        raise ValueError(f"MLP state has fields {sorted(state)}, expected {sorted(_MLP_STATE)} "
                         f"and perhaps {', '.join(sorted(optional))}")
    if set(arrays) != {"params"}:
        raise ValueError(f"an MLP file holds the array 'params' only, got {sorted(arrays)}")
    sizes, params = state["sizes"], arrays["params"]
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(type(s) is int and s > 0 for s in sizes)):
        raise ValueError(f"sizes must be a list of two or more positive integers, got {sizes!r}")
    # Checked before building the model, so that bad sizes allocate nothing.
    n_params = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    if params.shape != (n_params,):
        raise ValueError(f"params has shape {params.shape}, but sizes {sizes} need "
                         f"({n_params},)")
    if state["seed"] is not None and type(state["seed"]) is not int:
        raise ValueError(f"seed must be an integer or null, got {state['seed']!r}")
    model = MLP(sizes, activation=state["activation"], loss=state["loss"],
                output=state["output"], dtype=state["dtype"], seed=state["seed"],
                dropout=state.get("dropout", 0.0),
                input_dropout=state.get("input_dropout", 0.0))
    if params.dtype != model.dtype:
        raise ValueError(f"params has dtype {params.dtype}, the metadata says {model.dtype}")
    if "negative_label_" in state:
        label = state["negative_label_"]
        if type(label) is not int or label not in (0, -1) \
                or LOSSES[model.loss].code != BINARY_CROSS_ENTROPY:
            raise ValueError(f"negative_label_ must be 0 or -1 on a binary cross-entropy "
                             f"model, got {label!r} with loss {model.loss!r}")
        model.negative_label_ = label
    model.params[...] = params
    return model


register("MLP", MLP, mlp_save_state, mlp_load_state)
