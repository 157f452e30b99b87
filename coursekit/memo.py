"""Grading reuses the lesson's own experiments: `memoized` training functions.

A lesson's demonstration cells train the same seeded networks in every student's notebook, and a
class's grading executes each notebook once per student: most of the grading time is those
experiments, repeated. Before the instructor run (coursekit.autograde.expected), the grader runs
the released notebook once with no answer written and keeps what each `memoized` call returned;
the instructor run and the students' kernels, graded afterwards, read those results instead of
training again. A student's own kernel in JupyterLab has no memo and trains as the lesson says.

Why a result can be reused, and when it is not:

- Only functions that seed every generator themselves before drawing (`seed_everything(seed)`)
  are memoized: their result depends on their arguments alone (tests/test_memo.py checks each
  one against a scrambled random state). The key is the function and its arguments.
- Only plain values make a key: numbers, strings, None, tuples, lists, dicts, numpy arrays,
  coursekit's data classes and coursekit's own modules and functions. An argument the student
  wrote (a function, a layer class, a model) makes the call uncacheable: it always runs.
- After a hit the generators the computation moved (of Python's, numpy's, torch's, TensorFlow's
  and Keras') are set to the state it left them in, and the others keep theirs, so every later cell
  draws what it would have drawn.
- The memo is made by running the *released* notebook with no answer written
  (coursekit.autograde.expected.ensure_memo): it holds only what every student's notebook
  computes before they write a line, never a solution's or a hidden test's call. It is
  read-only in the students' sandbox, so no submission can plant a result for anyone.

`COURSEKIT_MEMO` selects it: `write:<folder>` (the unanswered run) or `read:<folder>` (the
instructor run and grading).
Unset, `memoized` functions simply run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import pickle
import random
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["MEMO_ENV_VAR", "active", "cached", "memoized", "entries"]

MEMO_ENV_VAR = "COURSEKIT_MEMO"
INDEX = "index.txt"
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class _Uncacheable(Exception):
    """An argument that is not a plain value: the call runs."""


def _mode() -> tuple[str, Path] | None:
    value = os.environ.get(MEMO_ENV_VAR, "")
    mode, _, folder = value.partition(":")
    if mode not in ("read", "write") or not folder:
        return None
    return mode, Path(folder)


# ---------------------------------------------------------------- keys
def _feed(h: Any, obj: Any, depth: int = 0) -> None:
    """Hash `obj` into `h` by value, or raise _Uncacheable."""
    if depth > 20:
        raise _Uncacheable("nested too deep")
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, np.generic):
        h.update(f"np.{obj.dtype}:{obj!r};".encode())
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise _Uncacheable("object array")
        h.update(f"nd:{obj.dtype}:{obj.shape};".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (tuple, list)):
        h.update(f"{type(obj).__name__}[{len(obj)}];".encode())
        for item in obj:
            _feed(h, item, depth + 1)
    elif isinstance(obj, dict):
        h.update(f"dict[{len(obj)}];".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k, depth + 1)
            _feed(h, obj[k], depth + 1)
    elif isinstance(obj, types.ModuleType) and _ours(obj.__name__):
        h.update(f"module:{obj.__name__};".encode())
    elif isinstance(obj, types.FunctionType) and _ours(obj.__module__) and "<" not in obj.__qualname__:
        # one of coursekit's own functions, as its module holds it now (not one a cell put there)
        if getattr(sys.modules.get(obj.__module__), obj.__name__, None) is not obj:
            raise _Uncacheable("a replaced function")
        h.update(f"function:{obj.__module__}.{obj.__qualname__};".encode())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type) and _ours(type(obj).__module__):
        h.update(f"data:{type(obj).__module__}.{type(obj).__qualname__};".encode())
        for f in dataclasses.fields(obj):
            h.update(f.name.encode())
            _feed(h, getattr(obj, f.name), depth + 1)
    else:
        raise _Uncacheable(type(obj).__name__)


def _ours(module: str | None) -> bool:
    return bool(module) and (module == "coursekit" or module.startswith("coursekit."))


# ---------------------------------------------------------------- random generators
def _rng_state() -> dict[str, Any]:
    """Every generator a lesson draws from, as plain values (frameworks only once imported)."""
    state: dict[str, Any] = {"random": random.getstate(), "numpy": np.random.get_state()}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state"):
        state["torch"] = torch.get_rng_state().numpy().tobytes()
    if "tensorflow" in sys.modules:
        try:
            from tensorflow.python.eager import context

            ctx = context.context()
            rng = getattr(ctx, "_rng", None)
            state["tensorflow"] = (getattr(ctx, "_seed", None), rng.getstate() if rng is not None else None)
        except Exception:  # an internal API: without it, TensorFlow's op seeds are simply not covered
            pass
    if "keras" in sys.modules:
        try:
            from keras.src.backend.common import global_state

            gen = global_state.get_global_attribute("global_seed_generator")
            state["keras"] = (global_state.get_global_attribute("global_random_seed"),
                              None if gen is None else gen.state.value.numpy())
        except Exception:
            pass
    return state


def _touched(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The generators the call moved, in the state it left them in. One it did not draw from is
    left out: after a hit it keeps whatever state the student's own cells gave it, as it would."""
    return {name: value for name, value in after.items()
            if name not in before or pickle.dumps(before[name], protocol=4) != pickle.dumps(value, protocol=4)}


