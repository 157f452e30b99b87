"""Lesson 02's claims, measured: the experiments the notebooks run (small run size, seed 0), each
gap asserted with a margin in both frameworks, and re-checked for two other training seeds.

Measured on CPU (seed 0, torch / keras): accuracy x1 99.6% / 100%, x100 73.8% / 75.0% (A-carried
47.7% / 50.0%, B-carried 100%); branch A's grad share at x100 89% / 77% while its share of the head's
input is 0.04%; SGD lr 1e-2 at x1000: loss 1.386 = ln 4, 25%; B only at x100 59.4% / 60.5%; add at
x100 62.1% / 64.8%; article model ReLU/sigmoid loss 0.62 / 0.64 (A-carried 100%), ReLU/ReLU 0.03,
sigmoid/sigmoid 1.29 / 1.30; x100 with B standardized 99.6% / 100%.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest

from coursekit import data

pytestmark = pytest.mark.slow

SMALL = dict(epochs=8, n=1024)  # ck.run_size() on a CPU, what the notebooks use there
OTHER_SEEDS = (1, 2)
LAYOUT = {"torch": "NCHW", "keras": "NHWC"}


def ck_of(fw):
    if fw == "torch":
        from coursekit import torch as ck
        from coursekit.torch import failure
    else:
        from coursekit import keras as ck
        from coursekit.keras import failure
    return ck, failure


def held_out(fw, scale, n=256):
    """The test samples the notebooks (and run_two_branch's report) use."""
    full = data.make_two_branch(n=SMALL["n"], scale=scale, n_classes=4, layout=LAYOUT[fw], seed=0)
    return full.split(0.25, seed=0)[1].subset(slice(0, n))


def scaled_data(fw, scale):
    return data.make_two_branch(n=SMALL["n"], scale=scale, n_classes=4, layout=LAYOUT[fw], seed=0)


@functools.lru_cache(maxsize=None)
def run(fw, kind, seed=0):
    """One of the notebooks' runs, trained once per test session."""
    ck, failure = ck_of(fw)
    if kind.startswith("x"):
        return ck.run_two_branch(scale=float(kind[1:]), seed=seed, **SMALL)
    if kind == "sgd1000":
        return ck.run_two_branch(scale=1000, optimizer="sgd", lr=1e-2, seed=seed, **SMALL)
    if kind == "add100":
        return ck.run_two_branch(scale=100, fusion="add", seed=seed, **SMALL)
    if kind == "b_only100":
        d = scaled_data(fw, 100)
        return ck.run_two_branch(dataclasses.replace(d, x_a=np.zeros_like(d.x_a)), seed=seed, **SMALL)
    if kind == "fixed100":
        d = scaled_data(fw, 100)
        return ck.run_two_branch(dataclasses.replace(d, x_b=standardized(fw, d)), seed=seed, **SMALL)
    if kind.startswith("article:"):
        return failure.run_combined(activations=tuple(kind[8:].split("/")), seed=seed, **SMALL)
    raise KeyError(kind)


def standardized(fw, data):
    """What the notebooks' fix does: branch B standardized per channel with the training split's
    statistics (the split run_two_branch trains on), applied to every sample."""
    train, _ = data.split(0.25, seed=0)
    axes = (0, 2, 3) if fw == "torch" else (0, 1, 2)
    mean, std = train.x_b.mean(axis=axes, keepdims=True), train.x_b.std(axis=axes, keepdims=True)
    return ((data.x_b - mean) / np.sqrt(std**2 + 1e-5)).astype(np.float32)


FW = ["torch", "keras"]
# The key claims also hold for two other training seeds (torch is cheap; keras only the main gap).
SEEDED = [("torch", s) for s in (0, *OTHER_SEEDS)] + [("keras", s) for s in (0, *OTHER_SEEDS)]
TORCH_SEEDS = [("torch", s) for s in (0, *OTHER_SEEDS)] + [("keras", 0)]


@pytest.mark.parametrize("fw,seed", SEEDED)
def test_scale_gap_drowns_the_small_branch(fw, seed):
    r1, r100 = run(fw, "x1", seed), run(fw, "x100", seed)
    assert r1.test_accuracy >= 0.95, str(r1)
    assert r1.test_accuracy - r100.test_accuracy >= 0.10, (str(r1), str(r100))
    assert r100.accuracy_b >= 0.95, str(r100)  # the large branch's half is learned
    assert r100.accuracy_a <= r1.accuracy_a - 0.25, (str(r1), str(r100))  # the small branch's half is not


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_x10_costs_little_x100_much(fw, seed):
    """Both notebooks run x1, x10, x100 and x1000: x10 still learns (nearly) everything."""
    r1, r10, r100 = run(fw, "x1", seed), run(fw, "x10", seed), run(fw, "x100", seed)
    assert r1.test_accuracy >= r10.test_accuracy >= 0.95, (str(r1), str(r10))
    assert r10.test_accuracy - r100.test_accuracy >= 0.10, (str(r10), str(r100))


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_x1000_is_worse_still_and_its_first_loss_explodes(fw, seed):
    r1, r100, r1000 = run(fw, "x1", seed), run(fw, "x100", seed), run(fw, "x1000", seed)
    assert r1000.test_accuracy < r100.test_accuracy, (str(r100), str(r1000))
    assert r1000.accuracy_a <= 0.4, str(r1000)
    assert r1000.history["loss"][0] > 5 * r1.history["loss"][0], (r1.history["loss"][0], r1000.history["loss"][0])


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_drowned_branch_gets_the_larger_gradient_share_but_no_say_in_the_head(fw, seed):
    _, failure = ck_of(fw)
    r1, r100 = run(fw, "x1", seed), run(fw, "x100", seed)
    rep = r100.report
    assert rep.scale_shares[1] >= 0.95, str(rep)
    assert rep.grad_shares[0] > 0.6, str(rep)  # the ignored branch A gets most of d loss / d branch
    head100 = failure.head_input_shares(r100.extra["model"], held_out(fw, 100).inputs)
    head1 = failure.head_input_shares(r1.extra["model"], held_out(fw, 1).inputs)
    assert head100[1] >= 0.99, head100  # ... yet the head hears branch B only
    assert 0.25 <= head1[0] <= 0.75, head1


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_sgd_at_x1000_collapses_to_ln4(fw, seed):
    ck, _ = ck_of(fw)
    r = run(fw, "sgd1000", seed)
    assert r.history["loss"][0] > 100
    assert abs(r.test_loss - math.log(4)) < 0.01, str(r)
    assert r.test_accuracy == pytest.approx(0.25, abs=0.02), str(r)
    assert ck.is_collapsed(r.extra["model"], held_out(fw, 1000).inputs)


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_worse_than_one_branch_only_when_training_collapses(fw, seed):
    r100, b_only, sgd = run(fw, "x100", seed), run(fw, "b_only100", seed), run(fw, "sgd1000", seed)
    assert 0.5 <= b_only.test_accuracy <= 0.7, str(b_only)
    assert r100.test_accuracy >= b_only.test_accuracy + 0.05, (str(r100), str(b_only))
    assert sgd.test_accuracy <= b_only.test_accuracy - 0.2


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_add_is_no_cure_for_a_scale_gap(fw, seed):
    r100, add100 = run(fw, "x100", seed), run(fw, "add100", seed)
    assert add100.test_accuracy < r100.test_accuracy, (str(r100), str(add100))
    assert add100.accuracy_a <= 0.45, str(add100)


@pytest.mark.parametrize("fw", FW)
def test_concatenation_slices_the_gradient_and_the_scale_inflates_it(fw):
    ck, _ = ck_of(fw)
    from coursekit.seeding import seed_everything

    xs = data.make_two_branch(n=256, scale=1, n_classes=4, layout=LAYOUT[fw], seed=0)
    names = {"torch": ("branch_a.0.weight", "branch_b.0.weight", "head.0.weight"),
             "keras": ("branch_a_conv/kernel", "branch_b_conv/kernel", "head_conv/kernel")}[fw]
    for fusion in ("concat", "add"):
        norms = {}
        for s in (1, 100):
            seed_everything(0)
            net = ck.two_branch_net(n_classes=4, fusion=fusion)
            flow = {g.name: g.grad_norm for g in ck.gradient_flow(net, [xs.x_a, s * xs.x_b], xs.y)}
            norms[s] = [flow[n] for n in names]
        assert norms[100][0] < 3 * norms[1][0], (fusion, norms)  # branch A's gradient barely changes
        assert norms[100][1] > 50 * norms[1][1], (fusion, norms)  # branch B's grows with the scale
        assert norms[100][2] > 50 * norms[1][2], (fusion, norms)  # and so does the head's
    rng = np.random.default_rng(0)
    a, b, up = (rng.standard_normal(s).astype("float32") for s in ((2, 3, 4, 4), (2, 5, 4, 4), (2, 8, 4, 4)))
    if fw == "torch":
        import torch

        ta, tb = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
        torch.cat([ta, tb], dim=1).backward(torch.from_numpy(up))
        ga, gb = ta.grad.numpy(), tb.grad.numpy()
    else:
        import tensorflow as tf
        from keras import layers

        ta, tb = tf.constant(a), tf.constant(b)
        with tf.GradientTape() as tape:
            tape.watch([ta, tb])
            out = layers.Concatenate(axis=1)([ta, tb])
        ga, gb = (g.numpy() for g in tape.gradient(out, [ta, tb], output_gradients=tf.constant(up)))
    np.testing.assert_array_equal(ga, up[:, :3])
    np.testing.assert_array_equal(gb, up[:, 3:])


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_relu_sigmoid_mix_hurts_through_the_sigmoid_not_the_mix(fw, seed):
    mix, relu, sig = (run(fw, f"article:{a}", seed) for a in ("relu/sigmoid", "relu/relu", "sigmoid/sigmoid"))
    assert mix.test_loss > relu.test_loss + 0.3, (str(mix), str(relu))  # the article's gap is real on loss
    assert relu.test_accuracy >= 0.98, str(relu)
    assert mix.accuracy_a >= 0.95, str(mix)  # the ReLU branch's half is learned in the mix
    assert mix.accuracy_b <= mix.accuracy_a  # the sigmoid branch's half is what lags
    assert sig.test_loss > mix.test_loss + 0.3, (str(sig), str(mix))  # no mix at all is slower still
    scales = mix.report.scales  # and the two "distinct distributions" are within a few x of each other
    assert max(scales) / min(scales) < 5, scales


@pytest.mark.parametrize("fw", FW)
def test_standardizing_branch_b_restores_the_x1_result(fw):
    fixed, r100 = run(fw, "fixed100"), run(fw, "x100")
    assert fixed.test_accuracy >= 0.95, str(fixed)
    assert fixed.test_accuracy - r100.test_accuracy >= 0.15, (str(fixed), str(r100))
    assert fixed.report.scale_ratio < 3, str(fixed.report)
    # the scale is gone: x100 standardized is x1 standardized
    np.testing.assert_allclose(standardized(fw, scaled_data(fw, 100)), standardized(fw, scaled_data(fw, 1)), atol=1e-3)


@pytest.mark.parametrize("fw", FW)
def test_head_input_shares_match_the_head_with_one_branch_zeroed(fw):
    """failure.head_input_shares against brute force: the head conv's pre-activation (bias removed)
    with the other branch's map set to zero."""
    ck, failure = ck_of(fw)
    from coursekit.seeding import seed_everything

    xs = data.make_two_branch(n=32, scale=7, n_classes=4, layout=LAYOUT[fw], seed=0)
    seed_everything(0)
    for build in (lambda: ck.two_branch_net(n_classes=4), lambda: failure.combined_model()):
        net = build()
        if fw == "torch":
            import torch

            with torch.no_grad():
                maps = [net.branch_a(torch.from_numpy(xs.x_a)), net.branch_b(torch.from_numpy(xs.x_b))]
                conv = net.head[0]
                parts = [conv(torch.cat([m if i == j else torch.zeros_like(m) for j, m in enumerate(maps)], 1))
                         - conv.bias.view(1, -1, 1, 1) for i in range(2)]
                sq = [float((p.double() ** 2).sum()) for p in parts]
        else:
            import keras
            from keras import ops

            probe = keras.Model(net.inputs, [net.get_layer("branch_a_conv").output, net.get_layer("branch_b_conv").output])
            maps = probe(xs.inputs)
            conv = net.get_layer("head_conv")
            conv_lin = keras.layers.Conv2D(conv.filters, conv.kernel_size, padding=conv.padding, use_bias=False)
            conv_lin.build((None, None, None, conv.kernel.shape[2]))
            conv_lin.kernel.assign(conv.kernel)
            parts = [conv_lin(ops.concatenate([m if i == j else ops.zeros_like(m) for j, m in enumerate(maps)], -1))
                     for i in range(2)]
            sq = [float(np.sum(ops.convert_to_numpy(p).astype(np.float64) ** 2)) for p in parts]
        expected = [v / sum(sq) for v in sq]
        np.testing.assert_allclose(failure.head_input_shares(net, xs.inputs), expected, rtol=1e-4)


# Exercise 1's answers and the numbers the text after it states, for seeds 0-2 (no training: they
# hold at every run size). Margins: the 10% line is never closer than a factor 3 on either side.
INIT_SHARE_CLAIMS = {  # setting: (drowned branch, A's head-input share low, high)
    "x10": ("A", 0.0, 0.012),
    "both x100": ("neither", 0.32, 0.53),
    "x100, B standardized": ("neither", 0.32, 0.53),
    "A x100": ("B", 0.999, 1.0),
    "x100, both sigmoid": ("neither", 0.20, 0.44),
    "x100, A sigmoid": ("A", 0.0, 0.0005),
}


@pytest.mark.parametrize("fw", FW)
def test_which_branch_is_drowned_at_initialization(fw):
    from coursekit.experiments import INIT_SHARE_SETTINGS, drowned_branch

    _, failure = ck_of(fw)
    assert set(INIT_SHARE_CLAIMS) == set(INIT_SHARE_SETTINGS)
    for setting, (drowned, low, high) in INIT_SHARE_CLAIMS.items():
        for seed in (0, 1, 2):
            shares = failure.init_head_shares(setting, seed=seed)
            assert drowned_branch(shares) == drowned, (fw, setting, seed, shares)
            assert low <= shares[0] <= high, (fw, setting, seed, shares)
            assert min(shares) < 0.1 / 3 or min(shares) > 0.1 * 2, (fw, setting, seed, shares)
