"""Planted wrong answers for lesson 02 (see tests/planted/__init__.py)."""

LESSON = "02-concat-failure-modes"

WRONG = {
    "pytorch": {
        # A 10x gap taken for a small one: the share is of squared norms, so x10 drowns branch A at the start.
        "ex1-answer": '''drowned_predictions = {"x10": "neither", "both x100": "neither", "x100, B standardized": "neither",
                       "A x100": "B", "x100, both sigmoid": "neither", "x100, A sigmoid": "A"}
''',
        # Shares of the plain norms: the square is forgotten.
        "ex2-answer": '''def gradient_shares(grads):
    norms = [float(g.detach().norm()) for g in grads]
    total = sum(norms)
    return [v / total for v in norms]
''',
        # Statistics over the wrong dims: per sample (C, H, W) instead of per channel (N, H, W).
        "ex3-answer": '''def standardize(x, eps=1e-5):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)
''',
        # Takes the branch with the smallest gradient share for the drowned one.
        "ex4-answer": '''def dominated_branch(report, ratio=10.0):
    scales = list(report.scales)
    if max(scales) / min(scales) < ratio:
        return None
    return int(np.argmin(report.grad_shares))
''',
    },
    "keras": {
        # Absolute scale taken for the cause: with both inputs x100 the ratio is 1, nothing is drowned.
        "ex1-answer": '''drowned_predictions = {"x10": "A", "both x100": "A", "x100, B standardized": "neither",
                       "A x100": "B", "x100, both sigmoid": "neither", "x100, A sigmoid": "A"}
''',
        "ex2-answer": '''def gradient_shares(grads):
    norms = [float(np.linalg.norm(ops.convert_to_numpy(g))) for g in grads]
    total = sum(norms)
    return [v / total for v in norms]
''',
        # Per-sample statistics: reduces over (H, W, C) instead of (N, H, W).
        "ex3-answer": '''def standardize(x, eps=1e-5):
    mean, var = ops.moments(ops.convert_to_tensor(x), axes=(1, 2, 3), keepdims=True)
    return (x - mean) / ops.sqrt(var + eps)
''',
        "ex4-answer": '''def dominated_branch(report, ratio=10.0):
    scales = list(report.scales)
    if max(scales) / min(scales) < ratio:
        return None
    return int(np.argmin(report.grad_shares))
''',
    },
}
