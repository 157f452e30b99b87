"""coursekit.torch.align and coursekit.keras.align: parity between the twins, and the errors.

Convention in this file: torch tensors are NCHW, keras tensors NHWC, unless a test says
otherwise; `to_nhwc` moves a torch result into keras' layout for comparison.
"""

from __future__ import annotations

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

from coursekit.keras import align as ka  # noqa: E402
from coursekit.shapes import SPATIAL_METHODS, ShapeMismatchError  # noqa: E402
from coursekit.torch import align as ta  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-5
PUBLIC = [
    "nchw_to_nhwc", "nhwc_to_nchw", "concat", "align_spatial",
    "StridedConvAlign", "ChannelProjection", "align_and_concat",
]


def rand_nchw(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def to_nhwc(t) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy()


def copy_conv(t_layer, k_layer) -> None:
    """torch Conv2d weight (out, in, kh, kw) -> keras kernel (kh, kw, in, out)."""
    weights = [t_layer.conv.weight.detach().numpy().transpose(2, 3, 1, 0)]
    if t_layer.conv.bias is not None:
        weights.append(t_layer.conv.bias.detach().numpy())
    k_layer.conv.set_weights(weights)


def test_public_names_mirror():
    assert ta.__all__ == ka.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(ta, name).__doc__ and getattr(ka, name).__doc__


# --- align_spatial parity ------------------------------------------------------------------

PARITY_CASES = [
    ("maxpool", (8, 8), (4, 4)),
    ("maxpool", (6, 6), (3, 3)),
    ("maxpool", (12, 8), (4, 2)),  # a different factor per axis
    ("avgpool", (8, 8), (4, 4)),
    ("avgpool", (6, 6), (3, 3)),
    ("avgpool", (12, 8), (4, 2)),
    ("nearest", (4, 4), (8, 8)),
    ("nearest", (3, 5), (6, 15)),
    ("nearest", (5, 5), (8, 8)),  # non-integer factor
    ("bilinear", (4, 4), (8, 8)),
    ("bilinear", (3, 5), (6, 15)),
    ("bilinear", (5, 5), (8, 8)),  # non-integer factor
    ("pad", (5, 5), (8, 8)),
    ("pad", (4, 6), (7, 6)),
    ("crop", (9, 7), (6, 4)),
    ("crop", (8, 8), (5, 5)),
]


def test_parity_cases_cover_every_method():
    assert {m for m, _, _ in PARITY_CASES} == set(SPATIAL_METHODS)


@pytest.mark.parametrize("method,src,dst", PARITY_CASES)
def test_align_spatial_parity(method, src, dst):
    x = rand_nchw(2, 3, *src)
    t = ta.align_spatial(torch.from_numpy(x), dst, method)
    k = ka.align_spatial(nhwc(x), dst, method)
    assert tuple(t.shape) == (2, 3, *dst)
    assert tuple(k.shape) == (2, *dst, 3)
    np.testing.assert_allclose(to_nhwc(t), np.asarray(k), atol=ATOL, rtol=0)
    # The non-default layout of each framework gives the same numbers.
    t_nhwc = ta.align_spatial(torch.from_numpy(nhwc(x)), dst, method, data_format="NHWC")
    k_nchw = ka.align_spatial(x, dst, method, data_format="NCHW")
    np.testing.assert_allclose(t_nhwc.numpy(), np.asarray(k), atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(k_nchw), t.numpy(), atol=ATOL, rtol=0)


def test_upsampling_matches_the_framework_layers_for_integer_factors():
    # What lesson authors will compare against: nn.Upsample and keras' UpSampling2D.
    x = rand_nchw(1, 2, 4, 5)
    for mode in ("nearest", "bilinear"):
        extra = {} if mode == "nearest" else {"align_corners": False}
        ref_t = torch.nn.Upsample(scale_factor=2, mode=mode, **extra)(torch.from_numpy(x))
        ref_k = keras.layers.UpSampling2D(2, interpolation=mode)(nhwc(x))
        np.testing.assert_allclose(ta.align_spatial(torch.from_numpy(x), (8, 10), mode).numpy(),
                                   ref_t.numpy(), atol=ATOL, rtol=0)
        np.testing.assert_allclose(np.asarray(ka.align_spatial(nhwc(x), (8, 10), mode)),
                                   np.asarray(ref_k), atol=ATOL, rtol=0)


def test_pad_and_crop_are_centered_with_the_extra_pixel_after():
    x = torch.ones(1, 1, 5, 5)
    padded = ta.align_spatial(x, (8, 8), "pad")[0, 0]
    # 5 -> 8 pads 1 before and 2 after on each axis.
    assert padded[1:6, 1:6].eq(1).all() and padded.sum() == 25
    assert padded[0].eq(0).all() and padded[6:].eq(0).all()
    y = torch.arange(63.0).reshape(1, 1, 9, 7)
    # 9 -> 6 drops 1 row before and 2 after; 7 -> 4 drops 1 column before and 2 after.
    assert torch.equal(ta.align_spatial(y, (6, 4), "crop"), y[:, :, 1:7, 1:5])
    k = ka.align_spatial(nhwc(y.numpy()), (6, 4), "crop")
    np.testing.assert_array_equal(np.asarray(k), nhwc(y[:, :, 1:7, 1:5].numpy()))


@pytest.mark.parametrize("method", SPATIAL_METHODS)
def test_align_spatial_returns_input_when_already_that_size(method):
    t = torch.zeros(1, 2, 4, 4)
    k = keras.ops.zeros((1, 4, 4, 2))
    assert ta.align_spatial(t, (4, 4), method) is t
    assert ka.align_spatial(k, (4, 4), method) is k


# --- learnable layers ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "t_cls,k_cls,args,src",
    [
        (ta.ChannelProjection, ka.ChannelProjection, (3, 5), (8, 8)),
        (ta.ChannelProjection, ka.ChannelProjection, (3, 5, False), (6, 4)),
        (ta.StridedConvAlign, ka.StridedConvAlign, (3, 5, 2), (8, 8)),
        (ta.StridedConvAlign, ka.StridedConvAlign, (3, 4, (2, 3)), (8, 6)),
    ],
)
def test_layer_parity_with_copied_weights(t_cls, k_cls, args, src):
    x = rand_nchw(2, 3, *src, seed=1)
    t_layer, k_layer = t_cls(*args), k_cls(*args)
    copy_conv(t_layer, k_layer)
    with torch.no_grad():
        t = t_layer(torch.from_numpy(x))
    k = k_layer(nhwc(x))
    np.testing.assert_allclose(to_nhwc(t), np.asarray(k), atol=ATOL, rtol=0)
    # Keras layer in NCHW mode agrees with torch's NCHW output directly.
    k_first = k_cls(*args, data_format="NCHW")
    copy_conv(t_layer, k_first)
    np.testing.assert_allclose(np.asarray(k_first(x)), t.numpy(), atol=ATOL, rtol=0)


