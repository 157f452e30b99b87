"""Honest answers for lesson 05 (see tests/honest/__init__.py)."""

LESSON = "05-initialization"

# Exercises 2 and 4 read the same in both notebooks.
_EX2 = [
    # the std itself carried from layer to layer, math instead of numpy, a list of floats
    '''import math

def predict_conv_stds(x_rms, fan_ins, weight_stds):
    out = []
    rms = float(x_rms)  # rms of the input of the current conv
    for i in range(len(fan_ins)):
        std = weight_stds[i] * math.sqrt(fan_ins[i]) * rms
        out.append(std)
        rms = std / math.sqrt(2)  # a ReLU of a zero-mean symmetric input keeps half the second moment
    return out
''',
    # vectorised: a cumulative product, returned as a numpy array, after a stray global draw
    '''def predict_conv_stds(x_rms, fan_ins, weight_stds):
    np.random.rand(3)  # the global RNG moves; the answer must not care
    factors = np.asarray(weight_stds, dtype=float) * np.sqrt(np.asarray(fan_ins, dtype=float))
    relu = np.full(len(factors), np.sqrt(0.5))
    relu[0] = 1.0  # no ReLU before the first conv
    return x_rms * np.cumprod(factors * relu)
''',
]
_EX4 = [
    # aliases and the gain of the activation itself (LeCun for linear, torch's tanh gain for tanh)
    '''def choose_init(activation):
    if activation == "relu":
        return dict(scheme="kaiming_normal")
    return dict(scheme="he_normal", mode="fan_in", nonlinearity=activation)
''',
    # uniform variants, a lookup table
    '''CHOICES = {"relu": {"scheme": "he_uniform", "mode": "fan_in"},
           "tanh": {"scheme": "xavier_uniform"},
           "linear": {"scheme": "xavier_uniform"}}

def choose_init(activation):
    return dict(CHOICES[activation])
''',
]

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # math.prod, a list instead of a tuple
            '''import math

def conv_fans(weight_shape):
    dims = list(weight_shape)
    area = math.prod(dims[2:])
    return [dims[1] * area, dims[0] * area]
''',
            # numpy, after a draw from the global RNG
            '''def conv_fans(weight_shape):
    np.random.randn()
    receptive = int(np.prod(weight_shape[2:])) if len(weight_shape) > 2 else 1
    return int(weight_shape[1]) * receptive, int(weight_shape[0]) * receptive
''',
        ],
        "ex2-answer": _EX2,
        "ex3-answer": [
            # torch.normal with a generator
            '''def he_normal(shape, seed=0):
    shape = tuple(shape)
    fan_in = shape[1]
    for k in shape[2:]:
        fan_in = fan_in * k
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.normal(0.0, (2.0 / fan_in) ** 0.5, size=shape, generator=g)
''',
            # torch's own initializer on an empty tensor, with its generator argument
            '''def he_normal(shape, seed=0):
    w = torch.empty(*shape)
    return nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu",
                                   generator=torch.Generator().manual_seed(seed))
''',
            # numpy draws, a stray global draw first, converted to a float32 tensor
            '''def he_normal(shape, seed=0):
    np.random.rand(5)
    fan_in = int(np.prod(shape[1:]))
    w = np.random.default_rng(seed).normal(0.0, np.sqrt(2 / fan_in), size=tuple(shape))
    return torch.from_numpy(w).float()
''',
        ],
        "ex4-answer": _EX4,
    },
    "keras": {
        "ex1-answer": [
            # star unpacking, a loop, a list
            '''def conv_fans(kernel_shape):
    *kernel, n_in, n_out = [int(d) for d in kernel_shape]
    area = 1
    for k in kernel:
        area *= k
    return [n_in * area, n_out * area]
''',
            # numpy, after a draw from the global RNG
            '''def conv_fans(kernel_shape):
    np.random.randn()
    receptive = int(np.prod(kernel_shape[:-2])) if len(kernel_shape) > 2 else 1
    return int(kernel_shape[-2]) * receptive, int(kernel_shape[-1]) * receptive
''',
        ],
        "ex2-answer": _EX2,
        "ex3-answer": [
            # keras.random with an int seed: a tensor, not a numpy array
            '''def he_normal(shape, seed=0):
    fan_in = 1
    for d in shape[:-1]:
        fan_in *= d
    return keras.random.normal(tuple(shape), stddev=(2.0 / fan_in) ** 0.5, seed=seed)
''',
            # an untruncated Keras initializer
            '''def he_normal(shape, seed=0):
    init = keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal", seed=seed)
    return keras.ops.convert_to_numpy(init(tuple(shape)))
''',
            # the legacy numpy RandomState after a stray global draw
            '''def he_normal(shape, seed=0):
    np.random.rand(5)
    fan_in = int(np.prod(shape[:-1]))
    return np.random.RandomState(seed).normal(0.0, np.sqrt(2 / fan_in), size=shape).astype(np.float32)
''',
        ],
        "ex4-answer": _EX4,
    },
}
