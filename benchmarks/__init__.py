"""``telemed bench``: measurements against the baselines users would otherwise choose.

One module per benchmark (``broker_efficiency``, ``latency_bound``, ``booking_latency``,
``recovery``, ``memory``; ``zoom_limits`` comes with the Zoom adapter), the parts they
share (``services``: Redis and databases; ``stack``: a namespace, database, simulator
and real ``telemed`` processes; ``procs``: processes, CPU and memory; ``loadgen``: the
HTTP load generator), and ``runner`` which runs the chosen ones side by side with their
baselines and writes ``docs/benchmarks/README.md`` with PNG plots (``report``, ``plots``).

Every figure is measured next to its baseline in the same run, and every target is a
ratio, so the table holds on a noisy machine. Load goes only to 127.0.0.1.
"""