def test_strided_conv_align_shape():
    layer = ta.StridedConvAlign(3, 16, 4)
    assert tuple(layer(torch.zeros(1, 3, 32, 32)).shape) == (1, 16, 8, 8)
    assert tuple(ka.StridedConvAlign(3, 16, 4)(np.zeros((1, 32, 32, 3), "float32")).shape) == (1, 8, 8, 16)


@pytest.mark.parametrize("cls,args", [(ka.ChannelProjection, (3, 5, False)), (ka.StridedConvAlign, (3, 5, (2, 1)))])
def test_keras_layer_config_round_trip(cls, args):
    layer = cls(*args, data_format="NCHW")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() | {"name": None} == layer.get_config() | {"name": None}
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]


# --- concat --------------------------------------------------------------------------------

def test_concat_joins_channels():
    a, b = rand_nchw(2, 3, 4, 4), rand_nchw(2, 5, 4, 4, seed=1)
    t = ta.concat([torch.from_numpy(a), torch.from_numpy(b)])
    k = ka.concat((nhwc(a), nhwc(b)))
    np.testing.assert_array_equal(t.numpy(), np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(np.asarray(k), np.concatenate([nhwc(a), nhwc(b)], axis=-1))
    assert tuple(ta.concat([torch.from_numpy(a)] * 2, axis=0).shape) == (4, 3, 4, 4)


SPATIAL_MISMATCH = (
    r"Cannot concatenate along axis {c} \(C\) assuming layout {fmt}: .*"
    r"axis {h} \(H\) has sizes \[8, 4\]\. .*"
    r"Fix: bring the larger map down with max/avg pooling .* \(coursekit: align_spatial"
)


def test_concat_mismatch_raises_teaching_error_torch():
    with pytest.raises(ShapeMismatchError, match=SPATIAL_MISMATCH.format(c=1, h=2, fmt="NCHW")):
        ta.concat([torch.zeros(2, 3, 8, 8), torch.zeros(2, 5, 4, 4)])


def test_concat_mismatch_raises_teaching_error_keras():
    with pytest.raises(ShapeMismatchError, match=SPATIAL_MISMATCH.format(c=3, h=1, fmt="NHWC")):
        ka.concat([np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 4, 4, 5), "float32")])


