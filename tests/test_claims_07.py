"""Lesson 07's claims, re-measured: the experiments the notebooks run (same functions, data, seeds
and run size), in both frameworks, and each gap checked for two more seeds.

- raw 0..255 pixels + SGD -> constant output (loss ln 10); standardized inputs train best;
- the train+test normalization leak is tiny on digits (stats move < 1e-3, accuracy < 1 point);
- the popular CIFAR std constants recipe (mean of per-image stds) underestimates the pixel std;
- torchvision v2 and Keras test-time pipelines give the same numbers (except odd margins);
- Keras RandomCrop: one draw per batch, no crop at inference; a v2 transform: one draw per call;
- 200 training digits: shifts help on shifted digits, horizontal flips hurt; mirrored, a 0 and an 8
  keep their class, a 2, 3, 5, 6 and 7 lose it (exercise 4's answers).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest

from coursekit import data, preprocess
from coursekit.runsize import run_size

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)
ROOT = Path(__file__).resolve().parents[1]
RS = run_size()


# --------------------------------------------------------------------------------------------
# The experiments, as the notebooks run them
# --------------------------------------------------------------------------------------------


def _fw(framework):
    if framework == "torch":
        from coursekit import torch as ck
        from coursekit.torch import augment
    else:
        from coursekit import keras as ck
        from coursekit.keras import augment
    return ck, augment


def _layout(framework):
    return "NCHW" if framework == "torch" else "NHWC"


@functools.cache
def _digits(framework):
    layout = _layout(framework)
    x_raw, y_train, x_raw_test, y_test = data.load_digits(layout, normalize=False)
    n = min(RS.n_train, len(x_raw))
    return x_raw[:n], y_train[:n], x_raw_test, y_test


def _scale_inputs(framework, name):
    layout = _layout(framework)
    x_raw, _, x_raw_test, _ = _digits(framework)
    stats = preprocess.channel_stats(x_raw / 16, layout)
    if name == "0..255":
        return x_raw * 255 / 16, x_raw_test * 255 / 16
    if name == "0..16":
        return x_raw, x_raw_test
    if name == "0..1":
        return x_raw / 16, x_raw_test / 16
    if name == "standardized":
        return (preprocess.normalize(x_raw / 16, *stats, layout=layout),
                preprocess.normalize(x_raw_test / 16, *stats, layout=layout))
    if name == "train+test stats":
        both = preprocess.channel_stats(np.concatenate([x_raw / 16, x_raw_test / 16]), layout)
        return (preprocess.normalize(x_raw / 16, *both, layout=layout),
                preprocess.normalize(x_raw_test / 16, *both, layout=layout))
    raise KeyError(name)


@functools.cache
def scale_run(framework, name, seed):
    _, augment = _fw(framework)
    _, y_train, _, y_test = _digits(framework)
    xtr, xte = _scale_inputs(framework, name)
    return augment.train_digits((xtr, y_train), (xte, y_test), label=name, optimizer="sgd", lr=0.01,
                                epochs=RS.epochs, batch_size=RS.batch_size, seed=seed)


@functools.cache
def _small_digits(framework):
    layout = _layout(framework)
    x16, y16, x16_test, y16_test = data.load_digits(layout, size=16)
    pick = np.random.default_rng(0).permutation(len(x16))[:200]
    s16 = preprocess.channel_stats(x16[pick], layout)
    x_small = preprocess.normalize(x16[pick], *s16, layout=layout)
    x_eval = preprocess.normalize(x16_test, *s16, layout=layout)
    background = float(-s16.mean[0] / s16.std[0])
    shifted = preprocess.random_shifts(x_eval, max_shift=1, layout=layout, fill=background, seed=1)
    return x_small, y16[pick], x_eval, y16_test, shifted, background


def _pipeline(framework, name, background, seed):
    if name == "none":
        return None
    if framework == "torch":
        from torchvision.transforms import v2

        return v2.RandomCrop(16, padding=1, fill=background) if name == "shift" else v2.RandomHorizontalFlip()
    from coursekit.keras.augment import layers

    if name == "shift":
        return layers.RandomTranslation(1 / 16, 1 / 16, fill_mode="constant", fill_value=background,
                                        interpolation="nearest", seed=seed)
    return layers.RandomFlip("horizontal", seed=seed)


@functools.cache
def aug_run(framework, name, seed):
    ck, augment = _fw(framework)
    x_small, y_small, x_eval, y_eval, shifted, background = _small_digits(framework)
    run = augment.train_digits((x_small, y_small), (x_eval, y_eval), augment=_pipeline(framework, name, background, seed),
                               label=name, epochs=5 * RS.epochs, batch_size=32, seed=seed, validate=False)
    run.extra["shifted_accuracy"] = ck.evaluate(run.extra["model"], shifted, y_eval)["accuracy"]
    return run


FRAMEWORKS = ("torch", "keras")


# --------------------------------------------------------------------------------------------
# 1. Input scale
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_raw_0_255_pixels_collapse_to_a_constant_output(framework, seed):
    raw = scale_run(framework, "0..255", seed)
    std = scale_run(framework, "standardized", seed)
    assert not std.collapsed
    assert std.test_accuracy > 0.93
    assert raw.test_accuracy < 0.3 and raw.history.last("loss") > 2.1, (raw.test_accuracy, raw.history["loss"])
    if (framework, seed) == ("torch", 2):
        # the one survivor of the 10 seeded runs the notebook reports (5 seeds x 2 frameworks)
        assert not (raw.collapsed and raw.collapsed.constant) and raw.test_accuracy > 0.15
        return
    assert raw.collapsed and raw.collapsed.constant, raw.collapsed
    assert raw.history.last("loss") == pytest.approx(math.log(10), abs=0.01)
    assert raw.test_accuracy < 0.15


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_raw_0_255_collapse_count_matches_the_notebook(framework):
    """Seeds 3 and 4 complete the notebook's "9 of 10 runs" (seeds 0-2 are checked above)."""
    for seed in (3, 4):
        raw = scale_run(framework, "0..255", seed)
        assert raw.collapsed and raw.collapsed.constant and raw.test_accuracy < 0.15, (framework, seed, raw.collapsed)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_standardized_beats_0_1_and_raw_0_16_still_trains(framework, seed):
    std = scale_run(framework, "standardized", seed)
    unit = scale_run(framework, "0..1", seed)
    assert std.test_accuracy > unit.test_accuracy + 0.01, (std.test_accuracy, unit.test_accuracy)
    if seed == 0:  # the notebook's honest note: the raw 0..16 digits still train
        raw16 = scale_run(framework, "0..16", seed)
        assert not raw16.collapsed and raw16.test_accuracy > 0.8


