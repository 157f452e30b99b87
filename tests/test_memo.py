"""The experiments memo (coursekit.memo): what makes a key, what a hit restores, that every memoized
function's result depends on its arguments alone, that the memo is filled from the released
notebook, and that no submission can plant a result in it (an attack, shown to work with the
protection off)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import random
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import ROOT

from coursekit import memo
from coursekit.memo import MEMO_ENV_VAR, memoized

MEMOIZED = {  # module (twin-relative) -> functions, each called with the small arguments below
    "experiments": ["run_two_branch", "branch_a_curve"],
    "normalization": ["run_two_branch_bn", "run_weight_decay"],
    "failure": ["run_combined"],
    "architectures": ["run_unet", "run_conditioned"],
    "lrlab": ["run_scheduled", "range_knob_shifts", "range_fault_curves"],
    "capstone": ["run_pipeline"],
    "augment": ["train_digits"],
}


def _key(*args, **kwargs) -> str | None:
    import hashlib

    h = hashlib.sha256()
    try:
        memo._feed(h, [list(args), kwargs])
    except memo._Uncacheable:
        return None
    return h.hexdigest()


def student_function(x):  # a function a notebook cell defines
    return x


def test_only_plain_values_make_a_key():
    from coursekit import data
    from coursekit.seeding import numpy_rng

    assert _key(1, 2.5, "a", None, (1, [2, {"k": np.arange(3)}])) is not None
    assert _key(np.arange(3)) != _key(np.arange(3.0)) != _key(np.arange(4))
    assert _key(data.make_two_branch(n=8, layout="NCHW", seed=0)) == _key(data.make_two_branch(n=8, layout="NCHW", seed=0))
    assert _key(data.make_two_branch(n=8, layout="NCHW", seed=0)) != _key(data.make_two_branch(n=8, layout="NCHW", seed=1))
    assert _key(numpy_rng) is not None  # coursekit's own function, as its module holds it
    student_function.__module__ = "__main__"
    for plain_looking in (student_function, lambda x: x, object(), type("Layer", (), {}), np.array([object()])):
        assert _key(plain_looking) is None, plain_looking


def test_a_coursekit_function_a_cell_replaced_is_not_a_key(monkeypatch):
    from coursekit import seeding

    original = seeding.numpy_rng
    monkeypatch.setattr(seeding, "numpy_rng", lambda seed: original(seed + 1))
    assert _key(original) is None  # the module no longer holds it: what runs is not what the key names


COMPUTED: list[int] = []  # one entry per real computation of _draw


@memoized
def _draw(n: int, seed: int = 0) -> list[float]:
    """A memoized function of the kind the memo allows: it seeds, then draws."""
    COMPUTED.append(n)
    random.seed(seed)
    np.random.seed(seed)
    return [random.random() for _ in range(n)] + list(np.random.rand(n))


def test_a_hit_returns_the_result_and_the_random_state_the_computation_left(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMO_ENV_VAR, f"write:{tmp_path}")
    made = _draw(3)
    after = (random.random(), float(np.random.rand()))
    assert [name for _, name in memo.entries(tmp_path)] == [f"{__name__}._draw"]

    monkeypatch.setenv(MEMO_ENV_VAR, f"read:{tmp_path}")
    random.seed(123)
    np.random.seed(123)
    COMPUTED.clear()
    assert _draw(3, seed=0) == made  # the default written out is the same call
    assert COMPUTED == []  # read, not computed
    assert (random.random(), float(np.random.rand())) == after
    assert len(_draw(4)) == 8 and COMPUTED == [4]  # other arguments: computed, not read
    assert len(memo.entries(tmp_path)) == 1  # and nothing written in read mode
    monkeypatch.setenv("COURSEKIT_RUN_SIZE", "full")  # functions size their runs from it: another key
    COMPUTED.clear()
    _draw(3)
    assert COMPUTED == [3]


def test_without_the_variable_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(MEMO_ENV_VAR, raising=False)
    assert _draw(2) == _draw(2)
    assert not any(tmp_path.iterdir())


def test_every_memoized_function_is_listed():
    """tests/test_memo.py checks each one below: a new memoized function must be added there."""
    found = set()
    for framework in ("torch", "keras"):
        for path in sorted((ROOT / "coursekit" / framework).glob("*.py")):
            text = path.read_text()
            found |= {(path.stem, line.split("def ", 1)[1].split("(")[0])
                      for line in text.split("@memoized\n")[1:] for line in [line.splitlines()[0]]}
    listed = {(m, f) for m, names in MEMOIZED.items() for f in names}
    assert found == listed, f"memoized but not checked: {sorted(found - listed)}; listed but not memoized: {sorted(listed - found)}"


# small arguments for each memoized function: a few steps each
SMALL = {
    "run_two_branch": dict(scale=10.0, n=128, epochs=1, batch_size=32),
    "branch_a_curve": dict(scale=10.0, n=128, epochs=1, batch_size=32),
    "run_two_branch_bn": dict(scale=10.0, n=128, epochs=1, batch_size=32, norm="batch"),
    "run_weight_decay": dict(weight_decay=1e-3, n=128, epochs=1),
    "run_combined": dict(n=128, epochs=1),
    "run_unet": dict(n=32, epochs=1),
    "run_conditioned": dict(n=64, epochs=1),
    "run_scheduled": None,  # needs data: made in the test
    "range_knob_shifts": dict(knobs=("25 steps",)),
    "range_fault_curves": dict(),
    "run_pipeline": dict(n=128, epochs=1),
    "train_digits": None,
}


def _fingerprint(obj, depth=0):
    """What a result says, without wall-clock times: numbers, strings and weights."""
    if depth > 12:
        return None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return round(obj, 6) if obj == obj else "nan"
    if isinstance(obj, np.ndarray):
        return np.round(obj.astype(float), 6).tolist() if obj.dtype != object else None
    if isinstance(obj, np.generic):
        return _fingerprint(obj.item(), depth)
    if isinstance(obj, dict):
        return {str(k): _fingerprint(v, depth + 1) for k, v in obj.items() if "second" not in str(k)}
    if isinstance(obj, (list, tuple)):
        return [_fingerprint(v, depth + 1) for v in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _fingerprint(getattr(obj, f.name), depth + 1) for f in fields(obj) if "second" not in f.name}
    if hasattr(obj, "state_dict"):  # a torch module
        return [_fingerprint(v.detach().cpu().numpy(), depth + 1) for v in obj.state_dict().values()]
    if hasattr(obj, "get_weights"):  # a keras model
        return [_fingerprint(w, depth + 1) for w in obj.get_weights()]
    if hasattr(obj, "__dict__"):
        return _fingerprint(vars(obj), depth + 1)
    return type(obj).__name__


def _digests(state: dict) -> dict[str, bytes]:
    return {name: pickle.dumps(value, protocol=4) for name, value in state.items()}


def _scramble(seed: int) -> None:
    """Draw from every global generator, as a student's cells before the call might."""
    random.seed(seed)
    np.random.seed(seed)
    for _ in range(seed % 5 + 1):
        random.random()
        np.random.rand(7)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed + 11)
        torch.rand(13)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed + 17)
        keras.random.normal((3,))


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_every_memoized_function_depends_on_its_arguments_alone(framework):
    """The premise of the key: each memoized function seeds every generator before it draws, so the
    state a student's cells left cannot change what it returns, nor the state it leaves."""
    twin = importlib.import_module(f"coursekit.{framework}")
    from coursekit.data import make_two_branch

    layout = "NCHW" if framework == "torch" else "NHWC"
    failures = []
    for module, names in MEMOIZED.items():
        mod = importlib.import_module(f"coursekit.{framework}.{module}")
        for name in names:
            fn = getattr(mod, name)
            kwargs = SMALL[name]
            if name == "run_scheduled":
                args, kwargs = (make_two_branch(n=128, layout=layout, seed=0), "cosine"), dict(base_lr=0.01, epochs=1, batch_size=32)
            elif name == "train_digits":
                from coursekit import data

                x, y, xt, yt = data.load_digits(layout)
                args, kwargs = ((x[:128], y[:128]), (xt[:64], yt[:64])), dict(epochs=1)
            else:
                args = ()
            params = inspect.signature(fn).parameters
            kwargs = {k: v for k, v in kwargs.items() if k in params or any(p.kind == p.VAR_KEYWORD for p in params.values())}
            seen = []
            for seed in (1, 2):
                _scramble(seed)
                before = memo._rng_state()
                result = fn.__wrapped__(*args, **kwargs)
                seen.append((_fingerprint(result), _digests(memo._touched(before, memo._rng_state()))))
            # the same result, and every generator it moved left in the same state (a generator it
            # did not move keeps the student's state: a hit leaves it alone)
            if seen[0] != seen[1]:
                failures.append(f"{module}.{name}")
    assert twin is not None and not failures, f"{framework}: results or random state depend on the state before: {failures}"


