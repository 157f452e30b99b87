"""Honest correct answers for lesson 03, written in other styles than the solution's.

Each must score full marks under `coursekit grade`: the tests may not depend on how a correct
answer is written. `HONEST`: notebook name -> answer cell grade_id -> a list of answers (the format
of tests/planted/lesson_03.py, with a list per exercise).
"""

LESSON = "03-normalization"

HONEST = {
    "pytorch": {
        "ex1-answer": [
            '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]
''',
            # One channel at a time on a (C, N*H*W) view; returns a non-contiguous tensor.
            '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    n, c, h, w = x.shape
    flat = x.permute(1, 0, 2, 3).reshape(c, -1)
    out = torch.empty_like(flat)
    for i in range(c):
        v = flat[i]
        m = v.sum() / v.numel()
        var = ((v - m) ** 2).sum() / v.numel()
        out[i] = gamma[i] * (v - m) / (var + eps).sqrt() + beta[i]
    return out.reshape(c, n, h, w).permute(1, 0, 2, 3)
''',
        ],
        "ex2-answer": [
            # One group at a time, joined with torch.cat.
            '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    c = x.shape[1]
    if groups <= 0 or c % groups:
        raise ValueError("groups must divide the number of channels")
    size = c // groups
    parts = []
    for k in range(groups):
        part = x[:, k * size:(k + 1) * size]
        m = part.mean(dim=(1, 2, 3), keepdim=True)
        v = part.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        parts.append((part - m) / torch.sqrt(v + eps))
    return torch.cat(parts, dim=1) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
''',
            # Statistics in float64 on an (N, G, -1) view.
            '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    n, c, h, w = x.shape
    if c % groups != 0:
        raise ValueError(f"{groups} groups do not divide {c} channels")
    flat = x.double().reshape(n, groups, -1)
    var, mean = torch.var_mean(flat, dim=-1, correction=0, keepdim=True)
    x_hat = ((flat - mean) / torch.sqrt(var + eps)).reshape(n, c, h, w).to(x.dtype)
    return x_hat * gamma[:, None, None] + beta[:, None, None]
''',
        ],
        "ex3-answer": [
            # The closed form: initial * keep**k + sum_i (1 - keep) * keep**(k-1-i) * mean_i.
            '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention == "torch":
        keep = 1.0 - momentum
    elif convention == "keras":
        keep = momentum
    else:
        raise ValueError(f"unknown convention {convention!r}")
    k = len(batch_means)
    total = keep ** k * np.asarray(initial, dtype=float)
    for i, m in enumerate(batch_means):
        total = total + (1 - keep) * keep ** (k - 1 - i) * np.asarray(m, dtype=float)
    return total
''',
            # A float64 torch tensor updated in place; a float for scalars.
            '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention not in {"torch", "keras"}:
        raise ValueError(convention)
    new = momentum if convention == "torch" else 1 - momentum
    run = torch.as_tensor(initial, dtype=torch.float64).clone()
    for b in batch_means:
        run.mul_(1 - new).add_(torch.as_tensor(b, dtype=torch.float64), alpha=new)
    return run.numpy() if run.ndim else float(run)
''',
        ],
        "ex4-answer": [
            # Saves and restores the mode of every submodule; inference_mode instead of no_grad.
            '''def predict_eval(model, x_a, x_b):
    modes = {m: m.training for m in model.modules()}
    model.eval()
    with torch.inference_mode():
        out = model(x_a, x_b).cpu().numpy().copy()
    for m, mode in modes.items():
        m.training = mode
    return out
''',
            # Predicts with a copy of the model: the original is never touched.
            '''def predict_eval(model, x_a, x_b):
    import copy

    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        return frozen(x_a, x_b).numpy()
''',
        ],
    },
    "keras": {
        "ex1-answer": [
            # numpy in float64.
            '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (np.asarray(gamma) * (x - mean) / np.sqrt(var + eps) + np.asarray(beta)).astype("float32")
''',
            '''def batch_norm_train(x, gamma, beta, eps=1e-5):
    mean, var = ops.moments(ops.convert_to_tensor(x), axes=(0, 1, 2))
    return gamma * (x - mean) * ops.rsqrt(var + eps) + beta
''',
        ],
        "ex2-answer": [
            # numpy, one group at a time.
            '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[-1]
    if c % groups:
        raise ValueError("groups must divide the number of channels")
    size = c // groups
    out = np.empty_like(x)
    for k in range(groups):
        part = x[..., k * size:(k + 1) * size]
        m = part.mean(axis=(1, 2, 3), keepdims=True)
        v = part.var(axis=(1, 2, 3), keepdims=True)
        out[..., k * size:(k + 1) * size] = (part - m) / np.sqrt(v + eps)
    return out * gamma + beta
''',
            '''def group_norm(x, groups, gamma, beta, eps=1e-5):
    n, h, w, c = x.shape
    if c % groups != 0:
        raise ValueError(f"{groups} groups do not divide {c} channels")
    grouped = ops.reshape(ops.convert_to_tensor(x), (n, h, w, groups, c // groups))
    mean, var = ops.moments(grouped, axes=(1, 2, 4), keepdims=True)
    x_hat = ops.reshape((grouped - mean) * ops.rsqrt(var + eps), (n, h, w, c))
    return x_hat * gamma + beta
''',
        ],
        "ex3-answer": [
            '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention == "keras":
        keep = momentum
    elif convention == "torch":
        keep = 1.0 - momentum
    else:
        raise ValueError(f"unknown convention {convention!r}")
    k = len(batch_means)
    total = keep ** k * np.asarray(initial, dtype=float)
    for i, m in enumerate(batch_means):
        total = total + (1 - keep) * keep ** (k - 1 - i) * np.asarray(m, dtype=float)
    return total
''',
            # Updates a float64 array in place.
            '''def running_mean_after(batch_means, momentum, convention, initial=0.0):
    if convention not in ("keras", "torch"):
        raise ValueError("convention must be 'keras' or 'torch'")
    old = momentum if convention == "keras" else 1 - momentum
    run = np.array(initial, dtype=np.float64, copy=True)
    for b in batch_means:
        run *= old
        run += (1 - old) * np.asarray(b, dtype=np.float64)
    return run
''',
        ],
        "ex4-answer": [
            '''def predict_eval(model, x_a, x_b):
    return np.asarray(model.predict([x_a, x_b], batch_size=len(x_a), verbose=0))
''',
            # A plain call runs in inference mode.
            '''def predict_eval(model, x_a, x_b):
    return ops.convert_to_numpy(model([ops.convert_to_tensor(x_a), ops.convert_to_tensor(x_b)]))
''',
        ],
    },
}
