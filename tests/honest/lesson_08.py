"""Honest answers for lesson 08 (see tests/honest/__init__.py)."""

LESSON = "08-capstone"

# Exercises 1 and 4 are numpy and read the same in both notebooks.
_EX1 = [
    # a loop over the branch names, getattr, replace(**changes), a list returned
    '''def normalize_inputs(train, test):
    stats = {}
    for name in ("x_a", "x_b"):
        x = getattr(train, name)
        stats[name] = (float(np.mean(x)), float(np.std(x)))
    out = []
    for d in (train, test):
        changes = {name: (getattr(d, name) - m) / s for name, (m, s) in stats.items()}
        out.append(replace(d, **changes))
    return out
''',
    # the sample std (ddof=1) of float64 copies, a stray global draw, cast back to float32
    '''def normalize_inputs(train, test):
    np.random.rand()
    a, b = train.x_a.astype(np.float64), train.x_b.astype(np.float64)
    (ma, sa), (mb, sb) = (a.mean(), a.std(ddof=1)), (b.mean(), b.std(ddof=1))

    def fix(d):
        return replace(d, x_a=((d.x_a - ma) / sa).astype(np.float32), x_b=((d.x_b - mb) / sb).astype(np.float32))

    return fix(train), fix(test)
''',
]
_EX4 = [
    # other spellings of keys and words
    '''bug_predictions = {"All four fixes": "Learns", "all fixes but input ": "learns", "all fixes  but fusion": "LEARNS",
                   "all fixes but init": "learns", "all fixes but LR": "breaks", "all fixes but init and fusion": "Breaks",
                   "all fixes but input and fusion": "breaks"}
''',
    # a rule written as code: the LR breaks alone; the fusion fix covers for the input or the init fix
    '''def predicted(missing):
    if "lr" in missing:
        return "breaks"
    if "fusion" in missing and ({"input", "init"} & set(missing)):
        return "breaks"
    return "learns"


bug_predictions = {"all four fixes": predicted(())}
for missing in [("input",), ("fusion",), ("init",), ("lr",), ("init", "fusion"), ("input", "fusion")]:
    bug_predictions["all fixes but " + " and ".join(missing)] = predicted(missing)
''',
]
_EX5 = [
    # the fixes unpacked first, init's return value used, the range test's inputs as a list
    '''def train_fixed(train, test, fixes, seed=0, epochs=None, num_steps=100):
    normalize, make_fusion, init, pick = (fixes[k] for k in ("normalize", "make_fusion", "init", "pick_lr"))
    train_n, test_n = normalize(train, test)
    seed_everything(seed)
    model = init(capstone.capstone_net(make_fusion(8)))
    curve = ck.lr_range_test(model, list(train_n.inputs), train_n.y, optimizer="sgd", start_lr=1e-5, end_lr=10.0,
                             num_steps=num_steps, seed=seed)
    return capstone.train_and_report(model, train_n, test_n, lr=pick(curve), epochs=epochs, seed=seed,
                                     label="my repaired pipeline")
''',
    # stray global draws before seeding, keyword arguments throughout, a helper for the range test
    '''def _range_test(model, data, seed, num_steps):
    return ck.lr_range_test(model, [data.x_a, data.x_b], data.y, optimizer="sgd", start_lr=1e-5, end_lr=10,
                            num_steps=num_steps, seed=seed)


def train_fixed(train, test, fixes, seed=0, epochs=None, num_steps=100):
    np.random.rand(2)
    train_n, test_n = fixes["normalize"](train=train, test=test)
    seed_everything(seed)
    fusion = fixes["make_fusion"](8)
    model = capstone.capstone_net(fusion)
    fixes["init"](model)
    lr = fixes["pick_lr"](_range_test(model, train_n, seed, num_steps))
    run = capstone.train_and_report(model, train_n, test_n, lr=lr, epochs=epochs, seed=seed)
    return run
''',
]