# ---------------------------------------------------------------- the memo is filled from the release
def _notebook(*sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _run_sandboxed(nb, folder: Path, mode: str):
    from coursekit.autograde.bounds import BoundedExecute

    pp = BoundedExecute(record=True, audit=False, memo_dir=str(folder), memo_write=(mode == "write"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBGRADER_EXECUTION", "autograde")
        pp.preprocess(nb, {"metadata": {"path": str(folder.parent)}, "nbgrader": {"assignment": "x", "notebook": "y"}})
    return "".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells for o in c.outputs)


CURVE = "from coursekit.torch import branch_a_curve\nc = branch_a_curve(scale=10.0, n=128, epochs=2, batch_size=32)\n"


@pytest.mark.slow
def test_the_memo_is_made_from_the_released_notebook_unanswered(tmp_path):
    """ensure_memo runs the student notebook as released (answers raising NotImplementedError) and
    keeps its memoized calls; the run after it reads them."""
    from coursekit.autograde.expected import ensure_memo

    release = tmp_path / "lessons" / "x" / "pytorch.ipynb"
    release.parent.mkdir(parents=True)
    nbformat.write(_notebook("def answer():\n    raise NotImplementedError()", "answer()", CURVE + "print('ACC', c.accuracy_a)"), release)
    import os
    import time

    old, recent = tmp_path / "expected" / "x" / "pytorch.memo-old", tmp_path / "expected" / "x" / "pytorch.memo-recent"
    for other in (old, recent):  # memos of other keys (an edited lesson; a grader at another run size)
        other.mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    folder = ensure_memo(None, tmp_path / "expected", release, "x", "pytorch")
    assert [name for _, name in memo.entries(folder)] == ["coursekit.torch.experiments.branch_a_curve"]
    assert not old.exists() and recent.exists()  # a day old: removed; recent: perhaps in use, kept
    assert ensure_memo(None, tmp_path / "expected", release, "x", "pytorch") == folder  # made once
    text = _run_sandboxed(_notebook(CURVE + "import coursekit.memo as m, os\nprint('MEMO', os.environ['COURSEKIT_MEMO'])"),
                          folder, "read")
    assert f"MEMO read:{folder.resolve()}" in text


POISON = f"""
import os, pickle, pathlib
from coursekit.experiments import BranchCurve
folder = pathlib.Path(os.environ["COURSEKIT_MEMO"].split(":", 1)[1])
planted = 0
for p in folder.glob("*.pickle"):
    result, state = pickle.loads(p.read_bytes())
    result.accuracy_a = [1.0] * len(result.accuracy_a)  # every later student's run 'learns' at once
    try:
        p.write_bytes(pickle.dumps((result, state)))
        planted += 1
    except OSError as e:
        print("PLANT blocked", type(e).__name__)
print("PLANTED", planted)
"""


@pytest.mark.slow
@pytest.mark.parametrize("protected", [True, False])
def test_a_submission_cannot_plant_a_result_for_later_students(tmp_path, protected):
    """Attack (memo poisoning): a submission rewrites the memo's results, so that every student graded
    after it gets the planted numbers. Read-only in the sandbox, it cannot; with the memo writable
    (the protection off) the next kernel reads the planted result."""
    folder = tmp_path / "memo"
    folder.mkdir()
    folder.chmod(0o755)
    _run_sandboxed(_notebook(CURVE), folder, "write")  # the unanswered run fills it
    for p in [folder, *folder.iterdir()]:  # writable to every uid: the read-only mount alone protects it
        p.chmod(0o777 if p.is_dir() else 0o666)
    text = _run_sandboxed(_notebook(POISON), folder, "read" if protected else "write")
    later = _run_sandboxed(_notebook(CURVE + "print('LATER', c.accuracy_a)"), folder, "read")
    if protected:
        assert "PLANTED 0" in text and "PLANT blocked" in text, text
        assert "LATER [1.0, 1.0]" not in later, later
    else:
        assert "PLANTED 1" in text, text
        assert "LATER [1.0, 1.0]" in later, later


def _refuse():
    raise TypeError("could not be deserialized properly")  # what a Keras model with such a layer says


class _PicklesButDoesNotLoad:
    def __reduce__(self):
        return (_refuse, ())


@memoized
def _unloadable(n: int) -> _PicklesButDoesNotLoad:
    return _PicklesButDoesNotLoad()


def test_a_result_that_does_not_load_back_is_not_kept_and_a_broken_entry_is_computed(tmp_path, monkeypatch):
    """Lesson 08's Keras pipelines pickle but do not load: kept, they broke the cell that read them."""
    monkeypatch.setenv(MEMO_ENV_VAR, f"write:{tmp_path}")
    assert isinstance(_unloadable(1), _PicklesButDoesNotLoad)
    assert memo.entries(tmp_path) == []
    _draw(2)
    for path in tmp_path.glob("*.pickle"):  # an entry that fails to load, however it came to be
        path.write_bytes(pickle.dumps(_PicklesButDoesNotLoad()))
    monkeypatch.setenv(MEMO_ENV_VAR, f"read:{tmp_path}")
    COMPUTED.clear()
    assert len(_draw(2)) == 4 and COMPUTED == [2]


FIT = """
import json, sys, time
import numpy as np
from coursekit import keras as ck
from coursekit.keras.deepnet import plain_cnn
import keras
from keras import layers

ck.setup(seed=0)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 8, 8, 1)).astype("float32"), rng.integers(0, 10, 96)
keras.utils.set_random_seed(0)
built_here = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"), layers.Flatten(),
                               layers.Dense(10)])
out = {}
begin = time.perf_counter()
for name, net in [("coursekit", ck.init_model(plain_cnn(3, 4, "relu"), "he_normal", seed=0)), ("cell", built_here)]:
    h = ck.fit(net, (x, y), (x[:32], y[:32]), epochs=2, batch_size=32, seed=0, progress=False)
    iterations = int(net.optimizer.iterations.numpy())
    moments = float(sum(np.abs(np.asarray(v)).sum() for v in net.optimizer.variables[2:]))
    again = ck.fit(net, (x, y), epochs=1, batch_size=32, seed=1, progress=False)  # from where the first left
    out[name] = dict(loss=h["loss"], val=h["val_accuracy"], again=again["loss"],
                     out=np.asarray(net(x[:4])).tolist(), iterations=iterations, moments=moments)
out["draw"] = float(np.random.random())
out["seconds"] = time.perf_counter() - begin
print("RESULT" + json.dumps(out))
"""


def _fit_run(tmp_path, memo_value: str) -> dict:
    import json
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != MEMO_ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])  # this checkout's coursekit
    env[MEMO_ENV_VAR] = memo_value
    script = tmp_path / "fit_script.py"
    script.write_text(FIT)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1])


