"""The metric of a sweep's trials against each value it varied: one panel per varied path."""

from __future__ import annotations

from pathlib import Path

from .common import figure, require_matplotlib, save_figure


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_sweep(spec, trials, results: dict[int, dict], path: str | Path) -> None:
    """One scatter panel per key of ``sweep.space``: x the trial's value (log scale for
    positive numbers spanning 100× or more; categories for other values), y the metric; the
    best trial ringed, trials without a metric counted in the panel's title."""
    from ..engines.trials import value_text

    require_matplotlib()
    keys = list(spec.sweep.space)
    metric = spec.sweep.metric
    ok = [t for t in trials if results.get(t.number, {}).get("metric") is not None]
    lost = sum(1 for t in trials if t.number in results) - len(ok)
    best = None
    if ok:
        from ..engines.sweep import best_trial

        best = best_trial(spec, results)
    fig = figure(4.2 * len(keys), 3.6)
    fig.set_layout_engine("constrained")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        xs = [t.values[key] for t in ok]
        ys = [results[t.number]["metric"] for t in ok]
        if _numeric(xs):
            ax.scatter(xs, ys, color="#1f77b4", zorder=2)
            positive = [x for x in xs if x > 0]
            if len(positive) == len(xs) and xs and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
        else:
            names = list(dict.fromkeys(value_text(x) for x in xs))
            ax.scatter([names.index(value_text(x)) for x in xs], ys, color="#1f77b4", zorder=2)
            ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        if best is not None:
            chosen = results[best]["values"][key]
            bx = chosen if _numeric(xs) else names.index(value_text(chosen))
            ax.scatter(
                [bx],
                [results[best]["metric"]],
                s=160,
                facecolors="none",
                edgecolors="#d62728",
                linewidths=1.5,
                zorder=3,
                label=f"best (trial {best})",
            )
            ax.legend(fontsize=8)
        if ys and min(ys) > 0 and max(ys) / min(ys) >= 100:  # a diverging trial's loss
            ax.set_yscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        title = f"{spec.name}: {metric} vs {key}"
        ax.set_title(title + (f" ({lost} without a metric)" if lost else ""), fontsize=9)
    save_figure(fig, path)
