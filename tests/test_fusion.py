"""coursekit.torch.fusion and coursekit.keras.fusion: parity between the twins, and the errors.

Convention in this file: torch tensors are NCHW, keras tensors NHWC, unless a test says
otherwise. Weights are copied torch -> keras with tests/parity_utils.py.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import torch  # noqa: E402
import keras  # noqa: E402

from coursekit.keras import fusion as kf  # noqa: E402
from coursekit.keras._tf import tf  # noqa: E402
from coursekit.shapes import ShapeMismatchError  # noqa: E402
from coursekit.torch import fusion as tf_  # noqa: E402
from parity_utils import (  # noqa: E402
    assert_same_state, copy_torch_to_keras, nhwc, rand_nchw, randomize_, to_numpy,
)

REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-5
RTOL = 0.0  # measured: moving statistics agree to ~4e-9, so no relative slack is needed
PUBLIC = [
    "ConcatFusion", "AddFusion", "WeightedSumFusion", "SqueezeExcitation", "SEFusion",
    "AttentionGateFusion",
]
H = W = 5


@pytest.fixture(autouse=True)
def _seeded():
    # Layers draw their initial weights from the global RNGs; keep each test reproducible.
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)


def test_public_names_and_signatures_mirror():
    assert tf_.__all__ == kf.__all__ == PUBLIC
    for name in PUBLIC:
        t_cls, k_cls = getattr(tf_, name), getattr(kf, name)
        assert t_cls.__doc__ and k_cls.__doc__
        t_sig = inspect.signature(t_cls.__init__).parameters
        k_sig = inspect.signature(k_cls.__init__).parameters
        k_params = [(p.name, p.default) for p in k_sig.values() if p.kind != p.VAR_KEYWORD]
        assert [(p.name, p.default) for p in t_sig.values()] == k_params, name


def test_branch_checks_are_shared_by_both_twins():
    from coursekit import branches

    assert tf_._check_branches is branches._check_branches is kf._check_branches


# --- parity ------------------------------------------------------------------------------------
# (id, class, args, kwargs, channels of each input; an int means a single map, not a list)

PARITY_CASES = [
    ("concat-plain-2", "ConcatFusion", ([3, 5],), {}, [3, 5]),
    ("concat-batch-3", "ConcatFusion", ([3, 5, 8],), {"norm": "batch"}, [3, 5, 8]),
    ("concat-batch-proj-2", "ConcatFusion", ([3, 5],), {"norm": "batch", "out_channels": 4}, [3, 5]),
    ("concat-layer-proj-2", "ConcatFusion", ([4, 2],), {"norm": "layer", "out_channels": 6}, [4, 2]),
    ("concat-group-4", "ConcatFusion", ([2, 2, 4, 4],), {"norm": "group", "groups": 4}, [2, 2, 4, 4]),
    ("add-2", "AddFusion", (2,), {}, [4, 4]),
    ("add-3", "AddFusion", (3,), {}, [4, 4, 4]),
    ("add-4", "AddFusion", (4,), {}, [4, 4, 4, 4]),
    ("weighted-scalar-2", "WeightedSumFusion", (2,), {"mode": "scalar"}, [4, 4]),
    ("weighted-softmax-3", "WeightedSumFusion", (3,), {"mode": "softmax"}, [4, 4, 4]),
    ("weighted-channel-4", "WeightedSumFusion", (4,), {"channels": 6, "mode": "channel"}, [6] * 4),
    ("se", "SqueezeExcitation", (16,), {"reduction": 4}, 16),
    ("se-squeeze", "SqueezeExcitation", (6,), {"squeeze_channels": 3}, 6),
    ("sefusion-concat-2", "SEFusion", ([8, 8],), {"reduction": 4}, [8, 8]),
    ("sefusion-branch-3", "SEFusion", ([4, 8, 12],), {"reduction": 4, "mode": "branch"}, [4, 8, 12]),
    ("sefusion-concat-4", "SEFusion", ([2, 2, 2, 2],), {"reduction": 2}, [2, 2, 2, 2]),
    ("attention-2", "AttentionGateFusion", (6,), {}, [6, 6]),
    ("attention-3", "AttentionGateFusion", (6,), {"num_branches": 3, "hidden": 4}, [6, 6, 6]),
    ("attention-4", "AttentionGateFusion", (3,), {"num_branches": 4}, [3] * 4),
]


def _inputs(channels, seed: int = 0):
    """NCHW numpy input(s): a list of maps, or one map when `channels` is an int."""
    if isinstance(channels, int):
        return rand_nchw(3, channels, H, W, seed=seed)
    return [rand_nchw(3, c, H, W, seed=seed + i) for i, c in enumerate(channels)]


def _apply(fn, x):
    return [fn(m) for m in x] if isinstance(x, list) else fn(x)


def test_parity_cases_cover_every_layer_and_option():
    seen = {(cls, kw.get("norm"), kw.get("mode")) for _, cls, _, kw, _ in PARITY_CASES}
    assert {cls for cls, _, _ in seen} == set(PUBLIC)
    assert {n for cls, n, _ in seen if cls == "ConcatFusion"} == {None, "batch", "layer", "group"}
    assert {m for cls, _, m in seen if cls == "WeightedSumFusion"} == {"scalar", "softmax", "channel"}
    assert {m or "concat" for cls, _, m in seen if cls == "SEFusion"} == {"concat", "branch"}


@pytest.mark.parametrize("case", PARITY_CASES, ids=[c[0] for c in PARITY_CASES])
def test_parity_with_copied_weights(case):
    """Same weights, same input -> same output, in training mode (batch statistics) and in
    inference mode (moving statistics after that one training step); and each framework's
    non-default layout gives the same numbers as its default."""
    _, cls, args, kwargs, channels = case
    t = randomize_(getattr(tf_, cls)(*args, **kwargs), seed=1)
    t_last = getattr(tf_, cls)(*args, **kwargs, data_format="NHWC")
    t_last.load_state_dict(t.state_dict())
    k = getattr(kf, cls)(*args, **kwargs)
    k_first = getattr(kf, cls)(*args, **kwargs, data_format="NCHW")
    copy_torch_to_keras(t, k)
    copy_torch_to_keras(t, k_first)

    x = _inputs(channels)
    x_t, x_t_last = _apply(torch.from_numpy, x), _apply(lambda a: torch.from_numpy(nhwc(a)), x)
    x_k, x_k_first = _apply(nhwc, x), x

    for training in (True, False):
        t.train(training)
        t_last.train(training)
        with torch.no_grad():
            ref = to_numpy(t(x_t))
            got_t_last = to_numpy(t_last(x_t_last))
        got_k = to_numpy(k(x_k, training=training))
        got_k_first = to_numpy(k_first(x_k_first, training=training))
        np.testing.assert_allclose(got_k, nhwc(ref), atol=ATOL, rtol=0, err_msg=f"training={training}")
        np.testing.assert_allclose(got_k_first, ref, atol=ATOL, rtol=0, err_msg=f"training={training}")
        np.testing.assert_allclose(got_t_last, nhwc(ref), atol=ATOL, rtol=0, err_msg=f"training={training}")
        if training:
            # One training step moved BatchNorm's statistics; the twins must move them alike.
            assert_same_state(t, k, atol=ATOL, rtol=RTOL)
            assert_same_state(t, k_first, atol=ATOL, rtol=RTOL)
    if cls == "AttentionGateFusion":
        a_t = to_numpy(t.attention(x_t))
        np.testing.assert_allclose(to_numpy(k.attention(x_k)), nhwc(a_t), atol=ATOL, rtol=0)
        np.testing.assert_allclose(to_numpy(k_first.attention(x_k_first)), a_t, atol=ATOL, rtol=0)
        np.testing.assert_allclose(to_numpy(t_last.attention(x_t_last)), nhwc(a_t), atol=ATOL, rtol=0)
    if cls == "WeightedSumFusion":
        np.testing.assert_allclose(k.branch_weights(), t.branch_weights(), atol=1e-7, rtol=0)


def test_batchnorm_moving_variance_is_unbiased_like_pytorch():
    # Keras' own BatchNormalization moves towards the biased batch variance; ours must follow
    # torch's unbiased one, which differs by n / (n - 1) with n = N*H*W = 3*5*5 here.
    x = [rand_nchw(3, 2, H, W), rand_nchw(3, 2, H, W, seed=1)]
    k = kf.ConcatFusion([2, 2], norm="batch")
    k(_apply(nhwc, x), training=True)
    batch = np.concatenate(x, axis=1)
    expected = 0.9 * 1.0 + 0.1 * batch.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(k.norm.moving_variance.numpy(), expected, rtol=1e-5)


# Creating a torch optimizer or importing torchvision.ops loads torch._dynamo, which imports
# triton; in this environment importing triton AFTER TensorFlow segfaults the interpreter (the
# reverse order is fine). Test files that import keras (test_align.py) are collected first, so
# these checks run in a fresh, torch-only interpreter.
TORCH_ONLY_CHECKS = """
import numpy as np, torch, torchvision
from coursekit.torch import fusion as tf_
from parity_utils import rand_nchw, randomize_

