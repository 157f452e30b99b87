"""Planted wrong answers for lesson 04 (see tests/planted/__init__.py)."""

LESSON = "04-fusion-strategies"

WRONG = {
    "pytorch": {
        # The article's bug: a plain tensor attribute (requires_grad=True) instead of nn.Parameter.
        # The output is right; the module has no registered parameter, so nothing trains.
        "ex1-answer": '''def make_weighted_sum(num_branches):
    class SoftmaxWeightedSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = torch.zeros(num_branches, requires_grad=True)

        def forward(self, maps):
            w = torch.softmax(self.logits, dim=0)
            return sum(w[i] * m for i, m in enumerate(maps))

    return SoftmaxWeightedSum()
''',
        # The sigmoid is missing: the gates are unbounded.
        "ex2-answer": '''def se_forward(x, w1, b1, w2, b2):
    z = x.mean(dim=(2, 3))
    s = F.relu(z @ w1.T + b1) @ w2.T + b2
    return x * s[:, :, None, None]
''',
        # Concatenation taken for a weighing layer: it has no parameters, the head conv after it weighs.
        "ex3-answer": '''fusion_weighting = {"add": "nothing", "concat": "fixed", "concat_1x1": "fixed",
                    "weighted": "fixed", "se": "input", "attention": "input"}
''',
        # Fixes the list (nn.ModuleList) but leaves the gate a plain tensor.
        "ex4-answer": '''def make_fixed_fusion(channels):
    class FixedGatedFusion(BuggyGatedFusion):
        def __init__(self, channels):
            nn.Module.__init__(self)
            self.projections = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(2))
            self.gate = torch.zeros(1, requires_grad=True)

    return FixedGatedFusion(channels)
''',
    },
    "keras": {
        # A plain tensor attribute instead of add_weight: a constant, not a weight.
        "ex1-answer": '''def make_weighted_sum(num_branches):
    class SoftmaxWeightedSum(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.logits = ops.zeros((num_branches,))

        def call(self, maps):
            w = ops.softmax(self.logits, axis=0)
            out = w[0] * maps[0]
            for i in range(1, len(maps)):
                out = out + w[i] * maps[i]
            return out

    return SoftmaxWeightedSum()
''',
        # The sigmoid is missing: the gates are unbounded.
        "ex2-answer": '''def se_forward(x, w1, b1, w2, b2):
    z = ops.mean(x, axis=(1, 2))
    s = ops.matmul(ops.relu(ops.matmul(z, w1) + b1), w2) + b2
    return x * s[:, None, None, :]
''',
        # The learned softmax weights taken for input-dependent ones: they are two numbers for every input.
        "ex3-answer": '''fusion_weighting = {"add": "nothing", "concat": "nothing", "concat_1x1": "fixed",
                    "weighted": "input", "se": "input", "attention": "input"}
''',
        # Owns the gate now, but created it with trainable=False: still never updated.
        "ex4-answer": '''def make_fixed_fusion(channels):
    class FixedGatedFusion(BuggyGatedFusion):
        def __init__(self, channels, **kwargs):
            layers.Layer.__init__(self, **kwargs)
            self.projections = [layers.Conv2D(channels, 1) for _ in range(2)]
            self.gate = self.add_weight(shape=(1,), initializer="zeros", trainable=False, name="gate")

    return FixedGatedFusion(channels)
''',
    },
}
