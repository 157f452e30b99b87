"""Tests for the framework-neutral core: data, runsize, seeding, shapes."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from coursekit import data, runsize, seeding
from coursekit.data import (
    CIFAR10_CLASSES,
    DISTRIBUTIONS,
    TwoBranchData,
    load_cifar10,
    load_digits,
    make_two_branch,
    resize_image,
    sample_images,
    write_fake_cifar10,
)
from coursekit.runsize import FULL, SMALL, RunSize, run_size
from coursekit.seeding import numpy_rng, seed_everything
from coursekit.shapes import ShapeMismatchError, concat_output_shape

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that imports coursekit from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("COURSEKIT_RUN_SIZE", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ------------------------------------------------------------------------------------------
# Import hygiene
# ------------------------------------------------------------------------------------------


def test_core_modules_import_no_framework_or_heavy_library():
    proc = run_python(
        """
        import sys
        import coursekit.data, coursekit.runsize, coursekit.seeding, coursekit.shapes
        heavy = ("torch", "tensorflow", "keras", "sklearn", "matplotlib")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_seed_everything_does_not_import_frameworks():
    proc = run_python(
        """
        import sys
        from coursekit.seeding import seed_everything
        seed_everything(1)
        print(sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------
# load_digits
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, size, image_shape",
    [
        ("NCHW", 8, (1, 8, 8)),
        ("NHWC", 8, (8, 8, 1)),
        ("NCHW", 16, (1, 16, 16)),
        ("NHWC", 24, (24, 24, 1)),
        ("nhwc", 8, (8, 8, 1)),
    ],
)
def test_load_digits_shapes_dtypes_ranges(layout, size, image_shape):
    x_train, y_train, x_test, y_test = load_digits(layout=layout, size=size)
    assert x_train.shape == (1347, *image_shape)
    assert x_test.shape == (450, *image_shape)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(y_train)) == set(range(10))


def test_load_digits_upsampling_repeats_pixels():
    small = load_digits(size=8)[0]
    big = load_digits(size=16)[0]
    np.testing.assert_array_equal(big[:, :, ::2, ::2], small)
    np.testing.assert_array_equal(big[:, :, 1::2, 1::2], small)


def test_load_digits_layouts_hold_same_images():
    nchw = load_digits("NCHW")[0]
    nhwc = load_digits("NHWC")[0]
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), nhwc)


def test_load_digits_unnormalized_and_dtype():
    x_train, *_ = load_digits(normalize=False, dtype="float64")
    assert x_train.dtype == np.float64
    assert x_train.max() == 16.0


def test_load_digits_is_stratified():
    _, y_train, _, y_test = load_digits(test_size=0.25)
    train_frac = np.bincount(y_train) / y_train.size
    test_frac = np.bincount(y_test) / y_test.size
    np.testing.assert_allclose(train_frac, test_frac, atol=0.01)


def test_load_digits_deterministic_and_seeded():
    a = load_digits(seed=3)
    b = load_digits(seed=3)
    c = load_digits(seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


def test_load_digits_test_size():
    x_train, _, x_test, _ = load_digits(test_size=0.5)
    assert abs(len(x_train) - len(x_test)) <= 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layout": "CHW"}, r"layout must be 'NCHW' or 'NHWC'; received 'CHW'"),
        ({"layout": None}, r"layout must be 'NCHW' or 'NHWC'; received None"),
        ({"size": 12}, r"size must be a positive multiple of 8.*received 12"),
        ({"size": 0}, r"size must be a positive multiple of 8"),
        ({"size": 16.0}, r"size must be a positive multiple of 8.*received 16\.0"),
        ({"test_size": 0}, r"test_size must be a fraction strictly between 0 and 1; received 0"),
        ({"test_size": 1.0}, r"test_size must be .*received 1\.0"),
        ({"test_size": 50}, r"test_size must be .*received 50"),
        ({"dtype": "uint8"}, r"normalize=True .* needs a float dtype"),
    ],
)
def test_load_digits_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


# ------------------------------------------------------------------------------------------
# make_two_branch
# ------------------------------------------------------------------------------------------


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def _cv_accuracy(features: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardizing measures how much information a branch holds, whatever its scale.
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return float(cross_val_score(model, features, y, cv=3).mean())


@pytest.mark.parametrize("layout, shape", [("NCHW", (200, 1, 8, 8)), ("NHWC", (200, 8, 8, 1))])
def test_make_two_branch_shapes_and_types(layout, shape):
    d = make_two_branch(n=200, layout=layout)
    assert isinstance(d, TwoBranchData)
    assert d.x_a.shape == d.x_b.shape == shape
    assert d.x_a.dtype == d.x_b.dtype == np.float32
    assert d.y.dtype == np.int64 and d.y.shape == (200,)
    assert len(d) == 200
    assert set(np.unique(d.y)) == {0, 1}
    assert set(np.unique(d.carrier)) == {0, 1}
    assert d.layout == layout


def test_make_two_branch_image_size():
    d = make_two_branch(n=40, image_size=16, layout="NHWC")
    assert d.x_a.shape == (40, 16, 16, 1)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("scale", [1.0, 100.0, 0.01])
def test_make_two_branch_measured_scale(distribution, scale):
    d = make_two_branch(n=256, scale=scale, distribution=distribution)
    np.testing.assert_allclose(d.x_a.std(), 1.0, rtol=1e-3)
    np.testing.assert_allclose(d.x_a.mean(), 0.0, atol=1e-3)
    np.testing.assert_allclose(d.x_b.std() / d.x_a.std(), scale, rtol=1e-3)


def test_make_two_branch_shift():
    d = make_two_branch(n=256, scale=10.0, shift=50.0)
    np.testing.assert_allclose(d.x_b.mean(), 50.0, atol=1e-2)
    np.testing.assert_allclose(d.x_b.std(), 10.0, rtol=1e-3)


def test_make_two_branch_distribution_changes_shape():
    def skew(x):
        x = x.astype(np.float64).ravel()
        return float(((x - x.mean()) ** 3).mean() / x.std() ** 3)

    def excess_kurtosis(x):
        x = x.astype(np.float64).ravel()
        return float(((x - x.mean()) ** 4).mean() / x.std() ** 4 - 3.0)

    normal = make_two_branch(n=256, distribution="normal").x_b
    uniform = make_two_branch(n=256, distribution="uniform").x_b
    expo = make_two_branch(n=256, distribution="exponential").x_b
    assert abs(skew(normal)) < 0.1 and abs(excess_kurtosis(normal)) < 0.2
    assert abs(excess_kurtosis(uniform) + 1.2) < 0.1  # uniform: -1.2
    assert abs(uniform.max() - uniform.min() - 100.0 * np.sqrt(12.0)) < 1.0
    assert skew(expo) > 1.5  # exponential: 2
    assert expo.min() > -1.01 * 100.0  # standardized exponential starts at -1 std


def test_make_two_branch_deterministic():
    a = make_two_branch(n=100, seed=5, distribution="exponential")
    b = make_two_branch(n=100, seed=5, distribution="exponential")
    c = make_two_branch(n=100, seed=6, distribution="exponential")
    for key in ("x_a", "x_b", "y", "carrier"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.x_a, c.x_a)


def test_make_two_branch_each_branch_informative_both_better():
    d = make_two_branch(n=300, scale=100.0, seed=1)
    acc_a = _cv_accuracy(_flat(d.x_a), d.y)
    acc_b = _cv_accuracy(_flat(d.x_b), d.y)
    acc_ab = _cv_accuracy(np.hstack([_flat(d.x_a), _flat(d.x_b)]), d.y)
    # Each branch carries the label for about half the samples: ~75% alone, ~100% together.
    assert 0.6 < acc_a < 0.9
    assert 0.6 < acc_b < 0.9
    assert acc_ab > max(acc_a, acc_b) + 0.05
    assert acc_ab > 0.95


def test_make_two_branch_four_classes():
    d = make_two_branch(n=400, n_classes=4, seed=2)
    assert set(np.unique(d.y)) == {0, 1, 2, 3}
    acc_a = _cv_accuracy(_flat(d.x_a), d.y)
    acc_ab = _cv_accuracy(np.hstack([_flat(d.x_a), _flat(d.x_b)]), d.y)
    assert acc_a > 0.4  # chance is 0.25, ceiling for one branch ~0.625
    assert acc_ab > 0.9


def test_make_two_branch_carrier_branch_shows_the_signal():
    d = make_two_branch(n=200, noise=0.0, scale=1.0)
    # Without noise, the branch not carrying a sample's label is constant for that sample.
    a, b = _flat(d.x_a), _flat(d.x_b)
    assert np.allclose(a[d.carrier == 1].std(axis=1), 0.0, atol=1e-6)
    assert (a[d.carrier == 0].std(axis=1) > 0.1).all()
    assert np.allclose(b[d.carrier == 0].std(axis=1), 0.0, atol=1e-5)
    assert (b[d.carrier == 1].std(axis=1) > 0.1).all()


def test_two_branch_data_is_dict_like_and_splits():
    d = make_two_branch(n=200)
    assert {"x_a", "x_b", "y", "carrier"} <= set(d.keys())
    assert "x_a" in d and list(d) == d.keys()
    as_dict = dict(d)
    assert as_dict["x_b"] is d.x_b
    assert d.inputs[0] is d.x_a and d.inputs[1] is d.x_b
    with pytest.raises(KeyError, match="TwoBranchData has keys"):
        d["nope"]

    train, test = d.split(0.25)
    assert len(train) + len(test) == 200
    assert len(test) == 50
    assert train.scale == d.scale and train.layout == d.layout
    # Stratified on label and carrier branch.
    for part in (train, test):
        counts = np.bincount(part.y * 2 + part.carrier)
        assert counts.max() - counts.min() <= 1
    # Disjoint and complete.
    rows = np.concatenate([_flat(train.x_a), _flat(test.x_a)])
    assert len(np.unique(rows, axis=0)) == 200
    t1, _ = d.split(0.25)
    np.testing.assert_array_equal(t1.x_a, train.x_a)
    with pytest.raises(ValueError, match="test_size must be"):
        d.split(1.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layout": "NHW"}, r"layout must be 'NCHW' or 'NHWC'; received 'NHW'"),
        ({"scale": 0}, r"scale must be > 0.*received 0"),
        ({"scale": -2.0}, r"scale must be > 0.*received -2\.0"),
        ({"scale": float("nan")}, r"scale must be a finite number; received nan"),
        ({"shift": "1"}, r"shift must be a finite number; received '1'"),
        ({"noise": -0.1}, r"noise must be >= 0.*received -0\.1"),
        ({"distribution": "gamma"}, r"distribution must be one of \('normal', 'uniform', 'exponential'\); received 'gamma'"),
        ({"n": 3}, r"n must be an int of at least 2 \* n_classes = 4.*received 3"),
        ({"n": 10.5}, r"n must be an int"),
        ({"n_classes": 1}, r"n_classes must be an int >= 2; received 1"),
        ({"image_size": 2}, r"image_size must be an int >= 4 .*received 2"),
        ({"seed": -1}, r"seed must be a non-negative int; received -1"),
    ],
)
def test_make_two_branch_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_two_branch(**kwargs)


# ------------------------------------------------------------------------------------------
# sample_images / resize_image
# ------------------------------------------------------------------------------------------


def test_sample_images_full_size():
    images = sample_images()
    assert len(images) == 2
    for img in images:
        assert img.shape == (427, 640, 3)
        assert img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0


@pytest.mark.parametrize("size, shape", [((64, 96), (64, 96, 3)), (32, (32, 32, 3)), ((500, 50), (500, 50, 3))])
def test_sample_images_resized(size, shape):
    images = sample_images(size=size)
    for img in images:
        assert img.shape == shape
        assert img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0


def test_sample_images_bad_size():
    with pytest.raises(ValueError, match=r"size must be \(height, width\).*received \(0, 5\)"):
        sample_images(size=(0, 5))


def test_resize_image_area_and_nearest():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    down = resize_image(img, (2, 2))
    np.testing.assert_allclose(down, [[2.5, 4.5], [10.5, 12.5]])
    assert down.dtype == np.float32
    up = resize_image(np.array([[0.0, 1.0]]), (2, 4))
    np.testing.assert_array_equal(up, [[0, 0, 1, 1], [0, 0, 1, 1]])
    same = resize_image(img, (4, 4))
    np.testing.assert_array_equal(same, img)
    # Area averaging keeps the mean when the size divides evenly.
    rgb = np.random.default_rng(0).random((12, 18, 3))
    np.testing.assert_allclose(resize_image(rgb, (4, 6)).mean(axis=(0, 1)), rgb.mean(axis=(0, 1)))
    assert resize_image(np.zeros((4, 4), dtype=np.uint8), 2).dtype == np.float32
    with pytest.raises(ValueError, match="HW or HWC"):
        resize_image(np.zeros((1, 2, 3, 4)), 2)


# ------------------------------------------------------------------------------------------
# CIFAR-10
# ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cifar(tmp_path: Path) -> Path:
    return write_fake_cifar10(tmp_path, n_train_per_batch=6, n_test=7, seed=1)


def _read_batch(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def test_write_fake_cifar10_layout(fake_cifar: Path, tmp_path: Path):
    assert fake_cifar == tmp_path / "cifar-10-batches-py"
    names = sorted(p.name for p in fake_cifar.iterdir())
    assert names == sorted([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"])
    batch = _read_batch(fake_cifar / "data_batch_1")
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (6, 3072)
    assert len(batch[b"labels"]) == 6
    meta = _read_batch(fake_cifar / "batches.meta")
    assert [n.decode() for n in meta[b"label_names"]] == list(CIFAR10_CLASSES)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("use_parent", [True, False])
def test_load_cifar10_round_trip(fake_cifar: Path, layout: str, use_parent: bool):
    root = fake_cifar.parent if use_parent else fake_cifar
    x_train, y_train, x_test, y_test = load_cifar10(root, layout=layout)
    image = (3, 32, 32) if layout == "NCHW" else (32, 32, 3)
    assert x_train.shape == (30, *image) and x_test.shape == (7, *image)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0

    batches = [_read_batch(fake_cifar / f"data_batch_{i}") for i in range(1, 6)]
    raw = np.concatenate([b[b"data"] for b in batches])
    labels = np.concatenate([b[b"labels"] for b in batches])
    np.testing.assert_array_equal(y_train, labels)
    planes = raw.reshape(-1, 3, 32, 32)  # R plane, G plane, B plane
    expected = planes if layout == "NCHW" else planes.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(x_train, expected / 255.0, rtol=1e-6)
    test = _read_batch(fake_cifar / "test_batch")
    np.testing.assert_array_equal(y_test, test[b"labels"])


def test_load_cifar10_pixel_order(fake_cifar: Path):
    x_train, *_ = load_cifar10(fake_cifar, layout="NHWC", normalize=False, dtype="uint8")
    row = _read_batch(fake_cifar / "data_batch_1")[b"data"][0]
    assert x_train.dtype == np.uint8
    # Pixel (row 0, col 1) has red at index 1, green at 1024 + 1, blue at 2048 + 1.
    assert tuple(x_train[0, 0, 1]) == (row[1], row[1025], row[2049])
    assert tuple(x_train[0, 1, 0]) == (row[32], row[1024 + 32], row[2048 + 32])


def test_load_cifar10_limit(fake_cifar: Path):
    x_train, y_train, x_test, y_test = load_cifar10(fake_cifar, limit=8)
    assert len(x_train) == len(y_train) == 8
    assert len(x_test) == len(y_test) == 7  # fewer test images than the limit
    with pytest.raises(ValueError, match=r"limit must be None .* received 0"):
        load_cifar10(fake_cifar, limit=0)


def test_load_cifar10_accepts_str_keys(tmp_path: Path):
    # Some re-pickled copies use str keys; the loader should not care.
    folder = write_fake_cifar10(tmp_path)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = _read_batch(folder / name)
        (folder / name).write_bytes(
            pickle.dumps({k.decode(): v for k, v in batch.items()}, protocol=4)
        )
    x_train, y_train, *_ = load_cifar10(tmp_path)
    assert x_train.shape == (50, 3, 32, 32)


def test_load_cifar10_missing_folder(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(missing)
    msg = str(info.value)
    assert str(missing) in msg
    assert "does not exist" in msg
    assert "data_batch_1" in msg and "test_batch" in msg
    assert "cifar-10-python.tar.gz" in msg and "www.cs.toronto.edu" in msg
    assert "never downloads" in msg


def test_load_cifar10_missing_file(fake_cifar: Path):
    (fake_cifar / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['data_batch_4'\].*cifar-10-python\.tar\.gz"):
        load_cifar10(fake_cifar.parent)


def test_load_cifar10_empty_parent(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"no 'cifar-10-batches-py' subfolder"):
        load_cifar10(tmp_path)


def test_load_cifar10_truncated_file(fake_cifar: Path):
    path = fake_cifar / "data_batch_2"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"data_batch_2 is not a readable CIFAR-10 python batch"):
        load_cifar10(fake_cifar)


def test_load_cifar10_garbage_file(fake_cifar: Path):
    (fake_cifar / "test_batch").write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match=r"test_batch is not a readable CIFAR-10 python batch"):
        load_cifar10(fake_cifar)


def test_load_cifar10_refuses_foreign_pickle(fake_cifar: Path):
    # A pickle that would call os.system must be rejected, not executed.
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (fake_cifar / "data_batch_1").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match=r"data_batch_1 is not a readable.*unexpected object"):
        load_cifar10(fake_cifar)


@pytest.mark.parametrize(
    "content, match",
    [
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"must be a uint8 array of shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, r"must be a uint8 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"b'labels' must be 2 integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels must lie in 0\.\.9"),
        ({b"pixels": np.zeros((2, 3072), np.uint8)}, r"expected a dict with keys b'data' and b'labels'"),
        ([1, 2, 3], r"expected a dict .* got list"),
    ],
)
def test_load_cifar10_unexpected_content(fake_cifar: Path, content, match):
    (fake_cifar / "data_batch_3").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10(fake_cifar)
    assert "data_batch_3" in str(info.value)


def test_load_cifar10_bad_layout(fake_cifar: Path):
    with pytest.raises(ValueError, match=r"layout must be 'NCHW' or 'NHWC'; received 'CHW'"):
        load_cifar10(fake_cifar, layout="CHW")


def test_cifar10_classes():
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[0] == "airplane"
    assert CIFAR10_CLASSES[-1] == "truck" and isinstance(CIFAR10_CLASSES, tuple)


def test_write_fake_cifar10_validates(tmp_path: Path):
    with pytest.raises(ValueError, match=r"n_test must be a positive int; received 0"):
        write_fake_cifar10(tmp_path, n_test=0)


# ------------------------------------------------------------------------------------------
# run_size
# ------------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("COURSEKIT_RUN_SIZE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return monkeypatch


def test_run_size_presets():
    assert SMALL == RunSize("small", epochs=8, n_train=1024, batch_size=64)
    assert FULL.name == "full" and FULL.epochs > SMALL.epochs and FULL.n_train >= 1797
    with pytest.raises(Exception):
        SMALL.epochs = 10  # frozen
    with pytest.raises(ValueError, match=r"RunSize.epochs must be a positive int; received 0"):
        RunSize("x", epochs=0, n_train=1, batch_size=1)


def test_run_size_gpu_default(clean_env):
    assert run_size(gpu=True) is FULL
    assert run_size(gpu=False) is SMALL
    assert run_size() is SMALL
    assert run_size(gpu=None) is SMALL


@pytest.mark.parametrize("value, expected", [("small", SMALL), ("full", FULL), (" FULL ", FULL), ("Small", SMALL)])
def test_run_size_env_var_wins(clean_env, value, expected):
    clean_env.setenv("COURSEKIT_RUN_SIZE", value)
    clean_env.setenv("NBGRADER_EXECUTION", "autograde")
    assert run_size(gpu=True) is expected
    assert run_size(gpu=False) is expected


def test_run_size_empty_env_var_is_unset(clean_env):
    clean_env.setenv("COURSEKIT_RUN_SIZE", "")
    assert run_size(gpu=True) is FULL


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_run_size_nbgrader_forces_small(clean_env, mode):
    clean_env.setenv("NBGRADER_EXECUTION", mode)
    assert run_size(gpu=True) is SMALL


def test_run_size_bad_env_value(clean_env):
    clean_env.setenv("COURSEKIT_RUN_SIZE", "medium")
    with pytest.raises(
        ValueError,
        match=r"environment variable COURSEKIT_RUN_SIZE must be one of \['full', 'small'\]; received 'medium'",
    ):
        run_size(gpu=True)


# ------------------------------------------------------------------------------------------
# seeding
# ------------------------------------------------------------------------------------------


def test_seed_everything_numpy_and_random(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert seed_everything(123) == 123
    first = (random.random(), np.random.rand(3))
    seed_everything(123)
    second = (random.random(), np.random.rand(3))
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert os.environ["PYTHONHASHSEED"] == "123"
    seed_everything(124)
    assert random.random() != first[0]


def test_seed_everything_accepts_numpy_int():
    assert seed_everything(np.int64(7)) == 7


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None, 2**32])
def test_seed_validation(bad):
    with pytest.raises(ValueError, match=r"seed must be an int between 0 and 4294967295; received"):
        seed_everything(bad)
    with pytest.raises(ValueError, match=r"seed must be an int"):
        numpy_rng(bad)


def test_numpy_rng():
    a = numpy_rng(5)
    assert isinstance(a, np.random.Generator)
    np.testing.assert_array_equal(a.random(4), numpy_rng(5).random(4))
    before = np.random.get_state()[1].copy()
    numpy_rng(5).random(10)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global RNG untouched


def test_seed_everything_torch_subprocess():
    proc = run_python(
        """
        import torch
        from coursekit.seeding import seed_everything
        seed_everything(11)
        a = torch.rand(5)
        layer_a = torch.nn.Linear(4, 3).weight.detach().clone()
        seed_everything(11)
        b = torch.rand(5)
        layer_b = torch.nn.Linear(4, 3).weight.detach().clone()
        seed_everything(12)
        c = torch.rand(5)
        print(torch.equal(a, b), torch.equal(layer_a, layer_b), torch.equal(a, c))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False"]


def test_seed_everything_keras_subprocess():
    proc = run_python(
        """
        import numpy as np
        import keras
        from coursekit.seeding import seed_everything

        def draw():
            dense = keras.layers.Dense(3)
            dense.build((None, 4))
            return (keras.ops.convert_to_numpy(keras.random.uniform((5,))),
                    keras.ops.convert_to_numpy(dense.kernel))

        seed_everything(11); a = draw()
        seed_everything(11); b = draw()
        print(all(np.array_equal(u, v) for u, v in zip(a, b)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "True"


# ------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shapes, axis, fmt, expected",
    [
        ([(2, 3, 8, 8), (2, 5, 8, 8)], 1, "NCHW", (2, 8, 8, 8)),
        ([(2, 8, 8, 3), (2, 8, 8, 5)], 3, "NHWC", (2, 8, 8, 8)),
        ([(2, 8, 8, 3), (2, 8, 8, 5), (2, 8, 8, 1)], -1, "NHWC", (2, 8, 8, 9)),
        ([(2, 3, 8, 8), (2, 3, 4, 8)], 2, "NCHW", (2, 3, 12, 8)),
        ([(2, 3, 8, 8), (2, 3, 8, 8)], -4, "NCHW", (4, 3, 8, 8)),
        ([(4, 10), (4, 6)], 1, None, (4, 16)),
        ([(4, 10)], 0, None, (4, 10)),
        ([[2, 3, 8, 8], [2, 5, 8, 8]], 1, "nchw", (2, 8, 8, 8)),
    ],
)
def test_concat_output_shape_success(shapes, axis, fmt, expected):
    assert concat_output_shape(shapes, axis, fmt) == expected


def test_concat_output_shape_none_batch():
    assert concat_output_shape([(None, 8, 8, 3), (None, 8, 8, 5)], -1, "NHWC") == (None, 8, 8, 8)
    # None matches a known size on a non-concat axis...
    assert concat_output_shape([(None, 8, 8, 3), (4, 8, 8, 5)], -1, "NHWC") == (4, 8, 8, 8)
    # ...and makes the concat axis unknown.
    assert concat_output_shape([(None, 3), (4, 3)], 0) == (None, 3)


def test_concat_mismatch_spatial_message():
    with pytest.raises(ShapeMismatchError, match=(
        r"Cannot concatenate along axis 1 \(C\) assuming layout NCHW: all dims except the concat "
        r"axis must match, but axis 2 \(H\) has sizes \[8, 4\]\. "
        r"Received shapes \[\(2, 3, 8, 8\), \(2, 5, 4, 4\)\]\. Fix: bring the larger map down "
        r"with max/avg pooling"
    )):
        concat_output_shape([(2, 3, 8, 8), (2, 5, 4, 4)], 1, "NCHW")


def test_concat_mismatch_channel_message_negative_axis():
    with pytest.raises(ShapeMismatchError, match=(
        r"Cannot concatenate along axis 2 \(W\) assuming layout NHWC: .* axis 3 \(C\) has sizes "
        r"\[3, 5\]\. .*Fix: concatenate along the channel axis instead, or project one map with a "
        r"1x1 conv \(coursekit: ChannelProjection\)\."
    )):
        concat_output_shape([(2, 8, 8, 3), (2, 8, 8, 5)], -2, "NHWC")


def test_concat_mismatch_batch_message():
    with pytest.raises(ShapeMismatchError, match=(
        r"axis 0 \(N\) has sizes \[2, 3\].*Fix: the branches must see the same batch"
    )):
        concat_output_shape([(2, 8, 8, 3), (3, 8, 8, 3)], -1, "NHWC")


def test_concat_mismatch_is_value_error_without_layout():
    with pytest.raises(ValueError, match=r"axis 1 \(dim1\) has sizes \[3, 4\]") as info:
        concat_output_shape([(2, 3), (2, 4)], 0)
    assert "Fix" not in str(info.value)


@pytest.mark.parametrize(
    "shapes, axis, fmt, note",
    [
        ([(2, 28, 28, 3), (2, 28, 28, 5)], 1, "NCHW", "these shapes look like NHWC, not NCHW"),
        ([(2, 3, 28, 28), (2, 5, 28, 28)], -1, "NHWC", "these shapes look like NCHW, not NHWC"),
    ],
)
def test_concat_mismatch_layout_hint(shapes, axis, fmt, note):
    with pytest.raises(ShapeMismatchError, match=note + r"; convert with nchw_to_nhwc / nhwc_to_nchw"):
        concat_output_shape(shapes, axis, fmt)


def test_concat_mismatch_no_false_layout_hint():
    with pytest.raises(ShapeMismatchError) as info:
        concat_output_shape([(2, 3, 8, 8), (2, 5, 4, 4)], 1, "NCHW")
    assert "look like" not in str(info.value)


@pytest.mark.parametrize(
    "shapes, axis, fmt, exc, match",
    [
        ([(2, 3, 8), (2, 3, 8, 8)], 1, None, ShapeMismatchError,
         r"all tensors must have the same rank to be concatenated; received shapes "
         r"\[\(2, 3, 8\), \(2, 3, 8, 8\)\] with ranks \[3, 4\]"),
        ([(2, 3, 8, 8)], 4, "NCHW", ShapeMismatchError,
         r"axis 4 is out of range for tensors of rank 4 \(valid: -4\.\.3\)"),
        ([(2, 3, 8, 8)], -5, "NCHW", ShapeMismatchError, r"axis -5 is out of range"),
        ([], 0, None, ShapeMismatchError, r"concatenation needs at least one tensor; received none"),
        ([(2, 3)], 1.0, None, TypeError, r"axis must be an int; received 1\.0 of type float"),
        ([(2, 3, 8, 8)], 1, "CHWN", ValueError, r"data_format must be one of \('NCHW', 'NHWC'\); received 'CHWN'"),
    ],
)
def test_concat_output_shape_errors(shapes, axis, fmt, exc, match):
    with pytest.raises(exc, match=match):
        concat_output_shape(shapes, axis, fmt)


def test_module_all_exports_exist():
    for module in (data, runsize, seeding):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