def test_concat_layout_note():
    # NCHW tensors handed to keras (NHWC): the few channels land on "H".
    with pytest.raises(ShapeMismatchError, match=r"look like NCHW, not NHWC; convert with nchw_to_nhwc"):
        ka.concat([np.zeros((2, 3, 28, 28), "float32"), np.zeros((2, 1, 28, 28), "float32")])
    with pytest.raises(ShapeMismatchError, match=r"look like NHWC, not NCHW; convert with nchw_to_nhwc"):
        ta.concat([torch.zeros(2, 28, 28, 3), torch.zeros(2, 28, 28, 1)])


def test_concat_rejects_a_single_tensor():
    with pytest.raises(TypeError, match=r"list or tuple of tensors, e.g. concat\(\[a, b\]\); .*wrap it in a list"):
        ta.concat(torch.zeros(1, 3, 4, 4))
    with pytest.raises(TypeError, match=r"wrap it in a list"):
        ka.concat(np.zeros((1, 4, 4, 3), "float32"))


# Keras' own model.save trips a NumPy 2 deprecation inside TensorFlow; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_keras_functional_model_with_unknown_batch(tmp_path):
    big, small = keras.Input((8, 8, 3)), keras.Input((4, 4, 5))
    fused = ka.concat([ka.StridedConvAlign(3, 6, 2)(big), ka.ChannelProjection(5, 2)(small)])
    merged = ka.align_and_concat([big, small], method="bilinear", target=0)
    assert tuple(fused.shape) == (None, 4, 4, 8)
    assert tuple(merged.shape) == (None, 8, 8, 8)
    model = keras.Model([big, small], [fused, merged])

    a, b = nhwc(rand_nchw(3, 3, 8, 8)), nhwc(rand_nchw(3, 5, 4, 4, seed=1))
    out = model.predict([a, b], verbose=0)
    np.testing.assert_allclose(out[1], np.asarray(ka.align_and_concat([a, b], "bilinear")), atol=ATOL)
    # Registered layers survive a .keras save/load.
    model.save(tmp_path / "fused.keras")
    reloaded = keras.models.load_model(tmp_path / "fused.keras")
    for x, y in zip(out, reloaded.predict([a, b], verbose=0)):
        np.testing.assert_allclose(x, y, atol=ATOL)

    with pytest.raises(ShapeMismatchError, match=r"axis 1 \(H\) has sizes \[8, 4\]"):
        ka.concat([big, small])


# --- align_and_concat ------------------------------------------------------------------------

def test_align_and_concat_parity():
    maps = [rand_nchw(2, 3, 8, 8), rand_nchw(2, 4, 16, 16, seed=1), rand_nchw(2, 5, 32, 32, seed=2)]
    t = ta.align_and_concat([torch.from_numpy(m) for m in maps], method="avgpool", target=0)
    k = ka.align_and_concat([nhwc(m) for m in maps], method="avgpool", target=0)
    assert tuple(t.shape) == (2, 12, 8, 8)
    np.testing.assert_allclose(to_nhwc(t), np.asarray(k), atol=ATOL, rtol=0)


def test_align_and_concat_names_the_map_that_cannot_be_aligned():
    msg = r"map 1 \(shape {shape}, 4x4\) cannot be brought to the 8x8 of map 0 with method 'maxpool': .*target=1"
    with pytest.raises(ShapeMismatchError, match=msg.format(shape=r"\(2, 5, 4, 4\)")):
        ta.align_and_concat([torch.zeros(2, 3, 8, 8), torch.zeros(2, 5, 4, 4)], "maxpool")
    with pytest.raises(ShapeMismatchError, match=msg.format(shape=r"\(2, 4, 4, 5\)")):
        ka.align_and_concat([np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 4, 4, 5), "float32")], "maxpool")
    with pytest.raises(ShapeMismatchError, match=r"map 1: align_and_concat expects a rank-4 NCHW"):
        ta.align_and_concat([torch.zeros(2, 3, 8, 8), torch.zeros(5, 4, 4)])
    with pytest.raises(IndexError, match=r"target=2 is not a valid index into the 2 maps"):
        ka.align_and_concat([np.zeros((1, 4, 4, 1), "float32")] * 2, target=2)


# --- bad inputs, same rule in both frameworks ----------------------------------------------

@pytest.fixture(params=["torch", "keras"])
def fw(request):
    """(module, make) where make(n, c, h, w) builds a zero map in the framework's layout."""
    if request.param == "torch":
        return ta, lambda n, c, h, w: torch.zeros(n, c, h, w)
    return ka, lambda n, c, h, w: np.zeros((n, h, w, c), "float32")