# SqueezeExcitation equals torchvision's, given the same weights.
ref = randomize_(torchvision.ops.SqueezeExcitation(12, 3), seed=2)
ours = tf_.SqueezeExcitation(12, squeeze_channels=3)
ours.load_state_dict(ref.state_dict())  # strict: the parameter names match
assert tf_.SqueezeExcitation(64).squeeze_channels == 4  # the paper's r = 16
x = torch.from_numpy(rand_nchw(2, 12, 7, 7))
with torch.no_grad():
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=1e-6, rtol=0)
x_last = x.permute(0, 2, 3, 1)
ours_last = tf_.SqueezeExcitation(12, squeeze_channels=3, data_format="NHWC")
ours_last.load_state_dict(ref.state_dict())
with torch.no_grad():
    np.testing.assert_allclose(ours_last(x_last).numpy(), ref(x).permute(0, 2, 3, 1).numpy(), atol=1e-6, rtol=0)

# WeightedSumFusion's weights are registered, so model.parameters() hands them to the optimizer.
for mode in ("scalar", "softmax", "channel"):
    torch.manual_seed(0)
    layer = tf_.WeightedSumFusion(3, channels=4, mode=mode)
    model = torch.nn.Sequential()
    model.add_module("fuse", layer)
    assert any(p is layer.weight for p in model.parameters()), mode
    maps = [torch.from_numpy(rand_nchw(2, 4, 3, 3, seed=i)) for i in range(3)]
    target = torch.from_numpy(rand_nchw(2, 4, 3, 3, seed=9))
    before = layer.branch_weights().copy()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    (model(maps) - target).square().mean().backward()
    opt.step()
    assert not np.allclose(layer.branch_weights(), before), mode
    if mode == "softmax":
        assert abs(layer.branch_weights().sum() - 1.0) < 1e-6
