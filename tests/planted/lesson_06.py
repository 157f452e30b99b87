"""Planted wrong answers for lesson 06 (see tests/planted/__init__.py)."""

LESSON = "06-learning-rate"

# Exercises 1 to 4 read the same in both notebooks.
# The exponential sweep taken to crowd its steps at the top like the linear one: 1 below 1e-3, not 29.
_EX1_LINEAR_SWEEP = '''sweep_predictions = {"exponential, below 1e-3": 1, "linear, below 1e-3": 1,
                     "exponential, in [0.01, 0.1)": 14, "linear, at least 1": 99}
'''
# The suggestion taken for a property of the LR range alone: the number of steps "changes nothing".
_EX2_RANGE_ONLY = '''knob_predictions = {"200 steps": "same", "25 steps": "same", "end_lr 1000": "same",
                    "smooth 0.3": "lower", "diverge_factor 2": "same"}
'''
# The smooth curve that never turns up taken for the healthy one, and the healthy one for a short range.
_EX3_SMOOTH_IS_HEALTHY = '''fault_diagnosis = {"A": "healthy", "B": "already trained", "C": "ends too low", "D": "starts too high"}
'''
# The warmup taken for a shift of nothing: warmup + cosine's cosine starts 20 steps later, so it is
# still above half at the middle of the run.
_EX4_HALF_WRONG = '''schedule_answers = {"zero at the start": "warmup_cosine", "peaks last": "one_cycle",
                    "lowest at step 80": "step", "half at step 100": "warmup_cosine",
                    "highest at step 150": "one_cycle"}
'''

WRONG = {
    "pytorch": {
        "ex1-answer": _EX1_LINEAR_SWEEP,
        "ex2-answer": _EX2_RANGE_ONLY,
        "ex3-answer": _EX3_SMOOTH_IS_HEALTHY,
        "ex4-answer": _EX4_HALF_WRONG,
    },
    "keras": {
        "ex1-answer": _EX1_LINEAR_SWEEP,
        "ex2-answer": _EX2_RANGE_ONLY,
        "ex3-answer": _EX3_SMOOTH_IS_HEALTHY,
        "ex4-answer": _EX4_HALF_WRONG,
    },
}
