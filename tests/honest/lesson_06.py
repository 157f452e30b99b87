"""Honest answers for lesson 06 (see tests/honest/__init__.py)."""

LESSON = "06-learning-rate"

# Exercises 1, 3 and 4 are plain Python/numpy and read the same in both notebooks.
_EX1 = [
    # floats, other spellings of the keys
    '''sweep_predictions = {"Exponential, below 1e-3": 29.0, "linear,below 1e-3": 1.0,
                     "exponential, in [0.01, 0.1)": 14.0, "Linear, at least 1": 99.0}
''',
    # counted with numpy instead of predicted: numpy integers
    '''expo, lin = np.geomspace(1e-5, 100, 100), np.linspace(1e-5, 100, 100)
sweep_predictions = {
    "exponential, below 1e-3": (expo < 1e-3).sum(),
    "linear, below 1e-3": np.count_nonzero(lin < 1e-3),
    "exponential, in [0.01, 0.1)": ((expo >= 0.01) & (expo < 0.1)).sum(),
    "linear, at least 1": (lin >= 1).sum(),
}
''',
]
_EX3 = [
    # natural logs instead of log10 (the same argmin), plain lists
    '''def choose_lr(lrs, losses):
    losses = [float(v) for v in losses]
    m = losses.index(min(losses))
    if m == 0:
        return None
    slope = np.gradient(np.array(losses[: m + 1]), np.log(np.array(lrs[: m + 1], dtype=float)))
    best = int(np.argmin(slope))
    if slope[best] >= 0:
        return None
    return float(lrs[best])
''',
    # a loop for the argmin, a global draw, numpy arrays in and out
    '''def choose_lr(lrs, losses):
    np.random.rand()
    lrs, losses = np.array(lrs, dtype=float), np.array(losses, dtype=float)
    m = int(losses.argmin())
    if m == 0:
        return None
    slope = np.gradient(losses[: m + 1], np.log10(lrs[: m + 1]))
    i_best = 0
    for i in range(1, len(slope)):
        if slope[i] < slope[i_best]:
            i_best = i
    return lrs[i_best].item() if slope[i_best] < 0 else None
''',
]
_EX4 = [
    # other spellings of keys and names, built with dict()
    '''schedule_answers = dict([("Zero at the start", "Warmup_Cosine"), ("peaks  last", "ONE_CYCLE"),
                         ("lowest at step 80", " step"), ("half at step 100", "Cosine"),
                         ("highest at step 150", "one_cycle")])
''',
    # computed from the schedules instead of predicted
    '''T = 200
opts = {"constant": {}, "step": {"step_size": T // 3}, "cosine": {}, "warmup_cosine": {"warmup_steps": T // 10},
        "one_cycle": {}}
lr = {n: np.array(ck.schedule_values(n, base_lr=0.1, total_steps=T, **o)) for n, o in opts.items()}
schedule_answers = {
    "zero at the start": min(lr, key=lambda n: lr[n][0]),
    "peaks last": max(lr, key=lambda n: lr[n].argmax()),
    "lowest at step 80": min(lr, key=lambda n: lr[n][80]),
    "half at step 100": min(lr, key=lambda n: abs(lr[n][100] - 0.05)),
    "highest at step 150": max((n for n in lr if n != "constant"), key=lambda n: lr[n][150]),
}
''',
]

HONEST = {
    "pytorch": {
        "ex1-answer": _EX1,
        "ex2-answer": [
            # SGD with momentum by hand (torch's rule: buf = 0.9 buf + g; p -= lr buf), autograd.grad
            '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    params = list(model.parameters())
    bufs = [torch.zeros_like(p) for p in params]
    lrs, losses = [], []
    avg, best = 0.0, float("inf")
    for i in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
        loss = ((model(x) - y) ** 2).mean()
        raw = float(loss)
        if math.isnan(raw) or math.isinf(raw):
            break
        avg = smooth * raw + (1 - smooth) * avg
        s = avg / (1 - (1 - smooth) ** (i + 1))
        lrs.append(lr)
        losses.append(s)
        best = min(best, s)
        if s > diverge_factor * best:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, b in zip(params, grads, bufs):
                b.mul_(0.9).add_(g)
                p.sub_(lr * b)
    return lrs, losses
''',
            # the LRs from np.geomspace, a tuple and an array returned, torch.isfinite
            '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    schedule = np.geomspace(start_lr, end_lr, num_steps)
    opt = torch.optim.SGD(model.parameters(), lr=float(schedule[0]), momentum=0.9)
    lrs, losses, avg, best = [], [], 0.0, None
    for i, lr in enumerate(schedule):
        for group in opt.param_groups:
            group["lr"] = float(lr)
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        if not torch.isfinite(loss):
            break
        avg = (1 - smooth) * avg + smooth * loss.item()
        smoothed = avg / (1 - (1 - smooth) ** (i + 1))
        lrs.append(float(lr))
        losses.append(smoothed)
        best = smoothed if best is None else min(best, smoothed)
        if smoothed > diverge_factor * best:
            break
        loss.backward()
        opt.step()
    return tuple(lrs), np.array(losses)
''',
        ],
        "ex3-answer": _EX3,
        "ex4-answer": _EX4,
    },
    "keras": {
        "ex1-answer": _EX1,
        "ex2-answer": [
            # SGD with momentum by hand (Keras' rule: m = 0.9 m - lr g; w += m), tf ops
            '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    variables = model.trainable_variables
    velocity = [tf.zeros_like(v) for v in variables]
    lrs, losses = [], []
    avg, best = 0.0, float("inf")
    for i in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        raw = float(loss.numpy())
        if not math.isfinite(raw):
            break
        avg = smooth * raw + (1 - smooth) * avg
        s = avg / (1 - (1 - smooth) ** (i + 1))
        lrs.append(lr)
        losses.append(s)
        best = min(best, s)
        if s > diverge_factor * best:
            break
        grads = tape.gradient(loss, variables)
        for k, (v, g) in enumerate(zip(variables, grads)):
            velocity[k] = 0.9 * velocity[k] - lr * g
            v.assign_add(velocity[k])
    return lrs, losses
''',
            # the LRs from np.geomspace, Keras' MSE loss object, assign on the LR variable, arrays returned
            '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    mse = keras.losses.MeanSquaredError()
    opt = keras.optimizers.SGD(learning_rate=start_lr, momentum=0.9)
    schedule = np.geomspace(start_lr, end_lr, num_steps)
    lrs, losses, avg, best = [], [], 0.0, None
    for i, lr in enumerate(schedule):
        opt.learning_rate = float(lr)
        with tf.GradientTape() as tape:
            loss = mse(y, model(x, training=True))
        if not np.isfinite(float(loss)):
            break
        avg = (1 - smooth) * avg + smooth * float(loss)
        smoothed = avg / (1 - (1 - smooth) ** (i + 1))
        lrs.append(float(lr))
        losses.append(smoothed)
        best = smoothed if best is None else min(best, smoothed)
        if smoothed > diverge_factor * best:
            break
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
    return np.array(lrs), np.array(losses)
''',
        ],
        "ex3-answer": _EX3,
        "ex4-answer": _EX4,
    },
}
