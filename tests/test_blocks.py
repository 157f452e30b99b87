"""Lesson 09's reference layers: the PyTorch and Keras twins compute the same numbers from the
same weights (1e-5), and the counts the lesson prints agree with the frameworks' own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit import architectures as arch
from coursekit.keras import architectures as k_arch
from coursekit.keras import blocks as kb
from coursekit.torch import architectures as t_arch
from coursekit.torch import blocks as tb
from parity_utils import assert_same_state, copy_torch_to_keras, nchw, nhwc, rand_nchw, randomize_, to_numpy

CASES = {
    "inception": (lambda m: m.InceptionBlock(6, 3, 2, 4, 2, 3, 2), (2, 6, 7, 9)),
    "inception_naive": (lambda m: m.InceptionBlock(6, 3, 2, 4, 2, 3, 2, reduce=False), (2, 6, 7, 9)),
    "dense_block": (lambda m: m.DenseBlock(5, 3, 3), (3, 5, 6, 6)),
    "dense_layer": (lambda m: m.DenseLayer(5, 4), (3, 5, 6, 6)),
    "transition": (lambda m: m.Transition(7, 3), (2, 7, 8, 6)),
    "residual": (lambda m: m.ResidualBlock(5), (2, 5, 6, 6)),
}


def _run_keras(layer, x, training):
    return to_numpy(layer(nhwc(x), training=training)) if training is not None else to_numpy(layer(nhwc(x)))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_single_input_blocks_match(name, training):
    make, shape = CASES[name]
    t, k = make(tb), make(kb)
    randomize_(t, seed=1)
    copy_torch_to_keras(t, k)
    x = rand_nchw(*shape, seed=2)
    t.train(training)
    out_t = to_numpy(t(torch.from_numpy(x)))
    takes_training = name not in ("inception", "inception_naive")
    out_k = _run_keras(k, x, training if takes_training else None)
    np.testing.assert_allclose(nchw(out_k), out_t, atol=1e-5, rtol=1e-5)
    if training and takes_training:  # BatchNorm's moving statistics moved alike
        assert_same_state(t, k)


def test_fpn_top_down_matches_and_aligns_odd_sizes():
    t, k = tb.FPNTopDown([3, 5, 7], 4), kb.FPNTopDown([3, 5, 7], 4)
    randomize_(t, seed=3)
    copy_torch_to_keras(t, k)
    xs = [rand_nchw(2, 3, 13, 11, seed=4), rand_nchw(2, 5, 7, 6, seed=5), rand_nchw(2, 7, 4, 3, seed=6)]
    outs_t = t([torch.from_numpy(x) for x in xs])
    outs_k = k([nhwc(x) for x in xs])
    assert [tuple(o.shape) for o in outs_t] == [(2, 4, 13, 11), (2, 4, 7, 6), (2, 4, 4, 3)]
    for a, b in zip(outs_t, outs_k):
        np.testing.assert_allclose(nchw(to_numpy(b)), to_numpy(a), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["FiLM", "GatedFusion"])
def test_conditioning_layers_match_and_start_as_documented(name):
    t, k = getattr(tb, name)(3, 4), getattr(kb, name)(3, 4)
    x, c = rand_nchw(2, 4, 5, 5, seed=7), rand_nchw(2, 3, seed=8)
    start = to_numpy(t(torch.from_numpy(x), torch.from_numpy(c)))
    # FiLM starts as the identity; the gate starts at sigmoid(0) = 0.5 everywhere.
    np.testing.assert_allclose(start, x if name == "FiLM" else 0.5 * x, atol=1e-6)
    randomize_(t, seed=9)
    copy_torch_to_keras(t, k)
    out_t = to_numpy(t(torch.from_numpy(x), torch.from_numpy(c)))
    out_k = nchw(to_numpy(k(nhwc(x), c)))
    np.testing.assert_allclose(out_k, out_t, atol=1e-5, rtol=1e-5)
    assert not np.allclose(out_t, start)  # the condition does change the features


def test_film_is_a_per_channel_affine_map_of_x():
    film = randomize_(tb.FiLM(2, 3), seed=10)
    c = torch.tensor([[1.0, 0.0]])
    x0, x1 = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    x1[0, 1] = 1.0
    delta = film(x1, c) - film(x0, c)
    assert torch.allclose(delta[0, [0, 2]], torch.zeros(2, 2, 2))  # no channel mixing
    gamma = 1 + film.film(c)[0, 1]
    assert torch.allclose(delta[0, 1], gamma.expand(2, 2))


def test_inception_counts_agree_with_the_frameworks():
    cfg = (64, 16, 24, 32, 4, 8, 8)
    x = rand_nchw(1, 64, 12, 12, seed=11)
    for reduce in (True, False):
        costs = arch.inception_costs(*cfg, hw=(12, 12), reduce=reduce)["total"]
        t = tb.InceptionBlock(*cfg, reduce=reduce)
        k = kb.InceptionBlock(*cfg, reduce=reduce)
        assert costs["params"] == sum(p.numel() for p in t.parameters()) == int(sum(np.prod(w.shape) for w in k.trainable_weights))
        assert costs["flops"] == t_arch.count_flops(t, x)
        assert costs["out_channels"] == t(torch.from_numpy(x)).shape[1] == t.out_channels
    # TensorFlow's profiler adds one flop per bias and 9 per max-pool output to the same conv count.
    k = kb.InceptionBlock(*cfg)
    conv = arch.inception_costs(*cfg, hw=(12, 12))["total"]["flops"]
    biases = (16 + 24 + 32 + 4 + 8 + 8) * 144
    assert k_arch.count_flops(k, nhwc(x)) == conv + biases + 9 * 64 * 144


@pytest.mark.parametrize("c0,k,layers,hw,batch", [(8, 4, 3, (10, 10), 2), (5, 3, 6, (7, 9), 1)])
def test_dense_block_memory_count_matches_autograd(c0, k, layers, hw, batch):
    block = tb.DenseBlock(c0, k, layers)
    x = torch.randn(batch, c0, *hw)
    assert t_arch.saved_activation_bytes(block, x) == 4 * arch.dense_block_saved_floats(c0, k, layers, hw, batch=batch)
    assert block(x).shape[1] == arch.dense_block_channels(c0, k, layers)[-1]


def test_concat_fan_in_variance_matches_a_he_initialized_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(24, 64, 3, padding=1, bias=False)
    torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    x = torch.cat([torch.randn(256, 16, 8, 8), 10 * torch.randn(256, 8, 8, 8)], dim=1)
    measured = conv(x)[:, :, 1:-1, 1:-1].var().item()
    predicted = arch.concat_fan_in_variance([1.0, 100.0], [16, 8])
    assert measured == pytest.approx(predicted["variance"], rel=0.1)
    assert predicted["share_1"] == pytest.approx(800 / 816)


@pytest.mark.parametrize("mod", [tb, kb], ids=["torch", "keras"])
def test_zero_gamma_residual_block_starts_as_relu_of_its_input(mod):
    x = rand_nchw(3, 4, 5, 5, seed=3)
    block = mod.ResidualBlock(4, zero_gamma=True)
    if mod is tb:
        block.train()
        out = to_numpy(block(torch.from_numpy(x)))
    else:
        out = nchw(to_numpy(block(nhwc(x), training=True)))
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    plain = mod.ResidualBlock(4)
    y = to_numpy(plain(torch.from_numpy(x))) if mod is tb else nchw(to_numpy(plain(nhwc(x), training=True)))
    assert np.abs(y - np.maximum(x, 0)).max() > 0.1, "with gamma 1 the branch must add something"


def test_residual_profile_twins_agree():
    """Lesson 05's residual stack: the same NumPy-drawn weights in both frameworks give the same
    numbers (1e-5) at init; after one SGD step through 16 BatchNorms, float32 rounding leaves ~1e-3
    relative on the smallest gradients, so that case is compared at atol 1e-5."""
    from coursekit.keras.deepnet import residual_profile as k_profile
    from coursekit.torch.deepnet import residual_profile as t_profile

    for zero_gamma in (False, True):
        for steps, atol in ((0, 1e-7), (1, 1e-5)):
            t = t_profile(8, 4, zero_gamma=zero_gamma, steps=steps, seed=5, batch=8, size=6)
            k = k_profile(8, 4, zero_gamma=zero_gamma, steps=steps, seed=5, batch=8, size=6)
            for key in ("forward", "conv_grad", "gamma_grad"):
                np.testing.assert_allclose(k[key], t[key], rtol=1e-5, atol=atol, err_msg=f"{key} {zero_gamma} {steps}")


def test_bad_arguments_name_what_was_received():
    for mod in (tb, kb):
        with pytest.raises(ValueError, match="growth must be a positive int; received 0"):
            mod.DenseBlock(4, 0, 2)
        with pytest.raises(ValueError, match="channels must be a positive int; received 0"):
            mod.ResidualBlock(0)
        with pytest.raises(ValueError, match="built for 2 levels; received 1"):
            mod.FPNTopDown([3, 4], 2)([np.zeros((1, 3, 4, 4), "float32")])
    with pytest.raises(ValueError, match="skip must be one of"):
        t_arch.MiniUNet(skip="sum")
    with pytest.raises(NotImplementedError, match="dense_block_saved_floats"):
        k_arch.saved_activation_bytes(None, None)


def test_the_frameworks_own_zero_gamma_switches_do_what_lesson_05_says():
    """Lesson 05: torchvision's ResNets take zero_init_residual=True; in Keras, BatchNormalization(
    gamma_initializer="zeros") on each block's last BatchNorm."""
    import keras
    import torchvision

    net = torchvision.models.resnet18(weights=None, zero_init_residual=True)
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert blocks and all(float(b.bn2.weight.detach().abs().max()) == 0.0 for b in blocks)
    assert all(float(b.bn1.weight.detach().abs().min()) == 1.0 for b in blocks)  # only the last BN of each block
    bn = keras.layers.BatchNormalization(gamma_initializer="zeros")
    bn.build((None, 4, 4, 3))
    np.testing.assert_array_equal(bn.gamma.numpy(), np.zeros(3, np.float32))