def test_ddof_convention_matters_only_on_small_arrays():
    tiny = np.array([0.0, 1.0, 1.0, 0.0]).reshape(2, 1, 1, 2)
    assert preprocess.channel_stats(tiny).std[0] == pytest.approx(0.5)
    assert preprocess.channel_stats(tiny, ddof=1).std[0] == pytest.approx(math.sqrt(1 / 3))
    x = data.load_digits("NCHW")[0]
    assert abs(preprocess.channel_stats(x).std[0] - preprocess.channel_stats(x, ddof=1).std[0]) < 1e-4


# --------------------------------------------------------------------------------------------
# 2. The leak
# --------------------------------------------------------------------------------------------


def test_train_and_train_plus_test_stats_differ_below_1e_3():
    x_raw, _, x_raw_test, _ = _digits("torch")
    own = preprocess.channel_stats(x_raw / 16)
    both = preprocess.channel_stats(np.concatenate([x_raw / 16, x_raw_test / 16]))
    assert abs(own.mean[0] - both.mean[0]) < 1e-3 and abs(own.std[0] - both.std[0]) < 1e-3
    # ... and the difference grows as the training set shrinks (n_train = 10 vs all)
    tiny = preprocess.channel_stats(x_raw[:10] / 16)
    tiny_both = preprocess.channel_stats(np.concatenate([x_raw[:10] / 16, x_raw_test / 16]))
    assert abs(tiny.mean[0] - tiny_both.mean[0]) > 5 * abs(own.mean[0] - both.mean[0])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_leaky_stats_change_test_accuracy_by_less_than_one_point(framework, seed):
    honest = scale_run(framework, "standardized", seed)
    leaky = scale_run(framework, "train+test stats", seed)
    assert abs(honest.test_accuracy - leaky.test_accuracy) < 0.01


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_per_image_test_stats_move_inputs_and_some_predictions(framework):
    ck, _ = _fw(framework)
    layout = _layout(framework)
    x_raw, _, x_raw_test, y_test = _digits(framework)
    stats = preprocess.channel_stats(x_raw / 16, layout)
    x01_test = x_raw_test / 16
    with_train = preprocess.normalize(x01_test, *stats, layout=layout)
    own = np.concatenate([preprocess.normalize(img[None], *preprocess.channel_stats(img[None], layout), layout=layout)
                          for img in x01_test])
    assert np.abs(own - with_train).max() > 0.3
    changed, acc_moves = 0, []
    for seed in SEEDS:
        model = scale_run(framework, "standardized", seed).extra["model"]
        p_train = ck.predict(model, with_train).argmax(1)
        p_own = ck.predict(model, own).argmax(1)
        changed += int((p_train != p_own).sum())
        acc_moves.append(abs((p_train == y_test).mean() - (p_own == y_test).mean()))
    assert changed >= 1
    assert max(acc_moves) < 0.02  # "on digits the accuracy barely changes either way"


