"""Lesson 03's claims, measured: the experiments the notebooks run (small run size, seed 0), each
gap asserted with a margin in both frameworks, and re-checked for two other training seeds
(all of them in torch, which is cheap; the main gaps in keras).

Measured on CPU (seed 0, torch / keras): x100 without norm 73.8% / 75.0% (A-carried 47.7% / 50.0%);
BatchNorm on the concatenation 100% / 100%, test loss 0.213 / 0.119, the same as BatchNorm per
branch; LayerNorm on the concatenation 60.5% / 60.5% (A-carried 21.1%); GroupNorm(4) on the
concatenation and every per-branch norm >= 99.6%. x1000: no norm A-carried 28.1% / 21.9%, BatchNorm
100%. Article relu|sigmoid at x1: no norm 63.3% / 65.2% (loss 1.02 / 0.92), BatchNorm 100% (loss
0.23 / 0.13), 95% validation accuracy at epoch 3 with BatchNorm; without it, 24 epochs reach 100%
accuracy at test loss 0.42 / 0.37, still above BatchNorm's after 8.
Branch A's gradient share at init (training mode): no norm 0.013% / 0.016%, LayerNorm on concat
0.06%, BatchNorm 48% / 43%. Batch size 2: all 100%. Train-mode prediction of the BN model: test
loss 0.297 / 0.190 at batch 8, 0.864 / 0.814 at batch 1, against 0.213 / 0.119 in eval mode.
Momentum torch 0.1 vs 0.01 (keras 0.9 vs 0.99): validation accuracy after epoch 2 0.88 vs 0.26
(0.87 vs 0.42), 95% at epoch 3 vs 6 (3 vs 7), identical training accuracy.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from coursekit import data

pytestmark = pytest.mark.slow

SMALL = dict(epochs=8, n=1024, batch_size=64)  # ck.run_size() on a CPU, what the notebooks use there
SMALL_BATCH = dict(n=256, epochs=2, batch_size=2)  # the notebooks' section 5 on a CPU
OTHER_SEEDS = (1, 2)
LAYOUT = {"torch": "NCHW", "keras": "NHWC"}
FW = ["torch", "keras"]
# The main gap holds for two other training seeds in both frameworks; the other claims are
# re-checked on other seeds in torch (cheap) and at seed 0 in keras (~2-3 s per run on a CPU).
SEEDED = [("torch", s) for s in (0, *OTHER_SEEDS)] + [("keras", s) for s in (0, *OTHER_SEEDS)]
TORCH_SEEDS = [("torch", s) for s in (0, *OTHER_SEEDS)] + [("keras", 0)]
DEFAULT_MOMENTUM = {"torch": 0.1, "keras": 0.9}  # coursekit's BatchNorm momentum in each convention
SLOW_MOMENTUM = {"torch": 0.01, "keras": 0.99}  # Keras' default, in each convention


def ck_of(fw):
    if fw == "torch":
        from coursekit import torch as ck
        from coursekit.torch import normalization as ckn
    else:
        from coursekit import keras as ck
        from coursekit.keras import normalization as ckn
    return ck, ckn


@functools.lru_cache(maxsize=None)
def run(fw, kind, seed=0):
    """One of the notebooks' runs, trained once per test session."""
    ck, ckn = ck_of(fw)
    if kind.startswith("x100:"):
        return ck.run_two_branch(scale=100, seed=seed, **ckn.PLACEMENTS[kind[5:]], **SMALL)
    if kind.startswith("x1000:"):
        return ck.run_two_branch(scale=1000, seed=seed, **ckn.PLACEMENTS[kind[6:]], **SMALL)
    if kind.startswith("batch2:"):
        return ck.run_two_branch(scale=100, seed=seed, **ckn.PLACEMENTS[kind[7:]], **SMALL_BATCH)
    if kind == "article:none":
        return ck.run_two_branch(scale=1, activations=("relu", "sigmoid"), seed=seed, **SMALL)
    if kind == "article:batch":
        return ck.run_two_branch(scale=1, activations=("relu", "sigmoid"), norm="batch", seed=seed, **SMALL)
    if kind == "article:none-long":
        return ck.run_two_branch(scale=1, activations=("relu", "sigmoid"), seed=seed, **{**SMALL, "epochs": 24})
    if kind == "momentum:slow":
        return ckn.run_two_branch_bn(momentum=SLOW_MOMENTUM[fw], scale=100, norm="batch", seed=seed, **SMALL)
    raise KeyError(kind)