@pytest.mark.slow
def test_a_keras_fit_of_a_built_in_architecture_is_read_back_whole(tmp_path):
    """ck.fit (Keras) keeps a run of a model made of Keras and coursekit layers, keyed by its
    architecture, weights, data and settings: read back, the history, the trained weights and the
    optimizer's state (a second fit continues from it) are those the training gave; a model built
    in a cell from Keras layers counts too."""
    folder = tmp_path / "memo"
    trained = _fit_run(tmp_path, f"write:{folder}")
    names = [name for _, name in memo.entries(folder)]
    assert names.count("coursekit.keras.train.fit") == 4, names  # two models, two fits each
    read = _fit_run(tmp_path, f"read:{folder}")
    for name in ("coursekit", "cell"):
        for field in ("loss", "val", "again", "out", "moments"):
            np.testing.assert_allclose(read[name][field], trained[name][field], rtol=1e-6, atol=1e-7)
        assert read[name]["iterations"] == trained[name]["iterations"] == 2 * 3  # Adam's state, as training left it
    assert read["draw"] == trained["draw"]  # numpy's generator as training left it
    assert read["seconds"] < trained["seconds"] / 2, (read["seconds"], trained["seconds"])


def test_a_keras_model_with_a_cells_function_has_no_fit_key():
    pytest.importorskip("keras")
    import keras

    from coursekit.keras.train import _architecture_key

    def act(v):  # a cell's function: what it computes is not in the config
        return keras.ops.relu(v)

    act.__module__ = "__main__"
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation=act)])
    assert _architecture_key(net) is None
    assert _architecture_key(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="relu")])) is not None
