"""``telemed bench``: measurements against the baselines users would otherwise choose.

One module per benchmark: ``broker_efficiency`` (1), ``latency_bound`` (2), ``zoom_limits``
(3 and 4, from the Zoom adapter, adapted by ``zoom_items``), ``booking_latency`` (5, with
the ``sync_baseline`` app), ``recovery`` (6, with ``default_broker``) and ``memory`` (7);
``noop_actor`` is raw Dramatiq for item 1's baseline. The parts they share: ``services``
(Redis and databases), ``stack`` (a namespace, database, simulator and real ``telemed``
processes), ``bookings``, ``procs`` (processes, CPU, memory), ``loadgen`` (HTTP load in a
process of its own), ``timeline``, ``profiling`` (py-spy), and ``runner``, which runs the
chosen ones and writes ``docs/benchmarks/README.md`` with PNG plots (``report``, ``plots``).

Every figure is measured next to its baseline in the same run, and every target is a
ratio, so the table holds on a noisy machine. Load goes only to 127.0.0.1.
"""
