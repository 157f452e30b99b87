"""Planted wrong answers for lesson 03 (see tests/planted/__init__.py)."""

LESSON = "03-normalization"

WRONG = {
    "pytorch": {
        # torch.var is unbiased by default: divides by N*H*W - 1. BatchNorm normalizes with the
        # biased variance (it only uses the unbiased one for the running estimate).
        "ex1-answer": '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True)
    return gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps) + beta.view(1, -1, 1, 1)
''',
        # Interleaved groups (channel c goes to group c % G) instead of contiguous ones.
        "ex2-answer": '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    n, c, h, w = x.shape
    if c % groups != 0:
        raise ValueError("groups must divide the channels")
    grouped = x.reshape(n, c // groups, groups, h, w)
    mean = grouped.mean(dim=(1, 3, 4), keepdim=True)
    var = ((grouped - mean) ** 2).mean(dim=(1, 3, 4), keepdim=True)
    x_hat = ((grouped - mean) / torch.sqrt(var + eps)).reshape(n, c, h, w)
    return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)
''',
        # Momentum convention flipped: treats PyTorch's momentum as the weight of the old average.
        "ex3-answer": '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention not in ("torch", "keras"):
        raise ValueError(convention)
    running = np.asarray(initial, dtype=np.float64)
    for mean in batch_means:
        running = momentum * running + (1.0 - momentum) * np.asarray(mean, dtype=np.float64)
    return running
''',
        # Forgets model.eval(): no_grad alone keeps BatchNorm on batch statistics.
        "ex4-answer": '''def predict_eval(model, x_a, x_b):
    with torch.no_grad():
        return model(x_a, x_b).numpy()
''',
    },
    "keras": {
        # Normalizes over the wrong axes: per sample over (H, W), forgetting the batch axis.
        "ex1-answer": '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    x = ops.convert_to_tensor(x, dtype="float32")
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    var = ops.var(x, axis=(1, 2), keepdims=True)
    return gamma * (x - mean) / ops.sqrt(var + eps) + beta
''',
        # Interleaved groups (channel c goes to group c % G) instead of contiguous ones.
        "ex2-answer": '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    x = ops.convert_to_tensor(x, dtype="float32")
    n, h, w, c = x.shape
    if c % groups != 0:
        raise ValueError("groups must divide the channels")
    grouped = ops.reshape(x, (n, h, w, c // groups, groups))
    mean = ops.mean(grouped, axis=(1, 2, 3), keepdims=True)
    var = ops.mean((grouped - mean) ** 2, axis=(1, 2, 3), keepdims=True)
    x_hat = ops.reshape((grouped - mean) / ops.sqrt(var + eps), (n, h, w, c))
    return gamma * x_hat + beta
''',
        # Momentum convention flipped: treats Keras' momentum as the weight of the new batch.
        "ex3-answer": '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention not in ("torch", "keras"):
        raise ValueError(convention)
    running = np.asarray(initial, dtype=np.float64)
    for mean in batch_means:
        running = (1.0 - momentum) * running + momentum * np.asarray(mean, dtype=np.float64)
    return running
''',
        # Predicts with training=True: batch statistics, and the moving statistics get updated.
        "ex4-answer": '''def predict_eval(model, x_a, x_b):
    return ops.convert_to_numpy(model([x_a, x_b], training=True))
''',
    },
}
