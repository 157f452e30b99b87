"""Honest correct answers for lesson 09, written in other styles than the solution's.

Each must score full marks under `coursekit grade`: the tests may not depend on how a correct
answer is written. `HONEST`: notebook name -> answer cell grade_id -> a list of answers.
"""

LESSON = "09-real-architectures"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # Named layers with setattr/getattr, conv with a bias, F.relu, a growing tensor.
            '''def make_dense_block(in_channels, growth, num_layers):
    class Dense(nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(num_layers):
                c = in_channels + i * growth
                setattr(self, f"bn{i}", nn.BatchNorm2d(c))
                setattr(self, f"conv{i}", nn.Conv2d(c, growth, kernel_size=3, padding=1))

        def forward(self, input):
            out = input
            for i in range(num_layers):
                new = getattr(self, f"conv{i}")(F.relu(getattr(self, f"bn{i}")(out)))
                out = torch.cat((out, new), 1)
            return out

    return Dense()
''',
            # nn.Sequential of layer modules, padding="same", in-place ReLU.
            '''class DenseLayer(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, k, 3, padding="same", bias=False))

    def forward(self, x):
        return torch.cat([x, self.net(x)], dim=1)


def make_dense_block(in_channels, growth, num_layers):
    return nn.Sequential(*[DenseLayer(in_channels + i * growth, growth) for i in range(num_layers)])
''',
        ],
        "ex2-answer": [
            # narrow, with the offsets computed by divmod.
            '''def center_crop(x, size):
    H, W = x.shape[-2:]
    top, _ = divmod(H - size[0], 2)
    left, _ = divmod(W - size[1], 2)
    return x.narrow(2, top, size[0]).narrow(3, left, size[1])
''',
            # Slices built explicitly, an early return for the no-op case.
            '''def center_crop(x, size):
    h, w = int(size[0]), int(size[1])
    if tuple(x.shape[2:]) == (h, w):
        return x
    dh = (x.shape[2] - h) // 2
    dw = (x.shape[3] - w) // 2
    rows = slice(dh, dh + h)
    cols = slice(dw, dw + w)
    return x[..., rows, cols]
''',
        ],
        "ex3-answer": [
            # Recursion and repeat_interleave.
            '''def fpn_top_down(laterals):
    if len(laterals) == 1:
        return [laterals[0]]
    rest = fpn_top_down(laterals[1:])
    up = rest[0].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return [laterals[0] + up] + rest
''',
            # nn.Upsample and a reversed index loop building a dict.
            '''def fpn_top_down(laterals):
    upsample = nn.Upsample(scale_factor=2, mode="nearest")
    p = {len(laterals) - 1: laterals[-1]}
    for i in reversed(range(len(laterals) - 1)):
        p[i] = laterals[i] + upsample(p[i + 1])
    return [p[i] for i in range(len(laterals))]
''',
        ],
        "ex4-answer": [
            # A tiny MLP for gamma and beta; the last layer zero-initialised.
            '''def make_film(cond_dim, channels):
    class Film(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(cond_dim, 16)
            self.out = nn.Linear(16, 2 * channels)
            torch.nn.init.zeros_(self.out.weight)
            torch.nn.init.zeros_(self.out.bias)

        def forward(self, x, c):
            d_gamma, beta = torch.split(self.out(torch.relu(self.hidden(c))), channels, dim=-1)
            return x * (1.0 + d_gamma).view(-1, channels, 1, 1) + beta.view(-1, channels, 1, 1)

    return Film()
''',
            # Bias-free linear layers plus a separate gamma bias parameter started at 1.
            '''def make_film(cond_dim, channels):
    class Film(nn.Module):
        def __init__(self):
            super().__init__()
            self.wg = nn.Linear(cond_dim, channels, bias=False)
            self.wb = nn.Linear(cond_dim, channels, bias=False)
            self.bg = nn.Parameter(torch.ones(channels))
            self.bb = nn.Parameter(torch.zeros(channels))
            with torch.no_grad():
                self.wg.weight.zero_()
                self.wb.weight.zero_()

        def forward(self, x, c):
            g = self.wg(c) + self.bg
            b = self.wb(c) + self.bb
            return torch.einsum("nc,nchw->nchw", g, x) + b[..., None, None]

    return Film()
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            # A functional model built for the given channels (unknown H and W).
            '''def make_dense_block(in_channels, growth, num_layers):
    inp = keras.Input((None, None, in_channels))
    h = inp
    for _ in range(num_layers):
        y = layers.BatchNormalization()(h)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(growth, 3, padding="same")(y)
        h = layers.Concatenate(axis=-1)([h, y])
    return keras.Model(inp, h)
''',
            # A Sequential of sub-layers that each append their own channels.
            '''class AppendLayer(layers.Layer):
    def __init__(self, growth, **kwargs):
        super().__init__(**kwargs)
        self.bn = layers.BatchNormalization()
        self.relu = layers.ReLU()
        self.conv = layers.Conv2D(growth, kernel_size=(3, 3), padding="same", use_bias=False)

    def call(self, inputs, training=False):
        return layers.concatenate([inputs, self.conv(self.relu(self.bn(inputs, training=training)))])


def make_dense_block(in_channels, growth, num_layers):
    return keras.Sequential([AppendLayer(growth) for _ in range(num_layers)])
''',
        ],
        "ex2-answer": [
            # layers.Cropping2D with explicit (top, bottom), (left, right).
            '''def center_crop(x, size):
    H, W = x.shape[1], x.shape[2]
    top, left = (H - size[0]) // 2, (W - size[1]) // 2
    crop = layers.Cropping2D(((top, H - size[0] - top), (left, W - size[1] - left)))
    return crop(x)
''',
            # ops.slice.
            '''def center_crop(x, size):
    n, H, W, C = x.shape
    start = [0, (H - size[0]) // 2, (W - size[1]) // 2, 0]
    return ops.slice(x, start, [n, size[0], size[1], C])
''',
        ],
        "ex3-answer": [
            # ops.repeat, recursion.
            '''def fpn_top_down(laterals):
    if len(laterals) == 1:
        return list(laterals)
    rest = fpn_top_down(laterals[1:])
    up = ops.repeat(ops.repeat(rest[0], 2, axis=1), 2, axis=2)
    return [ops.add(laterals[0], up)] + rest
''',
            # TensorFlow's own resize.
            '''import tensorflow as tf


def fpn_top_down(laterals):
    outs = [None] * len(laterals)
    outs[-1] = laterals[-1]
    for i in range(len(laterals) - 2, -1, -1):
        h, w = laterals[i].shape[1], laterals[i].shape[2]
        outs[i] = laterals[i] + tf.image.resize(outs[i + 1], (h, w), method="nearest")
    return outs
''',
        ],
        "ex4-answer": [
            # One Dense for both, split; a 1 added to gamma.
            '''class Film(keras.layers.Layer):
    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.proj = keras.layers.Dense(2 * channels, kernel_initializer="zeros", bias_initializer="zeros")

    def call(self, x, c):
        gamma, beta = ops.split(self.proj(c), 2, axis=-1)
        gamma = ops.reshape(gamma + 1.0, (-1, 1, 1, self.channels))
        beta = ops.reshape(beta, (-1, 1, 1, self.channels))
        return x * gamma + beta


def make_film(cond_dim, channels):
    return Film(channels)
''',
            # Weights made with add_weight in build; gamma's bias starts at one.
            '''def make_film(cond_dim, channels):
    class FiLM(layers.Layer):
        def build(self, x_shape, c_shape):
            self.wg = self.add_weight(shape=(cond_dim, channels), initializer="zeros")
            self.bg = self.add_weight(shape=(channels,), initializer="ones")
            self.wb = self.add_weight(shape=(cond_dim, channels), initializer="zeros")
            self.bb = self.add_weight(shape=(channels,), initializer="zeros")

        def call(self, x, c):
            g = ops.matmul(c, self.wg) + self.bg
            b = ops.matmul(c, self.wb) + self.bb
            return x * g[:, None, None, :] + b[:, None, None, :]

    return FiLM()
''',
        ],
    },
}
