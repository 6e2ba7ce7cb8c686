"""Stage 5, report: what a reader sees.

``aggregate`` (a dataset's fits and shards read back, ranks over the common test set),
``tables`` (the LSFT note's tables, Markdown), ``plots`` (figures), ``run_index`` (the run's table
of contents), ``audit`` (the leakage audit), ``leaderboard`` (every method on one table).
"""
