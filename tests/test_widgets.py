"""The explorer widget wires its controls to the lesson's function and shows what it returns."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from coursekit.widgets import explorer  # noqa: E402


def test_explorer_runs_the_function_with_the_controls(capsys):
    calls = []

    def experiment(scale, optimizer):
        calls.append((scale, optimizer))
        return f"ran scale={scale} with {optimizer}"

    box = explorer(experiment, title="Scale mismatch", scale=[1, 100, 1000], optimizer=["adam", "sgd"])
    assert box.run() == "ran scale=1 with adam"
    box.interactive.children[0].value = 1000  # move the first control, as a student would
    assert box.run() == "ran scale=1000 with adam"
    assert calls == [(1, "adam"), (1000, "adam")]
    labels = [getattr(c, "description", "") for c in box.interactive.children]
    assert labels[:2] == ["scale", "optimizer"] and "Run" in labels


def test_explorer_draws_figures():
    import matplotlib.pyplot as plt

    box = explorer(lambda n: plt.figure(figsize=(1, 1)), n=[1, 2])
    assert box.run().__class__.__name__ == "Figure"


def test_explorer_needs_controls():
    with pytest.raises(ValueError, match="at least one control"):
        explorer(lambda: None)
