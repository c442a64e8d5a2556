"""The experiment orchestration behind `tools/`.

The benchmarks (a teaching round's time and memory, ours against the
PyTorch peer, Table 5's time column), the tables (multi-seed runs, Table 1
with every method, tuned by one protocol), the seeds, the diagnostics and
the cross-data-set benchmark (`generalization`), as modules: importable, so
that tests and users import them (`from l2t_tf.experiments import
generalization`). `tools/<name>.py` are thin command-line entry points:
`python tools/<name>.py --help` is `python -m l2t_tf.experiments.<name>
--help`.

Importing this package imports nothing but l2t_tf itself; each module
imports what it needs. `benchmark_torch_peer` imports nothing of l2t_tf: run
by its path (as `tools/benchmark_torch_peer.py` runs it), its process never
loads TensorFlow.
"""