"""


def _python(code: str) -> subprocess.Popen:
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_torch_only_checks_in_a_fresh_interpreter():
    """SqueezeExcitation == torchvision.ops.SqueezeExcitation (load_state_dict, 1e-6), and
    WeightedSumFusion's weights are in model.parameters() and change after one SGD step."""
    assert importlib.util.find_spec("torchvision") is not None, "torchvision is part of the torch extra"
    proc = _python(TORCH_ONLY_CHECKS)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err


# --- any number of branches ------------------------------------------------------------------

def _make(mod, name: str, n: int, c: int = 4, **kw):
    if name in ("ConcatFusion", "SEFusion"):
        return getattr(mod, name)([c] * n, **({"reduction": 2} if name == "SEFusion" else {}), **kw)
    if name == "AttentionGateFusion":
        return mod.AttentionGateFusion(c, num_branches=n, **kw)
    return getattr(mod, name)(n, **kw)


BRANCH_LAYERS = ["ConcatFusion", "AddFusion", "WeightedSumFusion", "SEFusion", "AttentionGateFusion"]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("name", BRANCH_LAYERS)
def test_any_number_of_branches(name, n):
    c_out = 4 * n if name in ("ConcatFusion", "SEFusion") else 4
    x = [rand_nchw(2, 4, 6, 6, seed=i) for i in range(n)]
    assert tuple(_make(tf_, name, n)([torch.from_numpy(m) for m in x]).shape) == (2, c_out, 6, 6)
    assert tuple(_make(kf, name, n)([nhwc(m) for m in x]).shape) == (2, 6, 6, c_out)
    # Symbolically too, with an unknown batch size.
    inputs = [keras.Input((6, 6, 4)) for _ in range(n)]
    assert tuple(_make(kf, name, n)(inputs).shape) == (None, 6, 6, c_out)


