"""Honest answers for lesson 06 (see tests/honest/__init__.py)."""

LESSON = "06-learning-rate"

# Exercises 1 to 4 read the same in both notebooks (ex2's second answer uses the notebook's ck and lrlab).
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
_EX2 = [
    # other spellings of keys and words
    '''knob_predictions = {"200 Steps": "LOWER", "25 steps ": "Higher", "end_lr  1000": "higher",
                    "Smooth 0.3": " lower", "diverge_factor 2": "Same"}
''',
    # measured instead of predicted: the range test run six times, the ratios classified by hand
    '''def suggestion(**change):
    m, x, y = lrlab.tiny_regression(seed=0)
    settings = dict(start_lr=1e-4, end_lr=10.0, num_steps=100, smooth=0.05, diverge_factor=4.0)
    settings.update(change)
    return ck.lr_range_test(m, x, y, loss="mse", optimizer="sgd", batch_size=len(y), **settings).suggested_lr


base = suggestion()
changes = {"200 steps": dict(num_steps=200), "25 steps": dict(num_steps=25), "end_lr 1000": dict(end_lr=1000.0),
           "smooth 0.3": dict(smooth=0.3), "diverge_factor 2": dict(diverge_factor=2.0)}
knob_predictions = {}
for key, change in changes.items():
    ratio = suggestion(**change) / base
    knob_predictions[key] = "lower" if ratio < 0.8 else ("higher" if ratio > 1.25 else "same")
''',
]
_EX3 = [
    # other spellings of keys and words
    '''fault_diagnosis = {"a": "Ends too low", "b ": "ALREADY TRAINED", "C": "healthy ", "D": "starts  too high"}
''',
    # rules read off each curve's numbers instead of its picture
    '''fault_diagnosis = {}
for letter, r in fault_curves.items():
    if r.diverged_at is None:
        fault_diagnosis[letter] = "ends too low"
    elif r.losses[0] < 0.1:
        fault_diagnosis[letter] = "already trained"
    elif len(r.lrs) < 20:
        fault_diagnosis[letter] = "starts too high"
    else:
        fault_diagnosis[letter] = "healthy"
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
        "ex2-answer": _EX2,
        "ex3-answer": _EX3,
        "ex4-answer": _EX4,
    },
    "keras": {
        "ex1-answer": _EX1,
        "ex2-answer": _EX2,
        "ex3-answer": _EX3,
        "ex4-answer": _EX4,
    },
}
