"""Lesson 03 section 8 ("inside BatchNorm"), measured in both frameworks: a bias right before
BatchNorm gets no gradient and changes nothing, the weights before BatchNorm are scale-free,
weight decay sets their effective learning rate (three seeds, at the run size
`coursekit.run_size()` picks: small here and in CI, full with ``COURSEKIT_RUN_SIZE=full``),
BatchNorm folds into the conv before it, and freezing it differs between the frameworks.

Measured (seed 0, branch A's conv, ||w|| start -> end; effective lr = lr/||w||^2):
- small (8 epochs, 1024 samples, 128 steps): torch 0: 1.722 -> 1.734, 1e-3: -> 1.653, 1e-2: -> 1.078
  (x2.55); keras 0: 1.350 -> 1.401, 1e-3: -> 1.336, 1e-2: -> 0.884 (x2.33).
- full (24 epochs, 4096 samples, 1152 steps): torch 1e-3 -> 0.977, 1e-2: 0.545, 0.814, 0.604, 2.679
  at the checkpoints; keras 1e-3 -> 0.795, 1e-2: 0.498, 0.705, 1.75, 0.909; seed 2: torch 1.43, 1.55, 0.55,
  1.21, keras 2.26, 0.64, 0.56, 2.01 (the first checkpoint, after 288 steps, is already past the fall).
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

from coursekit.runsize import run_size

pytestmark = pytest.mark.slow

RS = run_size()  # small unless COURSEKIT_RUN_SIZE=full
RUN = dict(n=RS.n_train, epochs=RS.epochs, batch_size=RS.batch_size)
SEEDS = (0, 1, 2)
DECAYS = (0.0, 1e-3, 1e-2)


def ckn_of(fw):
    if fw == "torch":
        from coursekit.torch import normalization as ckn
    else:
        from coursekit.keras import normalization as ckn
    return ckn


@functools.lru_cache(maxsize=None)
def decay_runs(fw, seed):
    return {wd: ckn_of(fw).run_weight_decay(wd, lr=0.5, seed=seed, **RUN) for wd in DECAYS}


@pytest.mark.parametrize("fw", ["torch", "keras"])
@pytest.mark.parametrize("seed", SEEDS)
def test_weight_decay_sets_the_effective_learning_rate(fw, seed):
    runs = decay_runs(fw, seed)
    assert runs[0.0].epochs == [0, *np.cumsum([RS.epochs // 4 + (i < RS.epochs % 4) for i in range(4)])]
    for r in runs.values():
        assert r.test_accuracy >= 0.99, (fw, seed, str(r))  # "every run reaches 100%" (to the test split's 0.4%)
    a0 = [a for a, _ in runs[0.0].norms]
    b0 = [b for _, b in runs[0.0].norms]
    # "without weight decay the norm never shrinks" (each SGD step adds lr^2 ||g||^2 to ||w||^2)
    for norms in (a0, b0):
        assert all(later >= earlier - 1e-4 for earlier, later in zip(norms, norms[1:])), (fw, seed, norms)
    # "with 1e-3 the norm ends below the no-decay run's"
    for i in (0, 1):
        assert runs[1e-3].norms[-1][i] < runs[0.0].norms[-1][i], (fw, seed, runs[1e-3].norms, runs[0.0].norms)
    a2 = [a for a, _ in runs[1e-2].norms]
    if RS.name == "small":  # "with 1e-2, over the small run, it falls at every checkpoint, faster than with
        # 1e-3, and the effective learning rate of branch A's conv grows 2.3-2.7x"
        assert all(later < earlier for earlier, later in zip(a2, a2[1:])), (fw, seed, a2)
        assert all(a < b for (a, _), (b, _) in zip(runs[1e-2].norms[1:], runs[1e-3].norms[1:])), (fw, seed, a2)
        assert 2.3 <= (a2[0] / a2[-1]) ** 2 <= 2.7, (fw, seed, a2)
    else:  # "with the full run size the 1e-2 run's norm stops falling and swings back up"
        assert any(later > earlier for earlier, later in zip(a2[1:], a2[2:])), (fw, seed, a2)


# ------------------------------------------------------------------ 8.1, 8.2, 8.4, 8.5: no training
def _torch():
    import torch
    from torch import nn
    return torch, nn


@pytest.mark.parametrize("fw", ["torch", "keras"])
def test_a_bias_right_before_batchnorm_changes_nothing_and_learns_nothing(fw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3, 10, 10)).astype("float32")
    target = rng.normal(size=(16, 8, 8, 8)).astype("float32")
    kernel = rng.normal(scale=0.3, size=(8, 3, 3, 3)).astype("float32")  # (out, in, kh, kw)
    bias = rng.uniform(-5, 5, 8).astype("float32")
    if fw == "torch":
        torch, nn = _torch()
        conv_b, conv_0 = nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 3, bias=False)
        with torch.no_grad():
            conv_b.weight.copy_(torch.from_numpy(kernel))
            conv_0.weight.copy_(torch.from_numpy(kernel))
            conv_b.bias.copy_(torch.from_numpy(bias))
        bn = nn.BatchNorm2d(8).train()
        out_b, out_0 = bn(conv_b(torch.from_numpy(x))), bn(conv_0(torch.from_numpy(x)))
        (out_b * torch.from_numpy(target)).mean().backward()
        diff = (out_b - out_0).abs().max().item()
        g_bias, g_kernel = conv_b.bias.grad.abs().max().item(), conv_b.weight.grad.abs().max().item()
    else:
        import tensorflow as tf
        from keras import layers
        xk, tk = x.transpose(0, 2, 3, 1), target.transpose(0, 2, 3, 1)
        conv_b, conv_0 = layers.Conv2D(8, 3), layers.Conv2D(8, 3, use_bias=False)
        conv_b.build(xk.shape), conv_0.build(xk.shape)
        conv_b.kernel.assign(kernel.transpose(2, 3, 1, 0)), conv_0.kernel.assign(kernel.transpose(2, 3, 1, 0))
        conv_b.bias.assign(bias)
        bn = layers.BatchNormalization()
        with tf.GradientTape() as tape:
            out_b = bn(conv_b(xk), training=True)
            loss = tf.reduce_mean(out_b * tk)
        gk, gb = tape.gradient(loss, [conv_b.kernel, conv_b.bias])
        diff = float(tf.reduce_max(tf.abs(out_b - bn(conv_0(xk), training=True))))
        g_bias, g_kernel = float(tf.reduce_max(tf.abs(gb))), float(tf.reduce_max(tf.abs(gk)))
    assert diff < 1e-5, diff  # "agree to float rounding"
    assert g_bias < 1e-6 * max(1.0, g_kernel) and g_kernel > 1e-3, (g_bias, g_kernel)  # "no gradient beyond rounding"


@pytest.mark.parametrize("fw", ["torch", "keras"])
def test_weights_before_batchnorm_are_scale_free(fw):
    from coursekit import data
    if fw == "torch":
        torch, _ = _torch()
        import torch.nn.functional as F
        from coursekit import torch as ck
        d = data.make_two_branch(n=256, scale=1, n_classes=4, layout="NCHW", seed=0)
        xa, xb = (torch.as_tensor(v) for v in d.inputs)
        torch.manual_seed(0)
        net = ck.two_branch_net(n_classes=4, norm="batch").train()
        big = copy.deepcopy(net)
        with torch.no_grad():
            for p in big.branch_a[0].parameters():
                p.mul_(10)
        logits, grads = [], []
        for model in (net, big):
            out = model(xa, xb)
            F.cross_entropy(out, torch.as_tensor(d.y).long()).backward()
            logits.append(out.detach().numpy())
            grads.append(model.branch_a[0].weight.grad.norm().item())
    else:
        import keras
        import tensorflow as tf
        from coursekit import keras as ck
        d = data.make_two_branch(n=256, scale=1, n_classes=4, layout="NHWC", seed=0)
        keras.utils.set_random_seed(0)
        net = ck.two_branch_net(n_classes=4, norm="batch")
        big = keras.models.clone_model(net)
        big.set_weights(net.get_weights())
        conv = big.get_layer("branch_a_conv")
        conv.set_weights([10 * w for w in conv.get_weights()])
        logits, grads = [], []
        for model in (net, big):
            with tf.GradientTape() as tape:
                out = model(list(d.inputs), training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(d.y, out, from_logits=True))
            logits.append(out.numpy())
            grads.append(float(tf.norm(tape.gradient(loss, model.get_layer("branch_a_conv").kernel))))
    assert np.abs(logits[0] - logits[1]).max() < 1e-3  # the same output (BatchNorm's eps aside)
    assert grads[1] / grads[0] == pytest.approx(0.1, abs=1e-3), grads  # "ratio 0.100"


def _conv_bn_with_statistics(fw, rng):
    """A conv -> BatchNorm pair with the same weights in both frameworks and trained statistics."""
    kernel = rng.normal(scale=0.3, size=(8, 3, 3, 3)).astype("float32")  # (out, in, kh, kw)
    bias = rng.normal(size=8).astype("float32")
    gamma, beta = rng.uniform(0.5, 2, 8).astype("float32"), rng.uniform(-1, 1, 8).astype("float32")
    mean, var = rng.normal(size=8).astype("float32"), rng.uniform(0.2, 3, 8).astype("float32")
    if fw == "torch":
        torch, nn = _torch()
        conv, bn = nn.Conv2d(3, 8, 3, padding=2, dilation=2), nn.BatchNorm2d(8).eval()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel)), conv.bias.copy_(torch.from_numpy(bias))
            bn.weight.copy_(torch.from_numpy(gamma)), bn.bias.copy_(torch.from_numpy(beta))
            bn.running_mean.copy_(torch.from_numpy(mean)), bn.running_var.copy_(torch.from_numpy(var))
        return conv, bn
    from keras import layers
    conv, bn = layers.Conv2D(8, 3, padding="same", dilation_rate=2), layers.BatchNormalization(epsilon=1e-5)
    conv.build((None, None, None, 3)), bn.build((None, None, None, 8))
    conv.set_weights([kernel.transpose(2, 3, 1, 0), bias])
    bn.set_weights([gamma, beta, mean, var])
    return conv, bn


def test_folding_batchnorm_keeps_the_inference_output_in_both_frameworks_alike():
    """"The same outputs, one layer fewer", and the twins fold the same weights to the same numbers
    (a dilated conv, padding 2 / "same": the folded layer keeps every setting of the original)."""
    import tensorflow as tf
    from coursekit.keras import normalization as kn
    from coursekit.torch import normalization as tn
    torch, _ = _torch()
    x = np.random.default_rng(1).normal(size=(4, 3, 10, 10)).astype("float32")
    conv_t, bn_t = _conv_bn_with_statistics("torch", np.random.default_rng(0))
    conv_k, bn_k = _conv_bn_with_statistics("keras", np.random.default_rng(0))
    folded_t, folded_k = tn.fold_batch_norm(conv_t, bn_t), kn.fold_batch_norm(conv_k, bn_k)
    with torch.no_grad():
        ref_t, out_t = bn_t(conv_t(torch.from_numpy(x))).numpy(), folded_t(torch.from_numpy(x)).numpy()
    xk = x.transpose(0, 2, 3, 1)
    ref_k = bn_k(conv_k(xk), training=False).numpy().transpose(0, 3, 1, 2)
    out_k = folded_k(tf.constant(xk)).numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out_t, ref_t, atol=1e-5)
    np.testing.assert_allclose(out_k, ref_k, atol=1e-5)
    np.testing.assert_allclose(out_t, out_k, atol=1e-5)  # parity of the twins
    np.testing.assert_allclose(folded_t.weight.detach().numpy(), folded_k.kernel.numpy().transpose(3, 2, 0, 1), atol=1e-6)
    assert bn_t.training is False and conv_t.bias is not None  # the originals are untouched
    assert folded_k.dilation_rate == conv_k.dilation_rate and folded_t.dilation == conv_t.dilation


def test_folding_refuses_what_it_cannot_fold():
    from keras import layers
    from coursekit.keras import normalization as kn
    from coursekit.torch import normalization as tn
    _, nn = _torch()
    with pytest.raises(TypeError, match=r"received BatchNorm2d and Conv2d\. Pass \(conv, bn\)"):
        tn.fold_batch_norm(nn.BatchNorm2d(8), nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="normalizes 4 channels but the conv makes 8"):
        tn.fold_batch_norm(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        tn.fold_batch_norm(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, track_running_stats=False))
    with pytest.raises(ValueError, match="needs built layers"):
        kn.fold_batch_norm(layers.Conv2D(8, 3), layers.BatchNormalization())
    conv, bn = layers.Conv2D(8, 3), layers.BatchNormalization(axis=1)
    conv.build((None, 10, 10, 3)), bn.build((None, 8, 10, 10))
    with pytest.raises(ValueError, match="normalizes axis 1, not the conv's channel axis"):
        kn.fold_batch_norm(conv, bn)
    for ckn in (tn, kn):
        with pytest.raises(ValueError, match=r"weight_decay must be a number >= 0; received -0\.1"):
            ckn.run_weight_decay(-0.1)


def test_freezing_batchnorm_differs_between_the_frameworks():
    """PyTorch: requires_grad_(False) keeps batch statistics and moves the running ones; eval() stops
    both. Keras: trainable=False runs BatchNormalization in inference mode even with training=True."""
    import tensorflow as tf
    conv_t, bn_t = _conv_bn_with_statistics("torch", np.random.default_rng(0))
    torch, _ = _torch()
    x = (3 * np.random.default_rng(2).normal(size=(32, 8, 6, 6)) + 2).astype("float32")
    frozen = copy.deepcopy(bn_t).train().requires_grad_(False)
    before = frozen.running_mean.clone()
    with torch.no_grad():
        out_train = frozen(torch.from_numpy(x))
        assert (frozen.running_mean - before).abs().max().item() > 0.1
        assert (out_train - frozen.eval()(torch.from_numpy(x))).abs().max().item() > 1.0
    _, bn_k = _conv_bn_with_statistics("keras", np.random.default_rng(0))
    xk = tf.constant(x.transpose(0, 2, 3, 1))
    before = bn_k.moving_mean.numpy().copy()
    assert float(tf.reduce_max(tf.abs(bn_k(xk, training=True) - bn_k(xk, training=False)))) > 1.0
    assert np.abs(bn_k.moving_mean.numpy() - before).max() > 1e-3
    bn_k.trainable = False
    before = bn_k.moving_mean.numpy().copy()
    assert float(tf.reduce_max(tf.abs(bn_k(xk, training=True) - bn_k(xk, training=False)))) == 0.0
    assert np.array_equal(bn_k.moving_mean.numpy(), before)
