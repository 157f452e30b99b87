"""Planted wrong answers for lesson 07 (see tests/planted/__init__.py)."""

LESSON = "07-input-normalization"

WRONG = {
    "pytorch": {
        # Right axes, but tensor.std() defaults to the sample std (ddof=1, Bessel's correction).
        "ex1-answer": '''def channel_stats(x, layout):
    x = torch.as_tensor(x)
    dims = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
    return x.mean(dim=dims), x.std(dim=dims)
''',
        # Statistics fitted on train + test together: the leak.
        "ex2-answer": '''def normalize_splits(x_train, x_test, layout):
    dims = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
    both = torch.cat([x_train, x_test])
    mean = both.mean(dim=dims, keepdim=True)
    std = both.std(dim=dims, unbiased=False, keepdim=True)
    return (x_train - mean) / std, (x_test - mean) / std
''',
        # ToDtype without scale=True: pixels stay 0..255 and are normalized with 0..1 statistics.
        "ex3-answer": '''def eval_pipeline(size, mean, std):
    return v2.Compose([v2.CenterCrop(size), v2.ToDtype(torch.float32), v2.Normalize(list(mean), list(std))])
''',
        # "A flip breaks every digit": but a 0 and an 8 are the same shape in a mirror.
        "ex4-answer": '''mirror_predictions = {d: "lost" for d in (0, 2, 3, 5, 6, 7, 8)}
''',
    },
    "keras": {
        # NCHW axes for every layout: in NHWC this reduces over N, W, C and keeps H.
        "ex1-answer": '''def channel_stats(x, layout):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
''',
        # Each split normalized with its own statistics: the test set with test statistics.
        "ex2-answer": '''def normalize_splits(x_train, x_test, layout):
    axes = (0, 1, 2) if layout == "NHWC" else (0, 2, 3)
    def standardize(x):
        return (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)
    return standardize(x_train), standardize(x_test)
''',
        # Normalization takes the variance; passing the std divides by sqrt(std).
        "ex3-answer": '''def eval_pipeline(size, mean, std):
    return keras.Sequential([
        layers.CenterCrop(size, size),
        layers.Rescaling(1 / 255),
        layers.Normalization(mean=list(mean), variance=list(std)),
    ])
''',
        # Up-down symmetry taken for left-right: a 3 is symmetric top to bottom, not in a mirror.
        "ex4-answer": '''mirror_predictions = {0: "kept", 2: "lost", 3: "kept", 5: "lost", 6: "lost", 7: "lost", 8: "kept"}
''',
    },
}