def test_unknown_method_lists_valid_ones(fw):
    mod, make = fw
    with pytest.raises(ValueError, match=r"unknown alignment method 'resize'; choose one of \('maxpool', 'avgpool', 'nearest', 'bilinear', 'pad', 'crop'\)"):
        mod.align_spatial(make(1, 3, 8, 8), (4, 4), "resize")
    with pytest.raises(ValueError, match=r"unknown alignment method 'resize'"):
        mod.align_and_concat([make(1, 3, 8, 8)], method="resize")


def test_rank3_input_names_shape_and_fix(fw):
    mod, _ = fw
    x = torch.zeros(3, 8, 8) if mod is ta else np.zeros((8, 8, 3), "float32")
    shape = r"\(3, 8, 8\)" if mod is ta else r"\(8, 8, 3\)"
    with pytest.raises(ShapeMismatchError, match=rf"align_spatial expects a rank-4 .* received shape {shape} of rank 3\. Fix: .*add it with"):
        mod.align_spatial(x, (4, 4), "maxpool")
    for fn in (mod.nchw_to_nhwc, mod.nhwc_to_nchw):
        with pytest.raises(ShapeMismatchError, match=rf"{fn.__name__} expects a rank-4 .* of rank 3"):
            fn(x)


def test_pool_needs_integer_factor(fw):
    mod, make = fw
    with pytest.raises(ShapeMismatchError, match=r"avgpool can only shrink a map by an integer factor: 8x8 -> 3x3"):
        mod.align_spatial(make(1, 3, 8, 8), (3, 3), "avgpool")


def test_crop_cannot_enlarge(fw):
    mod, make = fw
    with pytest.raises(ShapeMismatchError, match=r"'crop' only shrinks a map: 8x8 -> 10x10 enlarges it\. Use 'pad'"):
        mod.align_spatial(make(1, 3, 8, 8), (10, 10), "crop")


def test_size_must_be_int_pair(fw):
    mod, make = fw
    with pytest.raises(TypeError, match=r"size must be an int or an \(H, W\) pair of ints; received \(4\.0, 4\)"):
        mod.align_spatial(make(1, 3, 8, 8), (4.0, 4), "maxpool")


def test_channel_projection_mismatch(fw):
    mod, make = fw
    c_axis, shape = (1, r"\(2, 3, 8, 8\)") if mod is ta else (3, r"\(2, 8, 8, 3\)")
    fmt = "NCHW" if mod is ta else "NHWC"
    with pytest.raises(ShapeMismatchError, match=(
        rf"expects 16 input channels on axis {c_axis} \(C\) of a {fmt} map; received shape {shape}, "
        r"which has 3 there\. Fix: create the layer with in_channels=3"
    )):
        mod.ChannelProjection(16, 4)(make(2, 3, 8, 8))


def test_channel_projection_spots_the_other_layout():
    with pytest.raises(ShapeMismatchError, match=r"looks like NHWC: convert it with nhwc_to_nchw"):
        ta.ChannelProjection(3, 4)(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ShapeMismatchError, match=r"looks like NCHW: convert it with nchw_to_nhwc"):
        ka.ChannelProjection(3, 4)(np.zeros((2, 3, 8, 8), "float32"))


def test_strided_conv_align_refuses_to_drop_pixels(fw):
    mod, make = fw
    with pytest.raises(ShapeMismatchError, match=r"shrinks H by 2 and W by 2, so both must divide evenly; received a 7x8 map"):
        mod.StridedConvAlign(3, 4, 2)(make(1, 3, 7, 8))


def test_keras_needs_known_spatial_size():
    with pytest.raises(ShapeMismatchError, match=r"needs a known height and width .* \(None, None, None, 3\)"):
        ka.align_spatial(keras.Input((None, None, 3)), (4, 4), "maxpool")


# --- import isolation ----------------------------------------------------------------------

def test_each_half_imports_only_its_framework():
    check = (
        "import sys, {mod}; "
        "print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    jobs = {
        "coursekit.torch.align": ("tensorflow", "keras"),
        "coursekit.keras.align": ("torch",),
    }
    # Run both interpreters at once: each start-up costs seconds.
    procs = {
        mod: subprocess.Popen(
            [sys.executable, "-c", check.format(mod=mod, forbidden=forbidden)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for mod, forbidden in jobs.items()
    }
    for mod, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "", f"importing {mod} also imported {out.strip()}"
