"""7. Memory: peak RSS of every worker process and of the web process during run 1.

Sampled every 100 ms with psutil while run 1 (broker efficiency) ingests and processes
its bookings; ``worker`` is the Dramatiq supervisor that ``telemed worker`` starts and
``worker child`` each process that runs actors.
"""

from __future__ import annotations

from telemed.benchmarks import plots
from telemed.benchmarks.context import Context
from telemed.benchmarks.procs import MB
from telemed.benchmarks.report import Row, Section, below

ITEM, KEY, TITLE = 7, "memory", "Memory"
LIMIT_MB = 150

NAMES = {"web": "telemed web", "worker": "telemed worker (supervisor)", "worker child": "worker process"}


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    peaks = ctx.shared.get("run1_memory")
    if not peaks:
        section.error = "run 1 (broker efficiency) did not run or failed, so there is nothing to report"
        return section
    target = below(LIMIT_MB, on="value", unit=" MB")
    labels, values = [], []
    seen: dict[str, int] = {}
    for label, pid, peak in peaks:
        name = f"{NAMES.get(label, label)} (pid {pid})"
        section.rows.append(Row(ITEM, f"peak RSS: {name}", f"{peak / MB:.0f} MB", value=peak / MB, target=target))
        short = NAMES.get(label, label).replace("telemed ", "").replace(" (supervisor)", "\nsupervisor")
        seen[short] = seen.get(short, 0) + 1
        labels.append(f"{short} {seen[short]}" if label == "worker child" else short)
        values.append(peak / MB)
    section.data = {"peaks_mb": [{"process": label, "pid": pid, "peak_mb": peak / MB} for label, pid, peak in peaks]}
    plot = plots.bars(ctx.out / "memory.png", "Peak RSS during run 1", labels, values, "MB",
                      line=LIMIT_MB, line_label=f"target: < {LIMIT_MB} MB",
                      annotations=[f"{v:.0f} MB" for v in values])
    if plot:
        section.plots.append(plot)
    return section
