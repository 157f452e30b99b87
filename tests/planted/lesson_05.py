"""Planted wrong answers for lesson 05 (see tests/planted/__init__.py)."""

LESSON = "05-initialization"

WRONG = {
    "pytorch": {
        # fan_in computed without the kernel area: (16, 3, 3, 3) -> (3, 16) instead of (27, 144).
        "ex1-answer": '''def conv_fans(weight_shape):
    return int(weight_shape[1]), int(weight_shape[0])
''',
        # Forgets that the ReLU keeps only half of the variance: too large by sqrt(2) per layer.
        "ex2-answer": '''def predict_conv_stds(x_rms, fan_ins, weight_stds):
    stds, rms = [], float(x_rms)
    for fan_in, w_std in zip(fan_ins, weight_stds):
        rms = float(w_std) * float(np.sqrt(fan_in)) * rms
        stds.append(rms)
    return stds
''',
        # fan_out (dim 0) used instead of fan_in (dim 1): right only when in == out.
        "ex3-answer": '''def he_normal(shape, seed=0):
    shape = tuple(int(d) for d in shape)
    fan_out = shape[0]
    for d in shape[2:]:
        fan_out *= d
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(shape, generator=gen) * float(np.sqrt(2.0 / fan_out))
''',
        # He with the ReLU gain for every activation: the variance doubles per layer without ReLU.
        "ex4-answer": '''def choose_init(activation):
    return {"scheme": "he_normal"}
''',
    },
    "keras": {
        # A Keras kernel (kh, kw, in, out) read as PyTorch's (out, in, kh, kw).
        "ex1-answer": '''def conv_fans(kernel_shape):
    shape = tuple(int(d) for d in kernel_shape)
    receptive = 1
    for d in shape[2:]:
        receptive *= d
    return shape[1] * receptive, shape[0] * receptive
''',
        # Halves the variance before the first conv too, although the raw input is no ReLU output.
        "ex2-answer": '''def predict_conv_stds(x_rms, fan_ins, weight_stds):
    stds, m2 = [], float(x_rms) ** 2
    for fan_in, w_std in zip(fan_ins, weight_stds):
        m2 = m2 / 2
        variance = float(fan_in) * float(w_std) ** 2 * m2
        stds.append(float(np.sqrt(variance)))
        m2 = variance
    return stds
''',
        # Forgets the ReLU gain sqrt(2): LeCun's std = 1 / sqrt(fan_in).
        "ex3-answer": '''def he_normal(shape, seed=0):
    shape = tuple(int(d) for d in shape)
    fan_in = int(np.prod(shape[:-1]))
    return np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(fan_in), size=shape).astype("float32")
''',
        # Xavier (Keras' default) for every activation: ReLU loses sqrt(2) per layer.
        "ex4-answer": '''def choose_init(activation):
    return {"scheme": "xavier_normal"}
''',
    },
}
