"""Per-process CPU and wall record for ``benchmarks/run_benchmark.py --workflow`` (not used otherwise).

Python imports ``sitecustomize`` at start-up from ``sys.path``; the benchmark puts this directory on
``PYTHONPATH`` of a Snakemake run and sets ``LSFTBENCH_JOB_LOG``. Every Python process of the run
(Snakemake itself and each job script it starts) then appends one JSON line at exit: its rule (the
``snakemake`` object Snakemake injects into a ``script:`` job), CPU time (user + system, children
excluded), wall time since the process started (from ``/proc``, so interpreter start-up counts) and
the CPU time spent before the job's own code ran (interpreter start-up and the site imports), and its peak
resident memory.
Without ``LSFTBENCH_JOB_LOG`` this file does nothing.
"""

import os

if os.environ.get("LSFTBENCH_JOB_LOG"):
    import atexit
    import json
    import resource
    import sys
    import time

    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _age() -> float:
        """Seconds since this process started (``/proc/self/stat`` start time vs ``/proc/uptime``)."""
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")

    _STARTUP_CPU = _cpu()

    def _record() -> None:
        main = sys.modules.get("__main__")
        smk = getattr(main, "snakemake", None)
        rule = getattr(smk, "rule", None)
        entry = {
            "rule": str(rule) if rule else None,
            "wildcards": dict(getattr(smk, "wildcards", {}) or {}) if rule else None,
            "argv0": os.path.basename(sys.argv[0]) if sys.argv else "",
            "pid": os.getpid(),
            "cpu_s": _cpu(),
            "wall_s": _age(),
            "end": time.time(),  # with wall_s: when the process ran (the benchmark's timeline of the DAG)
            "startup_cpu_s": _STARTUP_CPU,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # peak resident memory (KiB)
            "modules": len(sys.modules),
            "heavy": sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "anndata", "matplotlib", "scipy", "torch", "pandas"}),
        }
        with open(os.environ["LSFTBENCH_JOB_LOG"], "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")

    atexit.register(_record)
