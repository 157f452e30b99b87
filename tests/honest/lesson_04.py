"""Honest correct answers for lesson 04, written in other styles than the solution's.

Each must score full marks under `coursekit grade`: the tests may not depend on how a correct
answer is written. `HONEST`: notebook name -> answer cell grade_id -> a list of answers (the format
of tests/planted/lesson_04.py, with a list per exercise).
"""

LESSON = "04-fusion-strategies"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            # register_parameter, F.softmax, stacked maps.
            '''def make_weighted_sum(num_branches):
    class Fuse(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.register_parameter("logits", nn.Parameter(torch.zeros(k)))

        def forward(self, maps):
            w = F.softmax(self.logits, dim=-1)
            stacked = torch.stack(list(maps), dim=0)
            return (stacked * w.view(-1, *([1] * maps[0].dim()))).sum(dim=0)

    return Fuse(num_branches)
''',
            # Draws from the global generator to make its zeros; einsum.
            '''def make_weighted_sum(num_branches):
    class WeightedSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(torch.randn(num_branches) * 0.0)

        def forward(self, maps):
            weights = self.logits.softmax(0)
            return torch.einsum("b,b...->...", weights, torch.stack(maps))

    return WeightedSum()
''',
        ],
        "ex2-answer": [
            # the squeeze picked by name with getattr and an f-string
            '''def se_forward(x, w1, b1, w2, b2, pool="avg"):
    z = getattr(F, f"adaptive_{pool}_pool2d")(x, 1).flatten(1)
    s = torch.sigmoid(F.linear(F.relu(F.linear(z, w1, b1)), w2, b2))
    return x * s.unsqueeze(-1).unsqueeze(-1)
''',
            # einsum, the sigmoid by hand, and the scaling done in place on x.
            '''def se_forward(x, w1, b1, w2, b2):
    z = x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
    h = torch.clamp(torch.einsum("nc,rc->nr", z, w1) + b1, min=0)
    s = 1 / (1 + torch.exp(-(torch.einsum("nr,cr->nc", h, w2) + b2)))
    x *= s[:, :, None, None]
    return x
''',
        ],
        "ex3-answer": [
            # Lists zipped into a dict, capitalized words.
            '''names = ["add", "concat", "concat_1x1", "weighted", "se", "attention"]
words = ["Nothing", "Nothing", "Fixed", "Fixed", "Input", "Input"]
fusion_weighting = dict(zip(names, words))
''',
            # Measured with the lesson's own probe, after a global random draw; an OrderedDict.
            '''from collections import OrderedDict
torch.rand(2)
fusion_weighting = OrderedDict((f, strategies.fusion_weighting(f).kind) for f in FUSIONS)
''',
        ],
        "ex4-answer": [
            # Its own module (no subclass), the conv class a default argument; the gate registered first.
            '''def make_fixed_fusion(channels):
    class Fixed(nn.Module):
        def __init__(self, conv=nn.Conv2d):
            super().__init__()
            self.gate = nn.Parameter(torch.zeros(1))
            self.projections = nn.ModuleList([conv(channels, channels, kernel_size=1) for _ in range(2)])

        def forward(self, maps):
            g = torch.sigmoid(self.gate)
            return g * self.projections[0](maps[0]) + (1 - g) * self.projections[1](maps[1])

    return Fixed()
''',
            # A subclass that appends the convs one by one and draws from the global generator first.
            '''def make_fixed_fusion(channels):
    class Fixed(BuggyGatedFusion):
        def __init__(self, channels):
            nn.Module.__init__(self)
            torch.rand(1)
            self.projections = nn.ModuleList()
            for _ in range(2):
                self.projections.append(nn.Conv2d(channels, channels, 1))
            self.register_parameter("gate", nn.Parameter(torch.tensor([0.0])))

    return Fixed(channels)
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            # The weight made in build(); the weighted sum as a tensordot.
            '''def make_weighted_sum(num_branches):
    class WeightedSum(layers.Layer):
        def build(self, input_shape):
            self.logits = self.add_weight(shape=(num_branches,), initializer=keras.initializers.Zeros(),
                                          name="logits")

        def call(self, maps):
            w = ops.softmax(self.logits)
            return ops.tensordot(w, ops.stack(maps, axis=0), axes=1)

    return WeightedSum()
''',
            # A keras.Variable attribute, a stable softmax by hand, after an unseeded random draw.
            '''def make_weighted_sum(num_branches):
    class WeightedSum(layers.Layer):
        def __init__(self):
            super().__init__()
            keras.random.uniform((1,))
            self.logits = keras.Variable(np.zeros(num_branches, "float32"), trainable=True, name="logits")

        def call(self, maps):
            e = ops.exp(self.logits - ops.max(self.logits))
            w = e / ops.sum(e)
            out = 0.0
            for i, m in enumerate(maps):
                out = out + w[i] * m
            return out

    return WeightedSum()
''',
        ],
        "ex2-answer": [
            '''def se_forward(x, w1, b1, w2, b2):
    z = ops.mean(x, axis=[1, 2])
    h = ops.relu(ops.einsum("nc,cr->nr", z, w1) + b1)
    s = ops.sigmoid(ops.einsum("nr,rc->nc", h, w2) + b2)
    return x * ops.reshape(s, (-1, 1, 1, s.shape[-1]))
''',
            # The sigmoid by hand, after an unseeded random draw.
            '''def se_forward(x, w1, b1, w2, b2):
    keras.random.normal((1,))
    x = ops.convert_to_tensor(x)
    z = ops.sum(x, axis=(1, 2)) / (x.shape[1] * x.shape[2])
    h = ops.maximum(ops.matmul(z, w1) + b1, 0.0)
    s = 1.0 / (1.0 + ops.exp(-(ops.matmul(h, w2) + b2)))
    return x * ops.expand_dims(ops.expand_dims(s, 1), 1)
''',
        ],
        "ex3-answer": [
            # Grouped by answer, keys with other spacing and case.
            '''fusion_weighting = {}
for word, names in {"nothing": ["Add", "concat "], "fixed": ["concat_1x1", "Weighted"], "input": ["SE", "attention"]}.items():
    for name in names:
        fusion_weighting[name] = word
''',
            # Measured with the lesson's own probe.
            '''fusion_weighting = {f: strategies.fusion_weighting(f).kind for f in FUSIONS}
''',
        ],
        "ex4-answer": [
            # Its own layer (no subclass); the gate made before the convs.
            '''def make_fixed_fusion(channels):
    class Fixed(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gate = self.add_weight(shape=(1,), initializer="zeros", name="gate")
            self.projections = [layers.Conv2D(channels, kernel_size=1) for _ in range(2)]

        def call(self, maps):
            g = ops.sigmoid(self.gate)
            return g * self.projections[0](maps[0]) + (1 - g) * self.projections[1](maps[1])

    return Fixed()
''',
            # A subclass that appends the convs one by one; the gate a keras.Variable attribute.
            '''def make_fixed_fusion(channels):
    class Fixed(BuggyGatedFusion):
        def __init__(self, channels, **kwargs):
            layers.Layer.__init__(self, **kwargs)
            self.projections = []
            for _ in range(2):
                self.projections.append(layers.Conv2D(channels, 1))
            self.gate = keras.Variable([0.0], trainable=True, name="gate")

    return Fixed(channels)
''',
        ],
    },
}
