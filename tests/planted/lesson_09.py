"""Planted wrong answers for lesson 09 (see tests/planted/__init__.py)."""

LESSON = "09-real-architectures"

WRONG = {
    "pytorch": {
        # A chain, not a dense block: each layer reads only the previous layer's output (a ResNet
        # habit), though all outputs are concatenated at the end.
        "ex1-answer": '''def make_dense_block(in_channels, growth, num_layers):
    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(
                nn.Sequential(nn.BatchNorm2d(in_channels if i == 0 else growth), nn.ReLU(),
                              nn.Conv2d(in_channels if i == 0 else growth, growth, 3, padding=1, bias=False))
                for i in range(num_layers))

        def forward(self, x):
            outs, h = [x], x
            for layer in self.layers:
                h = layer(h)
                outs.append(h)
            return torch.cat(outs, dim=1)

    return Chain()
''',
        # Crops from the top-left corner instead of the center.
        "ex2-answer": '''def center_crop(x, size):
    h, w = size
    return x[:, :, :h, :w]
''',
        # Adds the upsampled *lateral* of the coarser level, not the running sum: P_0 misses C_2.
        "ex3-answer": '''def fpn_top_down(laterals):
    outs = [laterals[-1]]
    for i in range(len(laterals) - 2, -1, -1):
        outs.insert(0, laterals[i] + F.interpolate(laterals[i + 1], scale_factor=2, mode="nearest"))
    return outs
''',
        # gamma = the linear layer's output itself (no 1 +): with zero init it starts by erasing x.
        "ex4-answer": '''def make_film(cond_dim, channels):
    class FiLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.film = nn.Linear(cond_dim, 2 * channels)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

        def forward(self, x, c):
            gamma, beta = self.film(c).chunk(2, dim=1)
            return gamma[:, :, None, None] * x + beta[:, :, None, None]

    return FiLM()
''',
    },
    "keras": {
        "ex1-answer": '''def make_dense_block(in_channels, growth, num_layers):
    class Chain(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norms = [layers.BatchNormalization() for _ in range(num_layers)]
            self.convs = [layers.Conv2D(growth, 3, padding="same", use_bias=False) for _ in range(num_layers)]

        def call(self, x, training=None):
            outs, h = [x], x
            for norm, conv in zip(self.norms, self.convs):
                h = conv(ops.relu(norm(h, training=training)))
                outs.append(h)
            return ops.concatenate(outs, axis=-1)

    return Chain()
''',
        "ex2-answer": '''def center_crop(x, size):
    h, w = size
    return x[:, :h, :w, :]
''',
        "ex3-answer": '''def fpn_top_down(laterals):
    outs = [laterals[-1]]
    for i in range(len(laterals) - 2, -1, -1):
        outs.insert(0, laterals[i] + layers.UpSampling2D(2)(laterals[i + 1]))
    return outs
''',
        "ex4-answer": '''def make_film(cond_dim, channels):
    class FiLM(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.film = layers.Dense(2 * channels, kernel_initializer="zeros")

        def call(self, x, c):
            gb = self.film(c)
            gamma, beta = gb[:, :channels], gb[:, channels:]
            return gamma[:, None, None, :] * x + beta[:, None, None, :]

    return FiLM()
''',
    },
}