def test_attention_weights_sum_to_one_per_pixel():
    x = [rand_nchw(2, 3, 4, 4, seed=i) for i in range(3)]
    a_t = tf_.AttentionGateFusion(3, num_branches=3).attention([torch.from_numpy(m) for m in x])
    a_k = kf.AttentionGateFusion(3, num_branches=3).attention([nhwc(m) for m in x])
    assert tuple(a_t.shape) == (2, 3, 4, 4) and tuple(a_k.shape) == (2, 4, 4, 3)
    np.testing.assert_allclose(to_numpy(a_t).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(to_numpy(a_k).sum(axis=-1), 1.0, atol=1e-6)


# --- WeightedSumFusion trains ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["scalar", "softmax", "channel"])
def test_weighted_sum_weights_are_registered_and_train_keras(mode):
    layer = kf.WeightedSumFusion(3, channels=4, mode=mode)
    assert [id(w) for w in layer.trainable_weights] == [id(layer.weight)]
    x = [nhwc(rand_nchw(2, 4, 3, 3, seed=i)) for i in range(3)]
    target = nhwc(rand_nchw(2, 4, 3, 3, seed=9))
    before = layer.branch_weights().copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(layer(x) - target))
    grads = tape.gradient(loss, layer.trainable_weights)
    keras.optimizers.SGD(0.5).apply_gradients(zip(grads, layer.trainable_weights))
    assert not np.allclose(layer.branch_weights(), before)
    if mode == "softmax":
        assert layer.branch_weights().sum() == pytest.approx(1.0, abs=1e-6)


def test_weighted_sum_initial_weights():
    for mod in (tf_, kf):
        np.testing.assert_allclose(mod.WeightedSumFusion(4, mode="scalar").branch_weights(), [1.0] * 4)
        np.testing.assert_allclose(mod.WeightedSumFusion(4).branch_weights(), [0.25] * 4, rtol=1e-6)
        w = mod.WeightedSumFusion(2, channels=3, mode="channel").branch_weights()
        np.testing.assert_allclose(w, np.full((2, 3), 0.5))


# --- bad input, same rule in both frameworks -----------------------------------------------

@pytest.fixture(params=["torch", "keras"])
def fw(request):
    """(module, make, fmt) where make(n, c, h, w) builds a zero map in the framework's layout."""
    if request.param == "torch":
        return tf_, lambda n, c, h, w: torch.zeros(n, c, h, w), "NCHW"
    return kf, lambda n, c, h, w: np.zeros((n, h, w, c), "float32"), "NHWC"


def _shape(fmt: str, n: int, c: int, h: int, w: int) -> str:
    dims = (n, c, h, w) if fmt == "NCHW" else (n, h, w, c)
    return r"\(" + ", ".join(map(str, dims)) + r"\)"


def test_wrong_branch_count(fw):
    mod, make, _ = fw
    with pytest.raises(ShapeMismatchError, match=(
        r"ConcatFusion\(in_channels=\[3, 5\]\) was built for 2 branches but received 3 feature "
        r"map\(s\) with shapes .* Fix: pass a list with one map per branch"
    )):
        mod.ConcatFusion([3, 5])([make(1, 3, 4, 4), make(1, 5, 4, 4), make(1, 5, 4, 4)])
    with pytest.raises(ShapeMismatchError, match=r"AttentionGateFusion\(in_channels=3, num_branches=3\) was built for 3 branches but received 2"):
        mod.AttentionGateFusion(3, num_branches=3)([make(1, 3, 4, 4)] * 2)


def test_mismatched_spatial_sizes(fw):
    mod, make, fmt = fw
    with pytest.raises(ShapeMismatchError, match=(
        rf"SEFusion\(in_channels=\[3, 5\], mode='concat'\) fuses maps pixel by pixel, so every branch "
        rf"needs the same height and width; received 8x8, 4x4 \({fmt} shapes .*\)\. "
        r"Fix: align them first with align_and_concat, or resize each map with align_spatial\."
    )):
        mod.SEFusion([3, 5])([make(2, 3, 8, 8), make(2, 5, 4, 4)])
    with pytest.raises(ShapeMismatchError, match=r"AddFusion\(num_branches=2\) fuses maps pixel by pixel.* 6x6, 6x3"):
        mod.AddFusion(2)([make(2, 3, 6, 6), make(2, 3, 6, 3)])


