"""`kpkt sweep`: many runs of expanded topologies, one summary table (docs/sweep.md).

sweepfile loads and expands the sweep file (YAML paths: paths), task is one run in a worker,
executors run the tasks (local processes or Dask), resume tells finished runs from the rest,
summary reads a run's columns from its manifest, table writes CSV and JSON Lines, plot writes
SVG, progress shows it all on a terminal, and run ties them together.
"""
