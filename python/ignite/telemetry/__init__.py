"""Where a run's time goes: counters the stages bump (live.py), a Prometheus exposition of them
(prometheus.py), and the run report with its bottleneck and pictures (report.py, plot.py)."""
