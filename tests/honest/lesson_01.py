"""Honest answers for lesson 01 (see tests/honest/__init__.py)."""

LESSON = "01-shape-alignment"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # a warnings filter, a docstring naming nn.Conv2d.__init__, a loop, a list instead of a tuple
            '''import warnings
warnings.filterwarnings("ignore")

def concat_shape(shapes, axis):
    """Shape after torch.cat (like nn.Conv2d.__init__'s arguments, channels come first)."""
    rank = len(shapes[0])
    for s in shapes:
        if len(s) != rank:
            raise ValueError("ranks differ")
    if axis < -rank or axis >= rank:
        raise ValueError("axis out of range")
    axis = axis % rank
    out = list(shapes[0])
    out[axis] = 0
    for s in shapes:
        for i in range(rank):
            if i != axis and s[i] != shapes[0][i]:
                raise ValueError(f"dim {i} differs")
        out[axis] += s[axis]
    return out
''',
            # let torch do it, %timeit and %matplotlib inline
            '''%matplotlib inline
def concat_shape(shapes, axis):
    try:
        return tuple(torch.cat([torch.empty(s) for s in shapes], dim=axis).shape)
    except (RuntimeError, IndexError) as err:
        raise ValueError(str(err)) from None

%timeit -n 3 -r 1 concat_shape([(2, 3, 8, 8), (2, 5, 8, 8)], 1)
''',
        ],
        "ex2-answer": [
            # getattr with an f-string, if/elif, a cloned crop
            '''%matplotlib inline
def resize_map(x, size, method):
    h, w = x.shape[-2:]
    th, tw = size
    if method == "maxpool":
        kind = "max"
        return getattr(F, f"{kind}_pool2d")(x, (h // th, w // tw))
    elif method == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    elif method == "pad":
        dh, dw = th - h, tw - w
        return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
    elif method == "crop":
        top, left = (h - th) // 2, (w - tw) // 2
        return x[..., top:top + th, left:left + tw].clone()
    else:
        raise ValueError(method)
''',
            # help with `?`, `from torch.nn import *`, modules instead of functions, padding by hand
            '''F.max_pool2d?
from torch.nn import *

def resize_map(x, size, method):
    H, W = x.shape[2], x.shape[3]
    if method == "maxpool":
        return MaxPool2d(kernel_size=(H // size[0], W // size[1]))(x)
    if method == "nearest":
        return Upsample(size=size, mode="nearest")(x)
    if method == "pad":
        out = x.new_zeros(x.shape[0], x.shape[1], size[0], size[1])
        top, left = (size[0] - H) // 2, (size[1] - W) // 2
        out[:, :, top:top + H, left:left + W] = x
        return out
    if method == "crop":
        top, left = (H - size[0]) // 2, (W - size[1]) // 2
        return x[:, :, top:top + size[0], left:left + size[1]]
    raise ValueError(f"unknown method {method}")
''',
        ],
        "ex3-answer": [
            # built up line by line, other spellings of the words
            '''layout_predictions = {}
layout_predictions["pool then concat"] = "OK"
layout_predictions["concat unaligned"] = "Error"
layout_predictions["conv, wrong layout"] = "error "
layout_predictions["pool, wrong layout"] = "Silent"
layout_predictions["1x1 from 64 channels"] = "ERROR"
layout_predictions["concat on a spatial axis"] = "silent"
layout_predictions["upsample, wrong layout"] = "silent"
''',
            # ran the lines first, with the lesson's own helper, keys spaced differently
            '''from coursekit.shapes import snippet_outcome
photo = x_nhwc
runs = {
    "pool then concat": (lambda: torch.cat([F.max_pool2d(fine, 2), coarse], dim=1), (4, 192, 14, 14)),
    "concat unaligned": (lambda: torch.cat([fine, coarse], dim=1), (4, 192, 28, 28)),
    "conv,wrong layout": (lambda: nn.Conv2d(3, 8, 3, padding=1)(photo), (1, 8, 64, 64)),
    "pool,wrong layout": (lambda: F.max_pool2d(photo, 2), (1, 32, 32, 3)),
    "1x1 from 64 channels": (lambda: ck.ChannelProjection(64, 96)(torch.cat([F.max_pool2d(fine, 2), coarse], 1)),
                             (4, 96, 14, 14)),
    "concat on a spatial axis": (lambda: torch.cat([fine, fine], dim=3), (4, 128, 28, 28)),
    "upsample,  wrong layout": (lambda: F.interpolate(coarse.permute(0, 2, 3, 1), scale_factor=2), (4, 28, 28, 128)),
}
layout_predictions = {k: snippet_outcome(*v)[0] for k, v in runs.items()}
''',
        ],
        "ex4-answer": [
            # a preallocated output filled by slices
            '''def fuse_two_layers(layer1_output, layer2_output):
    pooled = nn.MaxPool2d(2)(layer1_output)
    out = torch.zeros(pooled.shape[0], pooled.shape[1] + layer2_output.shape[1], *pooled.shape[2:])
    out[:, :pooled.shape[1]] = pooled
    out[:, pooled.shape[1]:] = layer2_output
    return out
''',
            # a warnings filter in a context, a draw from the global random state, torch.concat
            '''import warnings

def fuse_two_layers(layer1_output, layer2_output):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        _ = torch.rand(3)  # shifts the global random state
        pooled = F.max_pool2d(layer1_output, kernel_size=2, stride=2)
    return torch.concat((pooled, layer2_output), 1)
''',
            # a star import and a module of one's own with forward(self, input)
            '''from torch.nn.functional import *

class PoolThenJoin(nn.Module):
    def forward(self, input, other):
        return torch.cat([max_pool2d(input, 2), other], dim=1)

def fuse_two_layers(layer1_output, layer2_output):
    return PoolThenJoin()(layer1_output, layer2_output)
''',
            # a module of one's own: setattr with an f-string, a class as a default argument,
            # __class__ in extra_repr, a docstring naming a dunder
            '''class PoolThenJoin(nn.Module):
    """Max-pool, then join; the arguments are nn.MaxPool2d.__init__'s."""

    def __init__(self, kernel_size=2, pool=nn.MaxPool2d):
        super().__init__()
        for i, k in enumerate([kernel_size]):
            setattr(self, f"pool{i}", pool(k))

    def forward(self, input, other):
        return torch.cat([self.pool0(input), other], dim=1)

    def extra_repr(self):
        return f"{self.__class__.__name__} joining along channels"


def fuse_two_layers(layer1_output, layer2_output):
    return PoolThenJoin()(layer1_output, layer2_output)
''',
            # import os to print a path, a helper class with __iter__
            '''import os
print("working in", os.getcwd())

class Axes:
    def __init__(self, *axes):
        self.axes = axes

    def __iter__(self):
        return iter(self.axes)

def fuse_two_layers(layer1_output, layer2_output):
    channels, *_ = Axes(1, 2, 3)
    return torch.cat([F.max_pool2d(layer1_output, 2), layer2_output], dim=channels)
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            '''import warnings
warnings.filterwarnings("ignore")

def concat_shape(shapes, axis):
    """Shape after layers.Concatenate (see keras.layers.Conv2D.__init__ for the layout)."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ValueError("ranks differ")
    if not -rank <= axis < rank:
        raise ValueError("axis out of range")
    axis %= rank
    out = [shapes[0][i] for i in range(rank)]
    out[axis] = sum(s[axis] for s in shapes)
    for s in shapes:
        for i in range(rank):
            if i != axis and s[i] != out[i]:
                raise ValueError(f"dim {i} differs")
    return out
''',
            '''%matplotlib inline
def concat_shape(shapes, axis):
    try:
        return tuple(np.concatenate([np.zeros(s) for s in shapes], axis=axis).shape)
    except (ValueError, np.exceptions.AxisError) as err:
        raise ValueError(str(err)) from None

%timeit -n 3 -r 1 concat_shape([(2, 8, 8, 3), (2, 8, 8, 5)], -1)
''',
        ],
        "ex2-answer": [
            '''def resize_map(x, size, method):
    h, w = x.shape[1], x.shape[2]
    th, tw = size
    if method == "maxpool":
        kind = "Max"
        return getattr(layers, f"{kind}Pooling2D")(pool_size=(h // th, w // tw))(x)
    elif method == "nearest":
        return layers.UpSampling2D(size=(th // h, tw // w), interpolation="nearest")(x)
    elif method == "pad":
        dh, dw = th - h, tw - w
        return layers.ZeroPadding2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(x)
    elif method == "crop":
        dh, dw = h - th, w - tw
        return layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(x)
    else:
        raise ValueError(method)
''',
            '''ops.max_pool?
import numpy

def resize_map(x, size, method):
    a = numpy.asarray(x)
    n, h, w, c = a.shape
    th, tw = size
    if method == "maxpool":
        kh, kw = h // th, w // tw
        return a[:, :th * kh, :tw * kw].reshape(n, th, kh, tw, kw, c).max(axis=(2, 4))
    if method == "nearest":
        return a.repeat(th // h, axis=1).repeat(tw // w, axis=2)
    if method == "pad":
        out = numpy.zeros((n, th, tw, c), a.dtype)
        top, left = (th - h) // 2, (tw - w) // 2
        out[:, top:top + h, left:left + w] = a
        return out
    if method == "crop":
        top, left = (h - th) // 2, (w - tw) // 2
        return a[:, top:top + th, left:left + tw]
    raise ValueError(f"unknown method {method}")
''',
        ],
        "ex3-answer": [
            # grouped by answer, then flattened
            '''by_outcome = {"ok": ["pool then concat"], "error": ["concat unaligned", "1x1 from 64 channels"],
              "silent": ["conv, wrong layout", "pool, wrong layout", "concat on a spatial axis", "upsample, wrong layout"]}
layout_predictions = {key: outcome.upper() for outcome, keys in by_outcome.items() for key in keys}
''',
            # ran the lines first, with the lesson's own helper
            '''from coursekit.shapes import snippet_outcome
photo = x_nchw
layout_predictions = dict(
    [("pool then concat", snippet_outcome(lambda: layers.Concatenate(axis=-1)([layers.MaxPooling2D(2)(fine), coarse]), (4, 14, 14, 192))[0]),
     ("concat unaligned", snippet_outcome(lambda: layers.Concatenate(axis=-1)([fine, coarse]), (4, 28, 28, 192))[0]),
     ("conv, wrong layout", snippet_outcome(lambda: layers.Conv2D(8, 3, padding="same")(photo), (1, 64, 64, 8))[0]),
     ("pool, wrong layout", snippet_outcome(lambda: layers.MaxPooling2D(2)(photo), (1, 3, 32, 32))[0]),
     ("1x1 from 64 channels", snippet_outcome(lambda: ck.ChannelProjection(64, 96)(
         layers.Concatenate(axis=-1)([layers.MaxPooling2D(2)(fine), coarse])), (4, 14, 14, 96))[0]),
     ("concat on a spatial axis", snippet_outcome(lambda: layers.Concatenate(axis=2)([fine, fine]), (4, 28, 28, 128))[0]),
     ("upsample, wrong layout", snippet_outcome(lambda: layers.UpSampling2D(2)(ops.transpose(coarse, (0, 3, 1, 2))),
                                                (4, 128, 28, 28))[0])])
''',
        ],
        "ex4-answer": [
            '''def fuse_two_layers(layer1_output, layer2_output):
    pooled = ops.max_pool(layer1_output, pool_size=2, strides=2)
    return ops.concatenate([pooled, layer2_output], axis=3)
''',
            '''import warnings

def fuse_two_layers(layer1_output, layer2_output):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        _ = np.random.rand(3)  # shifts the global random state
        pooled = tf.nn.max_pool2d(layer1_output, ksize=2, strides=2, padding="VALID")
    return tf.concat([pooled, layer2_output], -1)
''',
            # a layer of one's own: setattr with an f-string, __class__ in __repr__, a docstring naming a dunder
            '''class PoolThenJoin(layers.Layer):
    """Max-pool, then join; the arguments follow keras.layers.MaxPooling2D.__init__'s."""

    def __init__(self, pool_size=2, pool=layers.MaxPooling2D, **kwargs):
        super().__init__(**kwargs)
        for i, k in enumerate([pool_size]):
            setattr(self, f"pool{i}", pool(k))

    def call(self, input, other):
        return ops.concatenate([self.pool0(input), other], axis=-1)

    def __repr__(self):
        return f"{self.__class__.__name__}()"


def fuse_two_layers(layer1_output, layer2_output):
    return PoolThenJoin()(layer1_output, layer2_output)
''',
            # import os to print a path, a helper class with __iter__
            '''import os
print("working in", os.getcwd())

class Axes:
    def __init__(self, *axes):
        self.axes = axes

    def __iter__(self):
        return iter(self.axes)

def fuse_two_layers(layer1_output, layer2_output):
    *_, channels = Axes(1, 2, 3)
    return ops.concatenate([ops.max_pool(layer1_output, 2, strides=2), layer2_output], axis=channels)
''',
        ],
    },
}
