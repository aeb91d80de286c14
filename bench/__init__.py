"""Beacon's benchmark harness: ``python -m bench.run`` (see ``docs/benchmarks.md``).

Layout — the folder tree is the architecture:

* ``stats``      — percentiles, loss accounting, expected-id sets (pure);
* ``procstat``   — server CPU and RSS from ``/proc``, file-descriptor limits;
* ``loadgen``    — a load-generator process: many WebSocket clients, records arrivals;
* ``clients``    — the harness's handle on several load-generator processes;
* ``rawserver``  — a raw ``websockets`` broadcast server (the practical limit);
* ``baseline/``  — the guide's plain Channels consumer (the thing Beacon improves on);
* ``settings``, ``apps``, ``views``, ``urls`` — Beacon under bench-only Django settings;
* ``configs``    — the configurations compared, and how each server is started;
* ``database``   — the benchmark database: users and sessions;
* ``scenario``   — the measurements, run against one configuration;
* ``report``, ``plot`` — the table in ``docs/benchmarks.md`` and the PNG plot;
* ``run``        — the command line.
"""