# --------------------------------------------------------------------------------------------
# 3. CIFAR constants and pipelines
# --------------------------------------------------------------------------------------------


def test_mean_of_image_stds_underestimates_the_pixel_std():
    tiles = []
    for photo in data.sample_images():
        h, w = photo.shape[0] // 32 * 32, photo.shape[1] // 32 * 32
        tiles.append(photo[:h, :w].reshape(h // 32, 32, w // 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3))
    tiles = np.concatenate(tiles)
    assert tiles.shape == (520, 32, 32, 3)
    pixel = preprocess.channel_stats(tiles, "NHWC").std
    recipe = preprocess.mean_of_image_stds(tiles, "NHWC")
    assert np.all(recipe < pixel / 3)  # "underestimates the std 4-fold"
    digits = data.load_digits("NCHW")[0]
    assert preprocess.mean_of_image_stds(digits)[0] > 0.98 * preprocess.channel_stats(digits).std[0]
    ratio = np.array(preprocess.CIFAR10_STD) / np.array(preprocess.CIFAR10_POPULAR_STD)
    assert np.all((ratio > 1.2) & (ratio < 1.31))


def test_article_snippet_and_v2_twin_agree_on_a_photo():
    import torch
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms import v2

    china32 = data.sample_images(size=(32, 32))[0]
    pil = Image.fromarray(np.round(china32 * 255).astype(np.uint8))
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    article = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])(pil)
    twin = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])(pil)
    assert float((article - twin).abs().max()) < 1e-5
    train = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                transforms.ToTensor(), transforms.Normalize(mean, std)])
    assert tuple(train(pil).shape) == (3, 32, 32)


def test_torchvision_rejects_the_fake_cifar_files_and_load_cifar10_reads_them(tmp_path):
    import torchvision

    data.write_fake_cifar10(tmp_path, n_train_per_batch=20, n_test=20)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(root=str(tmp_path), train=True, download=False)
    x, _, xt, _ = data.load_cifar10(tmp_path, layout="NCHW")
    assert x.shape == (100, 3, 32, 32) and xt.shape == (20, 3, 32, 32)
    stats = preprocess.channel_stats(x)
    assert np.allclose(stats.mean, 0.5, atol=0.02) and np.allclose(stats.std, 0.289, atol=0.01)


@pytest.mark.parametrize("height,agree", [(40, True), (37, True), (41, True), (39, False)])
def test_torch_and_keras_test_pipelines_give_the_same_numbers(height, agree):
    import torch
    from torchvision.transforms import v2

    from coursekit.keras import augment  # imports TensorFlow quietly, before keras

    keras = augment.keras
    layers, ops = keras.layers, keras.ops

    img = np.random.default_rng(0).integers(0, 256, (height, height, 3)).astype(np.uint8)
    mean, std = preprocess.CIFAR10_MEAN, preprocess.CIFAR10_STD
    t = v2.Compose([v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])(
        torch.from_numpy(img).permute(2, 0, 1))
    k = keras.Sequential([layers.CenterCrop(32, 32), layers.Rescaling(1 / 255),
                          layers.Normalization(mean=mean, variance=np.square(std))])(img[None].astype("float32"))
    t_nhwc = t.permute(1, 2, 0).numpy()
    k_hwc = ops.convert_to_numpy(k)[0]
    same = np.allclose(t_nhwc, k_hwc, atol=1e-5)
    assert same == agree
    for conv in ("torchvision", "keras"):
        top, left = preprocess.center_crop_offsets(height, height, 32, conv)
        ref = (img[top:top + 32, left:left + 32] / 255 - np.array(mean)) / np.array(std)
        assert np.allclose(t_nhwc if conv == "torchvision" else k_hwc, ref, atol=1e-5)


def test_keras_random_crop_draws_per_batch_and_skips_inference():
    from coursekit.keras import augment  # imports TensorFlow quietly, before keras

    keras = augment.keras
    layers, ops = keras.layers, keras.ops
    x = data.load_digits("NHWC")[0][:6]
    pad_crop = keras.Sequential([layers.ZeroPadding2D(1), layers.RandomCrop(8, 8, seed=0)])
    for _ in range(3):
        out = ops.convert_to_numpy(pad_crop(x, training=True))
        assert len({preprocess.find_shift(a, b) for a, b in zip(x, out)}) == 1
    assert tuple(pad_crop(x, training=False).shape) == (6, 10, 10, 1)  # keras-team/keras#21868
    safe = keras.Sequential([keras.Input((8, 8, 1)), augment.TrainOnly([layers.ZeroPadding2D(1), layers.RandomCrop(8, 8)])])
    assert np.array_equal(ops.convert_to_numpy(safe(x, training=False)), x)
    translate = layers.RandomTranslation(1 / 8, 1 / 8, fill_mode="constant", interpolation="nearest", seed=0)
    shifts = [preprocess.find_shift(a, b) for a, b in zip(x, ops.convert_to_numpy(translate(x, training=True)))]
    assert None not in shifts and len(set(shifts)) > 1


