"""Honest answers for lesson 07 (see tests/honest/__init__.py)."""

LESSON = "07-input-normalization"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # channels first, flattened; the std written out
            '''def channel_stats(x, layout):
    x = torch.as_tensor(x).double()
    x = x.permute(1, 0, 2, 3) if layout == "NCHW" else x.permute(3, 0, 1, 2)
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(dim=1)
    std = ((flat - mean[:, None]) ** 2).mean(dim=1).sqrt()
    return mean, std
''',
            # numpy, one channel at a time, a list of arrays
            '''def channel_stats(x, layout):
    a = np.asarray(x, dtype=np.float64)
    axis = 1 if layout == "NCHW" else 3
    means, stds = [], []
    for c in range(a.shape[axis]):
        v = np.take(a, c, axis=axis)
        means.append(v.mean())
        stds.append(v.std())
    return [np.array(means), np.array(stds)]
''',
        ],
        "ex2-answer": [
            # in place on its inputs, var().sqrt(), shapes built by hand
            '''def normalize_splits(x_train, x_test, layout):
    c = 1 if layout == "NCHW" else 3
    dims = [d for d in range(4) if d != c]
    shape = [1, 1, 1, 1]
    shape[c] = -1
    mean = x_train.mean(dim=dims).reshape(shape)
    std = x_train.var(dim=dims, unbiased=False).sqrt().reshape(shape)
    x_train -= mean
    x_train /= std
    x_test.sub_(mean).div_(std)
    return x_train, x_test
''',
            # numpy float64 arrays returned
            '''def normalize_splits(x_train, x_test, layout):
    a, b = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    axes = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
    m, s = a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True)
    return (a - m) / s, (b - m) / s
''',
        ],
        "ex3-answer": [
            # a plain function instead of a v2 transform: crop, scale and normalize by hand
            '''def eval_pipeline(size, mean, std):
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def pipeline(img):
        h, w = img.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        crop = img[..., top:top + size, left:left + size].to(torch.float32) / 255.0
        return (crop - m) / s

    return pipeline
''',
            # v2 with a Lambda for the scaling and a [size, size] crop
            '''def eval_pipeline(size, mean, std):
    return v2.Compose([
        v2.CenterCrop([size, size]),
        v2.Lambda(lambda t: t.to(torch.float32) / 255),
        v2.Normalize(mean=[float(v) for v in mean], std=[float(v) for v in std]),
    ])
''',
        ],
        "ex4-answer": [
            # string keys, capitals, the asked digits only
            '''mirror_predictions = {"0": "Kept", "2": "Lost", "3": "Lost", "5": "Lost", "6": "Lost", "7": "Lost",
                      "8": "Kept"}
''',
            # every digit, from the ones that are symmetric left to right
            '''symmetric = {0, 8}
mirror_predictions = {d: "kept" if d in symmetric else "lost" for d in range(10)}
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            # move the channel axis last, reshape to (pixels, C)
            '''def channel_stats(x, layout):
    a = np.asarray(x, dtype=np.float64)
    if layout == "NCHW":
        a = np.moveaxis(a, 1, -1)
    flat = a.reshape(-1, a.shape[-1])
    mean = flat.mean(axis=0)
    return mean, np.sqrt(((flat - mean) ** 2).mean(axis=0))
''',
            # keras.ops, a tuple of tensors, a stray global draw
            '''def channel_stats(x, layout):
    np.random.rand()
    axes = (0, 1, 2) if layout == "NHWC" else (0, 2, 3)
    x = ops.convert_to_tensor(np.asarray(x, dtype=np.float64))
    return ops.mean(x, axis=axes), ops.sqrt(ops.var(x, axis=axes))
''',
        ],
        "ex2-answer": [
            # in place on its inputs (numpy arrays), a loop over channels
            '''def normalize_splits(x_train, x_test, layout):
    c = -1 if layout == "NHWC" else 1
    x_train, x_test = np.moveaxis(x_train, c, 0), np.moveaxis(x_test, c, 0)  # views: writes reach the inputs
    for k in range(x_train.shape[0]):
        m, s = x_train[k].mean(), x_train[k].std()
        x_train[k] -= m
        x_train[k] /= s
        x_test[k] -= m
        x_test[k] /= s
    return np.moveaxis(x_train, 0, c), np.moveaxis(x_test, 0, c)
''',
            # a Keras Normalization layer adapted on the training split
            '''def normalize_splits(x_train, x_test, layout):
    axis = -1 if layout == "NHWC" else 1
    norm = layers.Normalization(axis=axis)
    norm.adapt(np.asarray(x_train, dtype="float32"))
    return ops.convert_to_numpy(norm(x_train)), ops.convert_to_numpy(norm(x_test))
''',
        ],
        "ex3-answer": [
            # a Lambda-free Sequential with a Rescaling that does the normalization too
            '''def eval_pipeline(size, mean, std):
    mean, std = np.asarray(mean, "float32"), np.asarray(std, "float32")
    return keras.Sequential([
        layers.CenterCrop(size, size),
        layers.Rescaling(1 / (255 * std), offset=-mean / std),
    ])
''',
            # a custom layer written by hand
            '''class EvalPipeline(layers.Layer):
    def __init__(self, size, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.size, self.mean, self.std = size, list(mean), list(std)

    def call(self, x):
        h, w = x.shape[1], x.shape[2]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        crop = x[:, top:top + self.size, left:left + self.size, :] / 255.0
        return (crop - ops.convert_to_tensor(self.mean)) / ops.convert_to_tensor(self.std)


def eval_pipeline(size, mean, std):
    return EvalPipeline(size, mean, std)
''',
        ],
        "ex4-answer": [
            # string keys, capitals, the asked digits only
            '''mirror_predictions = {"0": "Kept", "2": "Lost", "3": "Lost", "5": "Lost", "6": "Lost", "7": "Lost",
                      "8": "Kept"}
''',
            # every digit, from the ones that are symmetric left to right
            '''symmetric = {0, 8}
mirror_predictions = {d: "kept" if d in symmetric else "lost" for d in range(10)}
''',
        ],
    },
}
