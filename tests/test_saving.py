"""fastmlp.saving: round trips, atomic writes, and refusing bad files."""

import json
import os
import re

import numpy as np
import pytest

import fastmlp
from fastmlp import saving
from fastmlp.datasets import load_digits

# (loss, output, labels the targets are drawn from); labels None: float targets.
PROBLEMS = [
    ("softmax_cross_entropy", None, (0, 1, 2)),
    ("binary_cross_entropy", None, (0, 1)),
    ("logistic", None, (-1, 1)),
    ("mse", "sigmoid", (0, 1, 2)),
    ("mse", None, None),
]


def fitted(loss, output, labels, dtype, rng):
    """A (5, 4, k) net fitted for one epoch on 40 random samples, and X (40, 5)."""
    X = rng.normal(size=(40, 5))
    k = 1 if loss in ("binary_cross_entropy", "logistic") else 3
    if labels is None:
        y = rng.normal(size=(40, k))
    else:
        y = rng.choice(labels, size=40 if k == 3 else (40, 1))
    net = fastmlp.MLP((5, 4, k), "tanh", loss=loss, output=output, dtype=dtype, seed=3)
    net.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0)
    return net, X


def read(path):
    """The metadata dict and the arrays of a saved file."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    return json.loads(arrays.pop(saving.METADATA).tobytes()), arrays


def write(path, metadata, arrays, allow_pickle=False):
    """A file laid out as save lays it out, from metadata as given."""
    text = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **{saving.METADATA: text}, **arrays, allow_pickle=allow_pickle)


@pytest.fixture
def saved(tmp_path, rng):
    """The path of a saved float64 softmax net, and the net."""
    net, _ = fitted("softmax_cross_entropy", None, (0, 1, 2), "float64", rng)
    path = tmp_path / "net.npz"
    saving.save(net, path)
    return path, net


@pytest.mark.parametrize("loss, output, labels", PROBLEMS)
def test_loaded_model_predicts_bit_identically(tmp_path, rng, dtype, loss, output, labels):
    net, X = fitted(loss, output, labels, dtype, rng)
    saving.save(net, tmp_path / "net.npz")
    loaded = saving.load(tmp_path / "net.npz")
    assert type(loaded) is fastmlp.MLP
    assert repr(loaded) == repr(net)
    assert loaded.params.dtype == net.params.dtype
    assert np.array_equal(loaded.params, net.params)
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert np.array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert getattr(loaded, "negative_label_", None) == getattr(net, "negative_label_", None)
    # The weights views are views of the loaded buffer.
    W, b = loaded.weights[0]
    assert np.shares_memory(W, loaded.params) and np.shares_memory(b, loaded.params)


def test_per_layer_activations_and_dropout_save_load_and_predict_bit_identically(tmp_path, rng, dtype):
    X = rng.normal(size=(30, 5))
    net = fastmlp.MLP((5, 6, 4, 3), ("tanh", "leaky_relu"), dtype=dtype, seed=0,
                      dropout=(0.25, 0.0), input_dropout=0.1)
    net.fit(X, rng.integers(0, 3, 30), epochs=1, batch_size=8, verbose=0)
    saving.save(net, tmp_path / "net.npz")
    loaded = saving.load(tmp_path / "net.npz")
    assert loaded.activations == ("tanh", "leaky_relu") and repr(loaded) == repr(net)
    assert loaded.dropout == (0.25, 0.0) and loaded.input_dropout == 0.1
    assert np.array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_digits_model_saved_after_fit_evaluates_the_same(tmp_path):
    (X, y), (X_test, y_test) = load_digits()
    net = fastmlp.MLP((64, 32, 10), seed=0)
    net.fit(X, y, epochs=3, batch_size=32, lr=0.1, verbose=0)
    saving.save(net, str(tmp_path / "digits.npz"))
    loaded = saving.load(str(tmp_path / "digits.npz"))
    assert np.array_equal(loaded.predict(X_test), net.predict(X_test))
    assert loaded.evaluate(X_test, y_test) == net.evaluate(X_test, y_test)
    assert loaded.evaluate(X_test, y_test)[1] > 0.8


def test_the_file_holds_params_and_json_metadata(saved):
    path, net = saved
    metadata, arrays = read(path)
    assert metadata == {
        "format": "fastmlp", "format_version": saving.FORMAT_VERSION, "kind": "MLP",
        "fastmlp_version": fastmlp.__version__,
        "state": {"sizes": [5, 4, 3], "activation": "tanh", "loss": "softmax_cross_entropy",
                  "output": "softmax", "dtype": "float64", "seed": 3}}
    assert list(arrays) == ["params"]
    assert np.array_equal(arrays["params"], net.params)


def test_a_seed_that_is_not_an_integer_is_saved_as_null(tmp_path):
    net = fastmlp.MLP((2, 2), seed=np.random.default_rng(0))
    saving.save(net, tmp_path / "net.npz")
    assert read(tmp_path / "net.npz")[0]["state"]["seed"] is None
    assert np.array_equal(saving.load(tmp_path / "net.npz").params, net.params)


def test_the_exact_path_is_used_and_no_temporary_file_stays(tmp_path):
    net = fastmlp.MLP((3, 2), seed=0)
    saving.save(net, tmp_path / "model")
    saving.save(net, str(tmp_path / "model.bin"))
    assert sorted(os.listdir(tmp_path)) == ["model", "model.bin"]
    assert np.array_equal(saving.load(tmp_path / "model").params, net.params)


def test_saving_replaces_an_existing_file(saved):
    path, _ = saved
    other = fastmlp.MLP((2, 3), seed=1)
    saving.save(other, path)
    assert saving.load(path).sizes == (2, 3)
    assert os.listdir(path.parent) == [path.name]


def test_file_and_folder_are_synced_around_the_rename(saved, monkeypatch):
    path, net = saved
    events = []
    for name in ("fsync", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, real=real, name=name: (events.append(name),
                                                                         real(*a))[1])
    saving.save(net, path)
    assert events == ["fsync", "replace", "fsync"]


class Crash(Exception):
    pass


def crash(*args, **kwargs):
    raise Crash("simulated crash")


@pytest.mark.parametrize("target", [(os, "replace"), (os, "fsync"),
                                    (np.lib.format, "write_array")])
def test_a_failed_save_leaves_the_old_file_and_no_temporary(saved, monkeypatch, target):
    path, _ = saved
    before = path.read_bytes()
    monkeypatch.setattr(*target, crash)
    with pytest.raises(Crash):
        saving.save(fastmlp.MLP((7, 7), seed=0), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(Crash):
        saving.save(fastmlp.MLP((2, 2), seed=0), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []


def test_every_truncation_is_refused(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError, match=f"cannot load {re.escape(str(cut))}: "):
            saving.load(cut)


def test_every_flipped_byte_is_refused_or_harmless(saved, tmp_path):
    """A changed byte makes load refuse the file, or sits where the zip format
    ignores it (a time stamp) and the model loads unchanged; a change in the
    parameters or the metadata is always refused."""
    path, net = saved
    data = path.read_bytes()
    payload = [(data.find(part), len(part))
               for part in (net.params.tobytes(), json.dumps(read(path)[0]).encode())]
    assert min(start for start, _ in payload) > 0
    must_refuse = {i for start, length in payload for i in range(start, start + length)}
    bad = tmp_path / "bad.npz"
    for i in range(len(data)):
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
        try:
            loaded = saving.load(bad)
        except ValueError as err:
            assert str(err).startswith(f"cannot load {bad}: ")
        else:
            assert i not in must_refuse, f"a changed byte {i} was not noticed"
            assert repr(loaded) == repr(net) and np.array_equal(loaded.params, net.params)


def test_a_flipped_parameter_byte_is_reported_as_corruption(saved):
    path, net = saved
    data = bytearray(path.read_bytes())
    data[data.find(net.params[5:6].tobytes())] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="array 'params' is corrupted.*CRC"):
        saving.load(path)


@pytest.mark.parametrize("content, problem", [
    (b"", "not a fastmlp model file: it is empty"),
    (b"sizes,activation\n64,relu\n", "not a fastmlp model file: an .npz"),
    (b"\x93NUMPY\x01\x00", "not a fastmlp model file: an .npz"),
])
def test_files_that_are_not_archives_are_refused(tmp_path, content, problem):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot load {re.escape(str(path))}: {problem}"):
        saving.load(path)


def test_a_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((2, 3)), y_train=np.zeros(2))
    with pytest.raises(ValueError, match="not a fastmlp model file: .* no 'fastmlp_metadata'"):
        saving.load(path)


def test_an_object_array_is_refused_without_unpickling(saved, tmp_path):
    """The object array's pickle would create a folder if it were unpickled."""
    path, _ = saved
    metadata, arrays = read(path)
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    arrays["params"] = np.array([Payload()], dtype=object)
    write(path, metadata, arrays, allow_pickle=True)
    with pytest.raises(ValueError, match="'params' cannot be read without pickle.*Object arrays.*never unpickles"):
        saving.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.update(format_version=saving.FORMAT_VERSION + 1),
     "format version 2; this fastmlp .* reads format versions up to 1: upgrade"),
    (lambda m: m.update(format_version="1"), "unknown format version '1'"),
    (lambda m: m.update(format_version=0), "unknown format version 0"),
    (lambda m: m.update(format="keras"), "not a fastmlp model file \\(format 'keras'\\)"),
    (lambda m: m.update(kind="os.system"), "holds a 'os.system', which this fastmlp cannot"),
    (lambda m: m.pop("state"), "no 'state' object"),
    (lambda m: m["state"].update(sizes=[5, 4, 4]), r"params has shape \(39,\), but sizes "
                                                   r"\[5, 4, 4\] need \(44,\)"),
    (lambda m: m["state"].update(sizes=[10**9, 10**9]), "need"),
    (lambda m: m["state"].update(sizes=[5, 4.0, 3]), "positive integers"),
    (lambda m: m["state"].update(dtype="float32"), "params has dtype float64, the metadata"),
    (lambda m: m["state"].update(activation="rm -rf"), "unknown activation"),
    (lambda m: m["state"].update(seed="0"), "seed must be an integer"),
    (lambda m: m["state"].update(negative_label_=-1), "negative_label_ must be 0 or -1 on a"),
    (lambda m: m["state"].pop("loss"), "MLP state has fields"),
])
def test_inconsistent_metadata_is_refused(saved, change, problem):
    path, _ = saved
    metadata, arrays = read(path)
    change(metadata)
    write(path, metadata, arrays)
    with pytest.raises(ValueError, match=f"cannot load {re.escape(str(path))}: .*{problem}"):
        saving.load(path)