def _set_rng_state(state: dict[str, Any]) -> None:
    if "random" in state:
        random.setstate(state["random"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(torch.from_numpy(np.frombuffer(state["torch"], dtype=np.uint8).copy()))
    if "tensorflow" in state:
        from tensorflow.python.eager import context

        ctx = context.context()
        seed, rng = state["tensorflow"]
        ctx._seed = seed
        if rng is None:
            ctx._rng = None
        else:
            ctx._rng = random.Random()
            ctx._rng.setstate(rng)
    if "keras" in state:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import global_seed_generator

        seed, gen = state["keras"]
        global_state.set_global_attribute("global_random_seed", seed)
        if gen is None:
            global_state.set_global_attribute("global_seed_generator", None)
        else:
            global_seed_generator().state.assign(gen)


@contextlib.contextmanager
def _quiet():
    """Warnings of a trial load stay out of the cell's stderr (a test cell writing there fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------- the decorator
def active() -> bool:
    """Whether this process reads or writes a memo (only while grading)."""
    return _mode() is not None


def cached(name: str, key: Any, compute: Callable[[], T]) -> T:
    """`compute()`, or the unanswered run's result for (`name`, `key`) while grading.

    `key` must hold, as plain values, everything `compute`'s result depends on (see the module's
    docstring); a `key` that holds anything else makes the call run. `memoized` keys a function by
    its arguments; `coursekit.keras.train.fit` keys a training run by the model's architecture and
    weights, its data and its settings."""
    mode = _mode()
    if mode is None:
        return compute()
    kind, folder = mode
    h = hashlib.sha256(name.encode() + b";")
    # the run size a function falls back on for arguments left at None (coursekit.runsize)
    h.update(f"{os.environ.get('COURSEKIT_RUN_SIZE', '')};{bool(os.environ.get('NBGRADER_EXECUTION'))};".encode())
    try:
        _feed(h, key)
    except _Uncacheable:
        return compute()
    digest = h.hexdigest()
    path = folder / f"{digest}.pickle"
    if kind == "read":
        try:
            with _quiet():
                result, after = pickle.loads(path.read_bytes())
        except Exception:  # missing, or a result that no longer loads: compute it, as without a memo
            return compute()
        _set_rng_state(after)
        return result
    before = _rng_state()
    result = compute()
    try:
        blob = pickle.dumps((result, _touched(before, _rng_state())), protocol=pickle.HIGHEST_PROTOCOL)
        # kept only if it loads back: a Keras model whose layers do not deserialize pickles
        # fine and fails on loading (lesson 08's pipelines), which would break the reading cell
        with _quiet():
            pickle.loads(blob)
    except Exception:  # a result that does not pickle, or not back: simply not kept
        return result
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{digest}.{os.getpid()}.part"
    part.write_bytes(blob)
    os.replace(part, path)
    with open(folder / INDEX, "a") as index:
        index.write(f"{digest} {name}\n")
    return result


def memoized(fn: F) -> F:
    """`fn`, reusing the unanswered run's result for the same arguments while grading (see the
    module's docstring). `fn` must seed every generator before it draws (`seed_everything`) and
    return something that pickles; a result that does not is simply not kept."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _mode() is None:
            return fn(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # let fn itself say what is wrong with the call
            return fn(*args, **kwargs)
        bound.apply_defaults()  # f(seed=0) and f() are one call
        return cached(name, dict(bound.arguments), lambda: fn(*args, **kwargs))

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------- the grader's side
def entries(folder: Path) -> list[tuple[str, str]]:
    """(key, function) for every result kept in `folder`, in the order they were made."""
    try:
        lines = (Path(folder) / INDEX).read_text().splitlines()
    except OSError:
        return []
    return [tuple(line.split(" ", 1)) for line in lines if " " in line]  # type: ignore[misc]
