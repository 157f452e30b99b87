"""Honest answers for lesson 06 (see tests/honest/__init__.py)."""

LESSON = "06-learning-rate"

# Exercises 1, 3 and 4 are plain Python/numpy and read the same in both notebooks.
_EX1 = [
    # numpy's own geometric grid
    '''def lr_sweep(start_lr, end_lr, num_steps):
    return list(np.geomspace(start_lr, end_lr, num_steps))
''',
    # evenly spaced exponents, a loop, a stray global draw
    '''import random

def lr_sweep(start_lr, end_lr, num_steps):
    random.random()
    lo, hi = math.log10(start_lr), math.log10(end_lr)
    out = []
    for i in range(num_steps):
        out.append(10 ** (lo + (hi - lo) * i / (num_steps - 1)))
    return out
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
    # numpy, p clipped to [0, 1]
    '''def warmup_cosine_lr(step, base_lr, total_steps, warmup_steps, final_lr=0.0):
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps * base_lr
    p = np.clip((step - warmup_steps) / (total_steps - warmup_steps), 0.0, 1.0)
    return float(final_lr + (base_lr - final_lr) * (1 + np.cos(np.pi * p)) / 2)
''',
    # an early return after the end, cos written as 1 - 2 sin^2
    '''def warmup_cosine_lr(step, base_lr, total_steps, warmup_steps, final_lr=0.0):
    if step >= total_steps:
        return final_lr
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    p = (step - warmup_steps) / (total_steps - warmup_steps)
    return final_lr + (base_lr - final_lr) * (1 - math.sin(math.pi * p / 2) ** 2)
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