HONEST = {
    "pytorch": {
        "ex1-answer": _EX1,
        "ex2-answer": [
            # one BatchNorm2d per branch (per channel either way), register_parameter
            '''class TwoNormGate(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm_a = nn.BatchNorm2d(width)
        self.norm_b = nn.BatchNorm2d(width)
        self.register_parameter("gate", nn.Parameter(torch.ones(2)))

    def forward(self, maps):
        a, b = maps
        return torch.cat([self.gate[0] * self.norm_a(a), self.gate[1] * self.norm_b(b)], dim=1)


def make_fusion(width):
    return TwoNormGate(width)
''',
            # functional batch norm with its own buffers, `def forward(self, input)`
            '''import torch.nn.functional as F


class Fusion(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width
        self.gate = nn.Parameter(torch.tensor([1.0, 1.0]))
        self.register_buffer("running_mean", torch.zeros(2 * width))
        self.register_buffer("running_var", torch.ones(2 * width))

    def forward(self, input):
        x = torch.cat(tuple(input), 1)
        x = F.batch_norm(x, self.running_mean, self.running_var, training=self.training, momentum=0.1, eps=1e-5)
        w = self.width
        return torch.cat([x[:, :w] * self.gate[0], x[:, w:] * self.gate[1]], 1)


def make_fusion(width):
    return Fusion(width)
''',
        ],
        "ex3-answer": [
            # kaiming_normal_'s defaults (fan_in, a=0), type() checks, bias.data
            '''def init_he(model):
    for m in model.modules():
        if type(m) in (nn.Conv2d, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            if getattr(m, "bias", None) is not None:
                m.bias.data.zero_()
    return model
''',
            # by hand: randn_like under no_grad, fan_in from one output unit
            '''def init_he(model):
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn_like(m.weight) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.fill_(0.0)
    return model
''',
            # coursekit's init_model
            '''def init_he(model):
    return ck.init_model(model, "he_normal", mode="fan_in", bias=0.0)
''',
        ],
        "ex4-answer": _EX4,
        "ex5-answer": _EX5,
    },
    "keras": {
        "ex1-answer": _EX1,
        "ex2-answer": [
            # one BatchNormalization per branch, the gate made in build()
            '''class TwoNormGate(layers.Layer):
    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.norm_a = layers.BatchNormalization()
        self.norm_b = layers.BatchNormalization()

    def build(self, input_shape):
        self.gate = self.add_weight(shape=(2,), initializer=keras.initializers.Ones(), trainable=True, name="gate")

    def call(self, maps, training=None):
        a, b = maps
        return ops.concatenate([self.gate[0] * self.norm_a(a, training=training),
                                self.gate[1] * self.norm_b(b, training=training)], axis=-1)


def make_fusion(width):
    return TwoNormGate(width)
''',
            # ops.split instead of slicing, training=False by default
            '''class Fuse(layers.Layer):
    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.bn = layers.BatchNormalization(axis=-1, center=False, scale=False)
        self.gate = self.add_weight(shape=(2,), initializer="ones", name="gate")

    def call(self, inputs, training=False):
        x = self.bn(ops.concatenate(inputs, axis=-1), training=training)
        a, b = ops.split(x, 2, axis=-1)
        return ops.concatenate([a * self.gate[0], b * self.gate[1]], axis=-1)


def make_fusion(width):
    return Fuse(width)
''',
        ],
        "ex3-answer": [
            # an untruncated VarianceScaling initializer, use_bias checked
            '''def init_he(model):
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            init = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
            layer.kernel.assign(init(layer.kernel.shape))
            if layer.use_bias:
                layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    return model
''',
            # numpy's global RNG, classes matched by name
            '''def init_he(model):
    for layer in model.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            shape = tuple(layer.kernel.shape)
            std = np.sqrt(2.0 / np.prod(shape[:-1]))
            layer.kernel.assign(np.random.normal(0.0, std, size=shape).astype("float32"))
            layer.bias.assign(np.zeros(tuple(layer.bias.shape), "float32"))
    return model
''',
        ],
        "ex4-answer": _EX4,
        "ex5-answer": _EX5,
    },
}