def split_of(fw, scale=100):
    d = data.make_two_branch(n=SMALL["n"], scale=scale, n_classes=4, layout=LAYOUT[fw], seed=0)
    return d.split(0.25, seed=0)


# --- Section 3: every fix on the failure case ----------------------------------------------------

@pytest.mark.parametrize("fw,seed", SEEDED)
def test_batchnorm_on_concat_fixes_the_x100_failure(fw, seed):
    none, bn = run(fw, "x100:no norm", seed), run(fw, "x100:BatchNorm on concat", seed)
    assert none.accuracy_a <= 0.75 and none.accuracy_b >= 0.95, str(none)
    assert bn.test_accuracy >= 0.99 and bn.accuracy_a >= 0.98, str(bn)
    assert bn.accuracy_a - none.accuracy_a >= 0.25, (str(none), str(bn))
    assert bn.test_loss < 0.5 * none.test_loss, (str(none), str(bn))


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_layernorm_on_concat_does_not_fix_it(fw, seed):
    none, ln = run(fw, "x100:no norm", seed), run(fw, "x100:LayerNorm on concat", seed)
    assert ln.accuracy_a <= 0.4, str(ln)  # below or near chance (25%) on A-carried samples
    assert ln.test_accuracy < none.test_accuracy, (str(none), str(ln))  # worse than no norm at all
    assert ln.accuracy_b >= 0.95, str(ln)


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_batchnorm_on_concat_is_batchnorm_per_branch(fw, seed):
    cat, per = run(fw, "x100:BatchNorm on concat", seed), run(fw, "x100:BatchNorm per branch", seed)
    assert abs(cat.test_loss - per.test_loss) < 1e-3, (str(cat), str(per))
    assert cat.test_accuracy == per.test_accuracy
    # ... yet their "grad share A" differs: measured where the branches enter the fusion, before the
    # norm on the concatenation (A's gradient multiplied by 1/its spread) and after each branch's norm
    a_cat, a_per = cat.report.grad_shares[0], per.report.grad_shares[0]
    assert a_cat > 0.9 and a_per < 0.7, (a_cat, a_per)


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_groupnorm_on_concat_and_every_per_branch_norm_fix_it(fw, seed):
    for label in ("GroupNorm(4) on concat", "BatchNorm per branch", "LayerNorm per branch", "GroupNorm(4) per branch"):
        r = run(fw, f"x100:{label}", seed)
        assert r.test_accuracy >= 0.98 and r.accuracy_a >= 0.95, str(r)


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_x1000_same_picture(fw, seed):
    none, bn, ln = (run(fw, f"x1000:{label}", seed) for label in ("no norm", "BatchNorm on concat", "LayerNorm on concat"))
    assert none.accuracy_a <= 0.4, str(none)
    assert bn.test_accuracy >= 0.99, str(bn)
    assert ln.accuracy_a <= 0.4, str(ln)


@pytest.mark.parametrize("fw", FW)
def test_norm_statistics_shared_across_branches_keep_the_imbalance(fw):
    """The notebooks' ConcatFusion demo: per-channel or per-branch statistics equalize the
    branches; one group (LayerNorm) spanning both leaves A at ~1/50 of B."""
    ck, _ = ck_of(fw)
    rng = np.random.default_rng(0)
    shape = (64, 8, 8, 8)
    a = np.maximum(rng.standard_normal(shape), 0).astype("float32")
    b = (100 * np.maximum(rng.standard_normal(shape), 0)).astype("float32")
    stds = {}
    for norm, groups in [("batch", 4), ("layer", 4), ("group", 2), ("group", 4), ("group", 16)]:
        layer = ck.ConcatFusion([8, 8], norm=norm, groups=groups)
        if fw == "torch":
            import torch

            with torch.no_grad():
                out = layer([torch.from_numpy(a), torch.from_numpy(b)]).numpy()
            sa, sb = out[:, :8].std(), out[:, 8:].std()
        else:
            from keras import ops

            out = ops.convert_to_numpy(layer([a, b], training=True))
            sa, sb = out[..., :8].std(), out[..., 8:].std()
        stds[(norm, groups)] = (sa, sb)
    assert stds[("layer", 4)][0] < 0.05 and stds[("layer", 4)][1] > 1.0, stds
    for key in [("batch", 4), ("group", 2), ("group", 4), ("group", 16)]:
        assert all(abs(s - 1) < 0.01 for s in stds[key]), (key, stds)
    # and BatchNorm on the concatenation equals BatchNorm per branch, exactly
    if fw == "torch":
        import torch
        from torch import nn

        with torch.no_grad():
            cat = nn.BatchNorm2d(16)(torch.cat([torch.from_numpy(a), torch.from_numpy(b)], dim=1))
            per = torch.cat([nn.BatchNorm2d(8)(torch.from_numpy(a)), nn.BatchNorm2d(8)(torch.from_numpy(b))], dim=1)
        np.testing.assert_allclose(cat.numpy(), per.numpy(), atol=1e-6)
    else:
        from keras import layers, ops

        cat = layers.BatchNormalization(epsilon=1e-5)(ops.concatenate([a, b], axis=-1), training=True)
        per = ops.concatenate([layers.BatchNormalization(epsilon=1e-5)(a, training=True),
                               layers.BatchNormalization(epsilon=1e-5)(b, training=True)], axis=-1)
        np.testing.assert_allclose(ops.convert_to_numpy(cat), ops.convert_to_numpy(per), atol=1e-6)


