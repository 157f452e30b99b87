"""Honest correct answers for lesson 02, written in other styles than the solution's.

Each must score full marks under `coursekit grade`: the tests may not depend on how a correct
answer is written. `HONEST`: notebook name -> answer cell grade_id -> a list of answers (the format
of tests/planted/lesson_02.py, with a list per exercise).
"""

LESSON = "02-concat-failure-modes"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # Built up key by key, other spellings of the choices, extra notes under another key.
            '''drowned_predictions = {}
drowned_predictions["x10"] = "a"
drowned_predictions["both x100"] = "Neither"
drowned_predictions["x100, B standardized"] = " neither "
drowned_predictions["A x100"] = "b"
drowned_predictions["x100, both sigmoid"] = "NEITHER"
drowned_predictions["x100, A sigmoid"] = "A"
drowned_predictions["notes"] = "squared norms: x10 is a 100x gap"
''',
            # Measured instead of predicted, with the lesson's own tools, keys spaced differently.
            '''from coursekit.experiments import drowned_branch
keys = ["x10", "both x100", "x100,B standardized", "A x100", "x100,  both sigmoid", "x100, A sigmoid"]
drowned_predictions = dict(zip(keys, [drowned_branch(failure.init_head_shares(" ".join(k.replace(",", ", ").split())))
                                      for k in keys]))
''',
        ],
        "ex2-answer": [
            # Squared norms in float32, a tuple.
            '''def gradient_shares(grads):
    sq = [g.detach().norm() ** 2 for g in grads]
    total = sum(sq)
    return tuple(float(v / total) for v in sq)
''',
            # Squares its inputs in place.
            '''def gradient_shares(grads):
    sq = []
    for g in grads:
        g = g.detach()
        g.mul_(g)
        sq.append(g.sum().item())
    return [s / sum(sq) for s in sq]
''',
        ],
        "ex3-answer": [
            # One channel at a time.
            '''def standardize(x, eps=1e-5):
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c]
        m = v.mean()
        var = ((v - m) ** 2).mean()
        out[:, c] = (v - m) / torch.sqrt(var + eps)
    return out
''',
            # Statistics in float64 as E[x^2] - E[x]^2, then normalizes its input in place.
            '''def standardize(x, eps=1e-5):
    xd = x.detach().double()
    mean = xd.mean(dim=(0, 2, 3), keepdim=True)
    var = (xd * xd).mean(dim=(0, 2, 3), keepdim=True) - mean * mean
    x -= mean.to(x.dtype)
    x /= torch.sqrt(var + eps).to(x.dtype)
    return x
''',
        ],
        "ex4-answer": [
            '''def dominated_branch(report, ratio=10.0):
    s = np.asarray(report.scales, dtype=float)
    i = int(s.argmin())
    return i if s.max() >= ratio * s[i] else None
''',
            # A loop; the index as a numpy integer.
            '''def dominated_branch(report, ratio=10.0):
    scales = [float(v) for v in report.scales]
    smallest = 0
    for i, v in enumerate(scales):
        if v < scales[smallest]:
            smallest = i
    if max(scales) / scales[smallest] >= ratio:
        return np.int64(smallest)
    return None
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            # dict(...) with tuples of keys, lower case.
            '''answers = {("x10", "x100, A sigmoid"): "a", ("A x100",): "b",
           ("both x100", "x100, B standardized", "x100, both sigmoid"): "neither"}
drowned_predictions = {key: choice for keys, choice in answers.items() for key in keys}
''',
            # Measured instead of predicted, after drawing from the global random generators.
            '''from coursekit.experiments import INIT_SHARE_SETTINGS, drowned_branch
keras.random.normal((2,))
np.random.rand(2)
drowned_predictions = {k: drowned_branch(failure.init_head_shares(k)) for k in INIT_SHARE_SETTINGS}
''',
        ],
        "ex2-answer": [
            '''def gradient_shares(grads):
    sq = [float(tf.reduce_sum(tf.square(tf.cast(g, tf.float64)))) for g in grads]
    return [v / sum(sq) for v in sq]
''',
            # Norms in float32, a tuple.
            '''def gradient_shares(grads):
    sq = [ops.norm(ops.reshape(ops.convert_to_tensor(g), (-1,))) ** 2 for g in grads]
    total = sum(float(v) for v in sq)
    return tuple(float(v) / total for v in sq)
''',
        ],
        "ex3-answer": [
            # numpy in float64: returns a numpy array.
            '''def standardize(x, eps=1e-5):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps)
''',
            '''def standardize(x, eps=1e-5):
    x = ops.convert_to_tensor(x)
    mean = ops.mean(x, axis=(0, 1, 2))
    var = ops.mean(ops.square(x - mean), axis=(0, 1, 2))
    return (x - mean) * ops.rsqrt(var + eps)
''',
        ],
        "ex4-answer": [
            '''def dominated_branch(report, ratio=10.0):
    s = np.asarray(report.scales, dtype=float)
    i = int(s.argmin())
    return i if s.max() >= ratio * s[i] else None
''',
            '''def dominated_branch(report, ratio=10.0):
    scales = [float(v) for v in report.scales]
    smallest = 0
    for i, v in enumerate(scales):
        if v < scales[smallest]:
            smallest = i
    if max(scales) / scales[smallest] >= ratio:
        return np.int64(smallest)
    return None
''',
        ],
    },
}