def test_wrong_channels(fw):
    mod, make, fmt = fw
    c_axis = fmt.index("C")
    with pytest.raises(ShapeMismatchError, match=(
        rf"ConcatFusion\(in_channels=\[3, 5\]\) expects \[3, 5\] channels per branch on axis {c_axis} "
        rf"\(C\) of {fmt} maps, but branch 1 has 4; received shapes \[{_shape(fmt, 2, 3, 8, 8)}, "
        rf"{_shape(fmt, 2, 4, 8, 8)}\]\. Fix: project branch 1 to 5 channels with ChannelProjection, "
        r"or build the layer for the channels you have \(\[3, 4\]\)\."
    )):
        mod.ConcatFusion([3, 5])([make(2, 3, 8, 8), make(2, 4, 8, 8)])
    with pytest.raises(ShapeMismatchError, match=(
        rf"AddFusion\(num_branches=2\) combines maps element-wise, so every branch needs the same "
        rf"shape, but they differ in C \(axis {c_axis} of {fmt} maps\): \[3, 5\]; .* "
        r"Fix: project them to a common channel count with ChannelProjection\."
    )):
        mod.AddFusion(2)([make(2, 3, 8, 8), make(2, 5, 8, 8)])
    with pytest.raises(ShapeMismatchError, match=r"expects \[4, 4\] channels per branch .* branch 0 has 3"):
        mod.WeightedSumFusion(2, channels=4, mode="channel")([make(2, 3, 8, 8)] * 2)
    with pytest.raises(ShapeMismatchError, match=r"SqueezeExcitation\(channels=8\) expects 8 input channels .* which has 3 there"):
        mod.SqueezeExcitation(8)(make(2, 3, 8, 8))


def test_wrong_layout_is_spotted():
    with pytest.raises(ShapeMismatchError, match=r"branch 0 has 8; .*look like NHWC: convert them with nhwc_to_nchw, or pass data_format='NHWC'"):
        tf_.ConcatFusion([3, 5])([torch.zeros(2, 8, 8, 3), torch.zeros(2, 8, 8, 5)])
    with pytest.raises(ShapeMismatchError, match=r"look like NCHW: convert them with nchw_to_nhwc, or pass data_format='NCHW'"):
        kf.ConcatFusion([3, 5])([np.zeros((2, 3, 8, 8), "float32"), np.zeros((2, 5, 8, 8), "float32")])


def test_rank3_branch(fw):
    mod, make, fmt = fw
    bad = torch.zeros(3, 8, 8) if mod is tf_ else np.zeros((8, 8, 3), "float32")
    shape = r"\(3, 8, 8\)" if mod is tf_ else r"\(8, 8, 3\)"
    with pytest.raises(ShapeMismatchError, match=(
        rf"branch 1: AddFusion\(num_branches=2\) expects a rank-4 {fmt} feature map .* received shape "
        rf"{shape} of rank 3\. Fix: a single image has no batch axis yet"
    )):
        mod.AddFusion(2)([make(1, 3, 8, 8), bad])
    with pytest.raises(ShapeMismatchError, match=rf"SqueezeExcitation\(channels=3\) expects a rank-4 {fmt} .* of rank 3"):
        mod.SqueezeExcitation(3)(bad)


def test_single_tensor_where_a_list_belongs(fw):
    mod, make, fmt = fw
    with pytest.raises(TypeError, match=(
        rf"AddFusion\(num_branches=2\) fuses a list of feature maps, one per branch, e.g. layer\(\[a, b\]\); "
        rf"received a single \w+ of shape {_shape(fmt, 1, 3, 4, 4)}\. Fix: wrap the maps in a list\."
    )):
        mod.AddFusion(2)(make(1, 3, 4, 4))
    with pytest.raises(TypeError, match=r"SqueezeExcitation\(channels=3\) gates one feature map; received a list of 2\. Fix: .*SEFusion"):
        mod.SqueezeExcitation(3)([make(1, 3, 4, 4)] * 2)


def test_bad_constructor_arguments(fw):
    mod, _, _ = fw
    with pytest.raises(ValueError, match=r"ConcatFusion: unknown norm 'instance'; choose one of \('batch', 'layer', 'group'\), or None"):
        mod.ConcatFusion([3, 5], norm="instance")
    with pytest.raises(ValueError, match=r"WeightedSumFusion: unknown mode 'mean'; choose one of \('scalar', 'softmax', 'channel'\)"):
        mod.WeightedSumFusion(2, mode="mean")
    with pytest.raises(ValueError, match=r"SEFusion: unknown mode 'add'; choose one of \('concat', 'branch'\)"):
        mod.SEFusion([3, 5], mode="add")
    with pytest.raises(ValueError, match=r"mode='channel' learns one weight per branch and channel, so it needs channels=C; received channels=None"):
        mod.WeightedSumFusion(2, mode="channel")
    with pytest.raises(ValueError, match=r"groups must divide 8; received groups=3\. Fix: pick one of \[1, 2, 4, 8\]"):
        mod.ConcatFusion([3, 5], norm="group", groups=3)
    with pytest.raises(ValueError, match=r"ConcatFusion: fusion needs at least 2 branches, so in_channels must list 2 or more channel counts; received \[8\]"):
        mod.ConcatFusion([8])
    with pytest.raises(TypeError, match=r"in_channels must be a list with one channel count per branch, e.g. in_channels=\[64, 128\]; received 8"):
        mod.SEFusion(8)
    with pytest.raises(ValueError, match=r"AddFusion: fusion needs at least 2 branches; received num_branches=1"):
        mod.AddFusion(1)
    with pytest.raises(ValueError, match=r"data_format must be one of \('NCHW', 'NHWC'\); received 'channels_last'"):
        mod.AttentionGateFusion(4, data_format="channels_last")


