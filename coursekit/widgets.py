"""ipywidgets explorers the lessons share. Framework-neutral: the lesson passes a function that
runs its experiment and returns a figure, a text or a report, and the explorer wires controls
to it. Training takes seconds, so explorers run on a button, not on every slider move."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["explorer"]


def explorer(fn: Callable[..., Any], *, title: str = "", run_label: str = "Run", **controls: Any):
    """An interactive panel: `controls` (ipywidgets abbreviations or widgets, as for
    `ipywidgets.interact`) feed `fn(**values)`; pressing the button shows what `fn` returns
    (a matplotlib Figure is drawn, anything else is printed).

    Returns the ipywidgets container; its `.run()` method runs `fn` once with the current values
    (the notebook calls it so the panel is never empty, and tests call it to check the wiring).
    """
    import ipywidgets as w
    from IPython.display import display

    if not controls:
        raise ValueError("explorer needs at least one control, e.g. scale=[1, 10, 100, 1000].")
    show = _show(fn)
    ui = w.interactive(show, {"manual": True, "manual_name": run_label}, **controls)
    box = w.VBox([w.HTML(f"<b>{title}</b>"), ui] if title else [ui])

    def run() -> Any:
        # Draw into the cell's own output rather than through the Output widget: headless runners
        # (nbclient, hence nbgrader) intermittently wait out their whole cell timeout on Output-widget
        # traffic (jupyter/nbclient#312). In JupyterLab the panel's button re-renders inside it.
        values = {c._kwarg: c.value for c in ui.kwargs_widgets}
        ui.result = show(**values)
        return ui.result

    box.run = run  # type: ignore[attr-defined]
    box.interactive = ui  # type: ignore[attr-defined]
    display(box)
    return box


def _show(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(**values: Any) -> Any:
        result = fn(**values)
        try:
            from matplotlib.figure import Figure
        except ImportError:  # matplotlib is a dependency; stay usable without it anyway
            Figure = ()  # type: ignore[assignment]
        if isinstance(result, Figure):
            from IPython.display import display

            display(result)
            import matplotlib.pyplot as plt

            plt.close(result)
        elif result is not None:
            print(result)
        return result

    wrapped.__name__ = getattr(fn, "__name__", "explorer")
    return wrapped