# --- Section 4: the articles' claims -------------------------------------------------------------

@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_article_batchnorm_converges_faster(fw, seed):
    _, ckn = ck_of(fw)
    none, bn = run(fw, "article:none", seed), run(fw, "article:batch", seed)
    assert bn.test_accuracy >= 0.99, str(bn)
    assert none.test_accuracy <= bn.test_accuracy - 0.1, (str(none), str(bn))
    assert none.accuracy_b < none.accuracy_a, str(none)  # the sigmoid branch is the one left behind
    assert none.test_loss > 3 * bn.test_loss, (str(none), str(bn))
    assert ckn.epochs_to_reach(bn.history, 0.95) <= 4, bn.history["val_accuracy"]


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_article_without_batchnorm_is_slow_not_stuck(fw, seed):
    bn, long = run(fw, "article:batch", seed), run(fw, "article:none-long", seed)
    assert long.test_accuracy >= 0.95, str(long)  # 3x the epochs: it does learn ...
    assert long.test_loss > 1.2 * bn.test_loss, (str(long), str(bn))  # ... and still trails BN after 8


@pytest.mark.parametrize("fw", FW)
def test_layernorm_on_concat_does_not_balance_the_gradient(fw):
    ck, ckn = ck_of(fw)
    from coursekit.seeding import seed_everything

    train, _ = split_of(fw)
    xs, y = [x[:256] for x in train.inputs], train.y[:256]
    share = {}
    for label, options in ckn.PLACEMENTS.items():
        seed_everything(0)
        ga, gb = ckn.branch_grad_norms(ck.two_branch_net(n_classes=4, **options), xs, y)
        share[label] = ga**2 / (ga**2 + gb**2)
    assert share["no norm"] < 1e-3, share
    assert share["LayerNorm on concat"] < 1e-2, share
    for label in ("BatchNorm on concat", "GroupNorm(4) on concat", "BatchNorm per branch", "LayerNorm per branch",
                  "GroupNorm(4) per branch"):
        assert share[label] > 0.2, (label, share)


# --- Section 5: small batches --------------------------------------------------------------------

@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_batch_of_two_is_fine_on_8x8_maps(fw, seed):
    for label in ("BatchNorm on concat", "GroupNorm(4) on concat", "LayerNorm per branch"):
        r = run(fw, f"batch2:{label}", seed)
        assert r.test_accuracy >= 0.98, str(r)


@pytest.mark.parametrize("fw", FW)
def test_batch_of_two_on_1x1_maps_gives_plus_minus_one_and_batch_of_one_fails(fw):
    rng = np.random.default_rng(0)
    if fw == "torch":
        import torch
        from torch import nn

        with torch.no_grad():
            out = nn.BatchNorm2d(4)(torch.from_numpy((rng.standard_normal((2, 4, 1, 1)) * 10 + 3).astype("float32")))
        np.testing.assert_allclose(np.abs(out.numpy()), 1.0, atol=1e-3)
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
            nn.BatchNorm2d(4).train()(torch.randn(1, 4, 1, 1))
        nn.BatchNorm2d(4).train()(torch.randn(1, 4, 3, 3))  # larger maps: no error
    else:
        from keras import layers, ops

        x = (rng.standard_normal((2, 1, 1, 4)) * 10 + 3).astype("float32")
        out = ops.convert_to_numpy(layers.BatchNormalization(epsilon=1e-5)(x, training=True))
        np.testing.assert_allclose(np.abs(out), 1.0, atol=1e-3)
        one = (rng.standard_normal((1, 1, 1, 4)) * 10 + 3).astype("float32")
        np.testing.assert_array_equal(ops.convert_to_numpy(layers.BatchNormalization()(one, training=True)), 0.0)