def test_keras_symbolic_mismatch_is_caught_while_building_the_model():
    a, b = keras.Input((8, 8, 3)), keras.Input((4, 4, 3))
    with pytest.raises(ShapeMismatchError, match=r"received 8x8, 4x4 \(NHWC shapes \[\(None, 8, 8, 3\), \(None, 4, 4, 3\)\]\)"):
        kf.WeightedSumFusion(2)([a, b])
    with pytest.raises(TypeError, match=r"received a single map of shape \(None, 8, 8, 3\)"):
        kf.AddFusion(2)(a)


# --- keras serialization -----------------------------------------------------------------------

# Keras' own model.save trips a NumPy 2 deprecation inside TensorFlow; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_keras_functional_model_saves_and_reloads(tmp_path):
    a, b, c = keras.Input((H, W, 4)), keras.Input((H, W, 4)), keras.Input((H, W, 8))
    c_first = keras.Input((8, H, W))
    outputs = [
        kf.ConcatFusion([4, 4, 8], norm="batch", out_channels=5)([a, b, c]),
        kf.ConcatFusion([4, 8], norm="group", groups=4)([a, c]),
        kf.ConcatFusion([4, 4], norm="layer")([a, b]),
        kf.AddFusion(2)([a, b]),
        kf.WeightedSumFusion(2, mode="scalar")([a, b]),
        kf.WeightedSumFusion(3, channels=4, mode="channel")([a, b, a]),
        kf.WeightedSumFusion(2)([a, b]),
        kf.SqueezeExcitation(8, reduction=4)(c),
        kf.SqueezeExcitation(8, squeeze_channels=3, data_format="NCHW")(c_first),
        kf.SEFusion([4, 8], reduction=2)([a, c]),
        kf.SEFusion([4, 4, 8], reduction=2, mode="branch")([a, b, c]),
        kf.AttentionGateFusion(4, num_branches=3, hidden=5)([a, b, a]),
    ]
    model = keras.Model([a, b, c, c_first], outputs)
    # Train-mode calls move the BatchNorm statistics away from their init, so a reload that
    # lost them would show.
    for layer in model.layers:
        if isinstance(layer, kf.WeightedSumFusion):
            layer.weight.assign(np.linspace(0.2, 1.4, int(np.prod(layer.weight.shape))).reshape(layer.weight.shape))
    data = [nhwc(rand_nchw(3, 4, H, W)), nhwc(rand_nchw(3, 4, H, W, seed=1)),
            nhwc(rand_nchw(3, 8, H, W, seed=2)), rand_nchw(3, 8, H, W, seed=3)]
    model(data, training=True)
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "fusion.keras")
    reloaded = keras.models.load_model(tmp_path / "fusion.keras")
    for i, (x, y) in enumerate(zip(expected, reloaded.predict(data, verbose=0))):
        np.testing.assert_allclose(y, x, atol=ATOL, rtol=0, err_msg=f"output {i}")
    for layer, again in zip(model.layers, reloaded.layers):
        assert again.get_config() == layer.get_config()


# --- import isolation ----------------------------------------------------------------------------

def test_each_half_imports_only_its_framework():
    check = "import sys, {mod}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    jobs = {"coursekit.torch.fusion": ("tensorflow", "keras"), "coursekit.keras.fusion": ("torch",)}
    # Run both interpreters at once: each start-up costs seconds.
    procs = {mod: _python(check.format(mod=mod, forbidden=forbidden)) for mod, forbidden in jobs.items()}
    for mod, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "", f"importing {mod} also imported {out.strip()}"
