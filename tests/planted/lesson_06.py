"""Planted wrong answers for lesson 06 (see tests/planted/__init__.py)."""

LESSON = "06-learning-rate"

# Exercises 1, 3 and 4 are plain Python/numpy and read the same in both notebooks.
# The exponential sweep taken to crowd its steps at the top like the linear one: 1 below 1e-3, not 29.
_EX1_LINEAR_SWEEP = '''sweep_predictions = {"exponential, below 1e-3": 1, "linear, below 1e-3": 1,
                     "exponential, in [0.01, 0.1)": 14, "linear, at least 1": 99}
'''
# Picks the LR of the lowest loss: right at the edge of divergence.
_EX3_MINIMUM = '''def choose_lr(lrs, losses):
    m = int(np.argmin(losses))
    if m == 0:
        return None
    return float(lrs[m])
'''
# Off by one step in the warmup: base_lr / warmup_steps at step 0 instead of 0.
# The warmup taken for a shift of nothing: warmup + cosine's cosine starts 20 steps later, so it is
# still above half at the middle of the run.
_EX4_HALF_WRONG = '''schedule_answers = {"zero at the start": "warmup_cosine", "peaks last": "one_cycle",
                    "lowest at step 80": "step", "half at step 100": "warmup_cosine",
                    "highest at step 150": "one_cycle"}
'''

WRONG = {
    "pytorch": {
        "ex1-answer": _EX1_LINEAR_SWEEP,
        # No bias correction: the average starts at 0, so the first points are far too low and the
        # "divergence" rule fires after a few steps.
        "ex2-answer": '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    opt = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=0.9)
    lrs, losses = [], []
    avg, best = 0.0, math.inf
    for i in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.mse_loss(model(x), y)
        raw = loss.item()
        if not math.isfinite(raw):
            break
        avg = (1 - smooth) * avg + smooth * raw
        lrs.append(lr)
        losses.append(avg)
        best = min(best, avg)
        if avg > diverge_factor * best:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lrs, losses
''',
        "ex3-answer": _EX3_MINIMUM,
        "ex4-answer": _EX4_HALF_WRONG,
    },
    "keras": {
        "ex1-answer": _EX1_LINEAR_SWEEP,
        "ex2-answer": '''def range_test_loop(model, x, y, start_lr, end_lr, num_steps, smooth=0.05, diverge_factor=4.0):
    opt = keras.optimizers.SGD(learning_rate=start_lr, momentum=0.9)
    lrs, losses = [], []
    avg, best = 0.0, math.inf
    for i in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
        opt.learning_rate = lr
        with tf.GradientTape() as tape:
            loss = ops.mean(ops.square(model(x, training=True) - y))
        raw = float(loss)
        if not math.isfinite(raw):
            break
        avg = (1 - smooth) * avg + smooth * raw
        lrs.append(lr)
        losses.append(avg)
        best = min(best, avg)
        if avg > diverge_factor * best:
            break
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
    return lrs, losses
''',
        "ex3-answer": _EX3_MINIMUM,
        "ex4-answer": _EX4_HALF_WRONG,
    },
}