def test_extra_arrays_are_refused(saved):
    path, _ = saved
    metadata, arrays = read(path)
    write(path, metadata, {**arrays, "extra": np.zeros(2)})
    with pytest.raises(ValueError, match="'params' only, got \\['extra', 'params'\\]"):
        saving.load(path)


@pytest.mark.parametrize("raw, problem", [
    (np.frombuffer(b"not json", np.uint8), "not UTF-8 JSON"),
    (np.frombuffer(b"[1, 2]", np.uint8), "must be a JSON object, got list"),
    (np.zeros(3, np.float32), "must be a 1-D uint8 array"),
])
def test_unreadable_metadata_is_refused(tmp_path, raw, problem):
    path = tmp_path / "net.npz"
    np.savez(path, **{saving.METADATA: raw}, params=np.zeros(3))
    with pytest.raises(ValueError, match=problem):
        saving.load(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        saving.load(tmp_path / "absent.npz")


def test_objects_of_unregistered_types_are_refused(tmp_path):
    class Subclass(fastmlp.MLP):
        pass

    for obj in (object(), Subclass((2, 2))):
        with pytest.raises(TypeError, match="cannot save a .*savable kinds are \\['MLP'"):
            saving.save(obj, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


class Labelled:
    """A toy savable object: an MLP and its string class labels (k,)."""

    def __init__(self, net, classes):
        self.net, self.classes_ = net, classes

    def _save_state(self):
        state, arrays = saving.mlp_save_state(self.net)
        return {"net": state}, {**arrays, "classes_": self.classes_}

    @classmethod
    def _load_state(cls, state, arrays):
        classes = arrays.pop("classes_")
        return cls(saving.mlp_load_state(state["net"], arrays), classes)


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that test kinds do not stay."""
    monkeypatch.setattr(saving, "_KINDS", dict(saving._KINDS))


def test_a_registered_class_round_trips(tmp_path, registry):
    saving.register("Labelled")(Labelled)
    obj = Labelled(fastmlp.MLP((3, 2), seed=0), np.array(["cat", "dog"]))
    saving.save(obj, tmp_path / "obj.npz")
    assert read(tmp_path / "obj.npz")[0]["kind"] == "Labelled"
    loaded = saving.load(tmp_path / "obj.npz")
    assert type(loaded) is Labelled
    assert np.array_equal(loaded.classes_, obj.classes_)
    assert np.array_equal(loaded.net.params, obj.net.params)


def test_a_kind_names_one_class(registry):
    with pytest.raises(ValueError, match="kind 'MLP' is already registered"):
        saving.register("MLP", Labelled)
    with pytest.raises(ValueError, match="kind must be a non-empty string"):
        saving.register("", Labelled)


@pytest.mark.parametrize("arrays, error, problem", [
    ({"classes_": np.array(["a", None], dtype=object)}, TypeError, "would need pickle"),
    ({"classes_": ["a", "b"]}, TypeError, "must be an ndarray"),
    ({saving.METADATA: np.zeros(2)}, ValueError, "reserved"),
])
def test_arrays_that_cannot_be_saved_are_refused(tmp_path, registry, arrays, error, problem):
    saving.register("Labelled", Labelled, save_state=lambda obj: ({}, arrays))
    with pytest.raises(error, match=problem):
        saving.save(Labelled(None, None), tmp_path / "obj.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("state", [{"n": np.int64(1)}, {"tol": float("nan")}])
def test_state_that_is_not_plain_json_is_refused(tmp_path, registry, state):
    saving.register("Labelled", Labelled, save_state=lambda obj: (state, {}))
    with pytest.raises(TypeError, match="Labelled state must hold plain JSON values"):
        saving.save(Labelled(None, None), tmp_path / "obj.npz")
    assert os.listdir(tmp_path) == []
