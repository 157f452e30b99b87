"""Planted wrong answers for lesson 08 (see tests/planted/__init__.py)."""

LESSON = "08-capstone"

# The article's view: every bug alone makes the output constant (each fix covers for no other).
_EX4_EVERY_BUG_BREAKS = '''bug_predictions = {"all four fixes": "learns", "all fixes but input": "breaks", "all fixes but fusion": "breaks",
                   "all fixes but init": "breaks", "all fixes but lr": "breaks", "all fixes but init and fusion": "breaks",
                   "all fixes but input and fusion": "breaks"}
'''

WRONG = {
    "pytorch": {
        # Normalizes the test set with its own statistics: passes the training-set checks only.
        "ex1-answer": '''def normalize_inputs(train, test):
    def own(d):
        return replace(d, x_a=(d.x_a - d.x_a.mean()) / d.x_a.std(), x_b=(d.x_b - d.x_b.mean()) / d.x_b.std())
    return own(train), own(test)
''',
        # Registers the gate but normalizes with one set of statistics over all channels (a
        # LayerNorm): the 1000x branch sets the shared std and squashes branch A towards 0.
        "ex2-answer": '''def make_fusion(width):
    class LayerNormConcat(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.GroupNorm(1, 2 * width, affine=False)
            self.gate = nn.Parameter(torch.ones(2))

        def forward(self, maps):
            x = self.norm(torch.cat(list(maps), dim=1))
            return torch.cat([self.gate[0] * x[:, :width], self.gate[1] * x[:, width:]], dim=1)

    return LayerNormConcat()
''',
        # The article's initialization: He with mode='fan_out' for convolutions, Xavier for Linear.
        "ex3-answer": '''def init_he(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
    return model
''',
        "ex4-answer": _EX4_EVERY_BUG_BREAKS,
        # Trains on the normalized data but evaluates on the raw test set.
        "ex5-answer": '''def train_fixed(train, test, fixes, seed=0, epochs=None, num_steps=100):
    train_n, test_n = fixes["normalize"](train, test)
    seed_everything(seed)
    model = capstone.capstone_net(fixes["make_fusion"](8))
    fixes["init"](model)
    result = ck.lr_range_test(model, train_n.inputs, train_n.y, optimizer="sgd", start_lr=1e-5, end_lr=10,
                              num_steps=num_steps, seed=seed)
    lr = fixes["pick_lr"](result)
    return capstone.train_and_report(model, train_n, test, lr=lr, epochs=epochs, seed=seed)
''',
    },
    "keras": {
        "ex1-answer": '''def normalize_inputs(train, test):
    def own(d):
        return replace(d, x_a=(d.x_a - d.x_a.mean()) / d.x_a.std(), x_b=(d.x_b - d.x_b.mean()) / d.x_b.std())
    return own(train), own(test)
''',
        "ex2-answer": '''def make_fusion(width):
    class LayerNormConcat(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norm = layers.LayerNormalization(axis=[1, 2, 3], center=False, scale=False)
            self.gate = self.add_weight(shape=(2,), initializer="ones", name="gate")

        def call(self, maps, training=None):
            x = self.norm(ops.concatenate(list(maps), axis=-1))
            return ops.concatenate([self.gate[0] * x[..., :width], self.gate[1] * x[..., width:]], axis=-1)

    return LayerNormConcat()
''',
        "ex3-answer": '''def init_he(model):
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            layer.kernel.assign(keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")(layer.kernel.shape))
        elif isinstance(layer, layers.Dense):
            layer.kernel.assign(keras.initializers.GlorotUniform()(layer.kernel.shape))
    return model
''',
        "ex4-answer": _EX4_EVERY_BUG_BREAKS,
        "ex5-answer": '''def train_fixed(train, test, fixes, seed=0, epochs=None, num_steps=100):
    train_n, test_n = fixes["normalize"](train, test)
    seed_everything(seed)
    model = capstone.capstone_net(fixes["make_fusion"](8))
    fixes["init"](model)
    result = ck.lr_range_test(model, train_n.inputs, train_n.y, optimizer="sgd", start_lr=1e-5, end_lr=10,
                              num_steps=num_steps, seed=seed)
    lr = fixes["pick_lr"](result)
    return capstone.train_and_report(model, train_n, test, lr=lr, epochs=epochs, seed=seed)
''',
    },
}
