"""Planted wrong answers for lesson 01 (see tests/planted/__init__.py)."""

LESSON = "01-shape-alignment"

WRONG = {
    "pytorch": {
        # Sums the concat axis but never checks the other dims: no ValueError on a mismatch.
        "ex1-answer": '''def concat_shape(shapes, axis):
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)
''',
        # Puts the odd extra pixel before instead of after: passes the visible (even) tests only.
        "ex2-answer": '''def resize_map(x, size, method):
    h, w = x.shape[2], x.shape[3]
    th, tw = size
    if method == "maxpool":
        return F.max_pool2d(x, kernel_size=(h // th, w // tw))
    if method == "nearest":
        return F.interpolate(x, size=(th, tw), mode="nearest")
    if method == "pad":
        top, left = (th - h + 1) // 2, (tw - w + 1) // 2
        return F.pad(x, (left, tw - w - left, top, th - h - top))
    if method == "crop":
        top, left = (h - th + 1) // 2, (w - tw + 1) // 2
        return x[:, :, top:top + th, left:left + tw]
    raise ValueError(method)
''',
        # Pooling taken to check the layout the way a conv does: it has no weights to notice it.
        "ex3-answer": '''layout_predictions = {"pool then concat": "ok", "concat unaligned": "error", "conv, wrong layout": "error",
                      "pool, wrong layout": "error", "1x1 from 64 channels": "error",
                      "concat on a spatial axis": "silent", "upsample, wrong layout": "silent"}
''',
        # Upsamples the coarse map instead of pooling the fine one: shape (32, 192, 28, 28).
        "ex4-answer": '''def fuse_two_layers(layer1_output, layer2_output):
    up = F.interpolate(layer2_output, scale_factor=2, mode="nearest")
    return torch.cat([layer1_output, up], dim=1)
''',
    },
    "keras": {
        "ex1-answer": '''def concat_shape(shapes, axis):
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)
''',
        "ex2-answer": '''def resize_map(x, size, method):
    h, w = x.shape[1], x.shape[2]
    th, tw = size
    if method == "maxpool":
        k = (h // th, w // tw)
        return ops.max_pool(x, pool_size=k, strides=k)
    if method == "nearest":
        return ops.repeat(ops.repeat(x, th // h, axis=1), tw // w, axis=2)
    if method == "pad":
        top, left = (th - h + 1) // 2, (tw - w + 1) // 2
        return ops.pad(x, [[0, 0], [top, th - h - top], [left, tw - w - left], [0, 0]])
    if method == "crop":
        top, left = (h - th + 1) // 2, (w - tw + 1) // 2
        return x[:, top:top + th, left:left + tw, :]
    raise ValueError(method)
''',
        # PyTorch's rule carried over: a fresh Conv2D builds itself for whatever last axis it gets.
        "ex3-answer": '''layout_predictions = {"pool then concat": "ok", "concat unaligned": "error", "conv, wrong layout": "error",
                      "pool, wrong layout": "silent", "1x1 from 64 channels": "error",
                      "concat on a spatial axis": "silent", "upsample, wrong layout": "silent"}
''',
        # Upsamples the coarse map instead of pooling the fine one: shape (32, 28, 28, 192).
        "ex4-answer": '''def fuse_two_layers(layer1_output, layer2_output):
    up = layers.UpSampling2D(size=2)(layer2_output)
    return layers.Concatenate(axis=-1)([layer1_output, up])
''',
    },
}