def test_v2_transform_draws_once_per_call_and_train_only_per_image():
    import torch
    from torchvision.transforms import v2

    from coursekit.torch import augment

    x = torch.from_numpy(data.load_digits("NCHW")[0][:6])
    crop = v2.RandomCrop(8, padding=1)
    torch.manual_seed(0)
    for _ in range(3):
        out = crop(x)
        assert len({preprocess.find_shift(a, b) for a, b in zip(x, out)}) == 1
    per_image = augment.TrainOnly(crop)
    torch.manual_seed(0)
    shifts = [preprocess.find_shift(a, b) for a, b in zip(x, per_image(x))]
    assert None not in shifts and len(set(shifts)) > 1
    assert torch.equal(per_image.eval()(x), x)


# --------------------------------------------------------------------------------------------
# 4. Augmentation on 200 digits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_shift_augmentation_pays_on_shifted_digits_and_flips_hurt(framework, seed):
    none = aug_run(framework, "none", seed)
    shift = aug_run(framework, "shift", seed)
    flip = aug_run(framework, "flip", seed)
    assert none.train_accuracy == 1.0 and none.gap > 0.04  # "fits the 200 images, loses several points"
    # shift: not worse on the centred test set, much better on shifted digits
    assert shift.test_accuracy > none.test_accuracy - 0.01, (shift.test_accuracy, none.test_accuracy)
    # torch: "well over ten points"; keras: "several points"
    margin = 0.10 if framework == "torch" else 0.05
    assert shift.extra["shifted_accuracy"] > none.extra["shifted_accuracy"] + margin
    # flip: lower test accuracy and a wider gap than no augmentation
    assert flip.test_accuracy < none.test_accuracy - 0.005, (flip.test_accuracy, none.test_accuracy)
    assert flip.gap > none.gap


# Exercise 4 (the solution's answers): which digits keep their class in a mirror, for the network
# trained without augmentation.
MIRROR_ANSWERS = {"0": "kept", "2": "lost", "3": "lost", "5": "lost", "6": "lost", "7": "lost", "8": "kept"}


def mirrored(framework, seed):
    ck, _ = _fw(framework)
    _, _, x_eval, y_eval, _, _ = _small_digits(framework)
    model = aug_run(framework, "none", seed).extra["model"]
    return preprocess.mirrored_shares(lambda x: ck.predict(model, x), x_eval, y_eval, _layout(framework))


def test_exercise_4_answers_are_the_measured_mirror_outcomes():
    import nbformat

    from coursekit.grading import read_choices

    assert tuple(MIRROR_ANSWERS) == preprocess.MIRROR_DIGITS
    shares = {(fw, seed): mirrored(fw, seed) for fw in FRAMEWORKS for seed in SEEDS}
    for (fw, seed), per in shares.items():
        for digit, outcome in MIRROR_ANSWERS.items():
            share = per[int(digit)]
            assert preprocess.mirror_outcome(share) == outcome, f"{fw} seed {seed}: digit {digit} {share:.3f}"
            assert abs(share - 0.5) >= 0.1, f"{fw} seed {seed}: digit {digit} {share:.3f} is within 10 points of 1/2"
    # "1, 4 and 9 are not asked: in some of those runs between a quarter and three quarters ..."
    for digit in (1, 4, 9):
        assert any(0.25 <= per[digit] <= 0.75 for per in shares.values()), (digit, [p[digit] for p in shares.values()])
    for name in ("pytorch", "keras"):
        nb = nbformat.read(ROOT / "solutions" / "07-input-normalization" / f"{name}.ipynb", as_version=4)
        answer = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex4-answer")
        scope: dict = {}
        exec(answer, scope)
        assert read_choices(scope["mirror_predictions"], preprocess.MIRROR_DIGITS, preprocess.MIRROR_OUTCOMES) == MIRROR_ANSWERS


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_mirror_flips_the_width_axis_and_says_what_it_received(layout):
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    width = 3 if layout == "NCHW" else 2
    np.testing.assert_array_equal(preprocess.mirror(x, layout), np.flip(x, axis=width))
    with pytest.raises(ValueError, match=r"received shape \(3, 4, 5\)"):
        preprocess.mirror(x[0], layout)
    with pytest.raises(ValueError, match="x has 2 images but y has 3 labels"):
        preprocess.mirrored_shares(lambda b: np.zeros((len(b), 2)), x, [0, 1, 1], layout)
    scores = lambda b: np.tile([1.0, 0.0], (len(b), 1))  # noqa: E731 - always class 0
    assert preprocess.mirrored_shares(scores, x, [0, 1], layout) == {0: 1.0, 1: 0.0}