# --- Section 6: train and eval mode --------------------------------------------------------------

@pytest.mark.parametrize("fw", FW)
def test_train_mode_predictions_depend_on_the_batch(fw):
    ck, ckn = ck_of(fw)
    model = run(fw, "x100:BatchNorm on concat").extra["model"]
    _, test = split_of(fw)
    x, y = test.inputs, test.y
    stats = ckn.running_stats(ckn.batch_norm_layers(model)[0])
    logits_eval = ck.predict(model, x)
    assert np.array_equal(logits_eval, ck.predict(model, x))
    b1 = ckn.predict_with_batch_stats(model, x, batch_size=8)
    b2 = ckn.predict_with_batch_stats(model, x, batch_size=8, order=np.random.default_rng(0).permutation(len(y)))
    assert np.abs(b1 - b2).max() > 0.3

    def loss(logits):
        z = logits - logits.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))

    ev, l8, l1 = loss(logits_eval), loss(b1), loss(ckn.predict_with_batch_stats(model, x, batch_size=1))
    assert l8 > 1.2 * ev and l1 > 3 * ev, (ev, l8, l1)
    # predict_with_batch_stats restored the running statistics
    for before, after in zip(stats, ckn.running_stats(ckn.batch_norm_layers(model)[0])):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("fw", FW)
def test_a_train_mode_forward_updates_the_running_statistics(fw):
    ck, ckn = ck_of(fw)
    trained = run(fw, "x100:BatchNorm on concat").extra["model"]
    _, test = split_of(fw)
    xs = [x[:8] for x in test.inputs]
    if fw == "torch":
        import copy

        import torch

        fresh = copy.deepcopy(trained).train()
        before = ckn.running_stats(ckn.batch_norm_layers(fresh)[0])[0]
        with torch.no_grad():
            fresh(*[torch.from_numpy(a) for a in xs])
    else:
        fresh = ck.two_branch_net(n_classes=4, norm="batch")
        fresh.set_weights(trained.get_weights())
        before = ckn.running_stats(ckn.batch_norm_layers(fresh)[0])[0]
        fresh(xs, training=True)
    after = ckn.running_stats(ckn.batch_norm_layers(fresh)[0])[0]
    assert np.abs(after - before).max() > 0.1, (before, after)


@pytest.mark.parametrize("fw,seed", TORCH_SEEDS)
def test_slow_momentum_delays_eval_not_training(fw, seed):
    default, slow = run(fw, "x100:BatchNorm on concat", seed), run(fw, "momentum:slow", seed)
    np.testing.assert_allclose(default.history["accuracy"], slow.history["accuracy"], atol=1e-6)
    _, ckn = ck_of(fw)
    fast_val, slow_val = np.array(default.history["val_accuracy"]), np.array(slow.history["val_accuracy"])
    assert (fast_val - slow_val).max() >= 0.2, (fast_val, slow_val)  # eval mode lags behind ...
    lag = ckn.epochs_to_reach(slow.history, 0.95) - ckn.epochs_to_reach(default.history, 0.95)
    assert lag >= 2, (fast_val, slow_val)  # ... for several epochs
    assert slow.test_accuracy >= 0.95, str(slow)  # and catches up by the end of the run


@pytest.mark.parametrize("fw", FW)
def test_momentum_conventions(fw):
    """torch momentum m updates like keras momentum 1 - m; 22 steps at torch 0.1 reach 90%."""
    _, ckn = ck_of(fw)
    m = DEFAULT_MOMENTUM[fw]
    if fw == "torch":
        import torch
        from torch import nn

        layer = nn.BatchNorm2d(1, momentum=m).train()
        with torch.no_grad():
            for _ in range(22):
                layer(torch.ones(4, 1, 2, 2))
        value = float(layer.running_mean[0])
    else:
        from keras import layers, ops

        layer = layers.BatchNormalization(momentum=m)
        for _ in range(22):
            layer(np.ones((4, 2, 2, 1), "float32"), training=True)
        value = float(ops.convert_to_numpy(layer.moving_mean)[0])
    assert value == pytest.approx(1 - 0.9**22, abs=1e-5)
    assert value >= 0.9
    assert ckn.MOMENTUM_CONVENTION == fw
