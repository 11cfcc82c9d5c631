"""PNG plots with matplotlib (the ``bench`` extra). Without it, the report has tables only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(path: Path, title: str, labels: Sequence[str], values: Sequence[float], ylabel: str, *,
         line: float | None = None, line_label: str = "", colors: Sequence[str] | None = None,
         annotations: Sequence[str] | None = None) -> str | None:
    """A bar per figure, optionally with a horizontal target line; returns the file name."""
    if not available():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    palette = colors or ["#2b6cb0", "#a0aec0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c"]
    bars_ = ax.bar(list(labels), list(values), color=[palette[i % len(palette)] for i in range(len(values))])
    for bar, text in zip(bars_, annotations or [f"{v:,.3g}" for v in values], strict=False):
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")
    if line is not None:
        ax.axhline(line, color="#c53030", linestyle="--", linewidth=1, label=line_label or None)
        if line_label:
            ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelsize=8)
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def hbars(path: Path, title: str, labels: Sequence[str], values: Sequence[float], xlabel: str) -> str | None:
    """Horizontal bars, largest on top: for breakdowns with long labels."""
    if not available():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(values) + 1.2), dpi=110)
    order = list(range(len(values)))[::-1]
    ax.barh([labels[i] for i in order], [values[i] for i in order], color="#2b6cb0")
    for position, i in enumerate(order):
        ax.annotate(f"{values[i]:,.3g}", (values[i], position), va="center", fontsize=8, xytext=(3, 0),
                    textcoords="offset points")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def percentiles(path: Path, title: str, series: Mapping[str, Sequence[float]], *, unit: str = "ms",
                line: float | None = None, line_label: str = "") -> str | None:
    """Latency by percentile (log scale), one curve per arm."""
    if not available() or not any(series.values()):
        return None
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    qs = np.linspace(0, 100, 201)
    for label, values in series.items():
        if values:
            ax.plot(qs, np.percentile(np.asarray(values, dtype=float), qs), label=label)
    if line is not None:
        ax.axhline(line, color="#c53030", linestyle="--", linewidth=1, label=line_label or None)
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def timeline(path: Path, title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
             xlabel: str = "seconds", ylabel: str = "done") -> str | None:
    """Cumulative completions over time, one curve per arm."""
    if not available() or not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for label, (xs, ys) in series.items():
        ax.step(list(xs), list(ys), where="post", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name
