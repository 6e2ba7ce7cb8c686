"""A throw-away one-node Slurm cluster for tests (helper module, not collected by pytest).

``start_cluster(tmp_dir)`` writes a ``slurm.conf`` into ``tmp_dir``, starts ``munged`` (unless one
is already answering), ``slurmctld`` and ``slurmd`` as root, waits until the node is idle and
returns a :class:`SlurmCluster`; ``SlurmCluster.stop()`` cancels its jobs and ends the daemons it
started (by pid, with bounded waits). ``ensure_slurm()`` installs the Debian packages when they
are missing and we are root with apt-get; it returns ``None`` when Slurm is usable, else the
reason it is not.

Deliberate choices (Debian 12, Slurm 22.05, also inside containers without systemd/cgroups):

* ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``, ``JobAcctGatherType=none``:
  no cgroups needed; no accounting (no slurmdbd), so job status comes from ``squeue`` and
  ``MinJobAge`` keeps finished jobs visible to it for 2 hours (a run on a loaded machine outlasted 10 minutes).
* ``SlurmdParameters=config_overrides``: the node takes the configured CPUs/RealMemory instead
  of draining itself when the machine differs (memory is not enforced without cgroups).
* The ports are free ports picked at start-up, so the cluster does not clash with a real one.
* ``bin/srun`` wrapper: snakemake-executor-plugin-slurm-jobstep strips every ``SLURM_*`` variable,
  ``SLURM_CONF`` included, before its nested ``srun``; with the config in a temporary directory
  (not /etc/slurm/slurm.conf) that ``srun`` would find no configuration, so the wrapper, first on
  PATH, sets it again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "munge", "slurm-client"]
COMMANDS = ["slurmctld", "slurmd", "munged", "munge", "unmunge", "sbatch", "squeue", "sinfo", "srun", "scancel", "scontrol"]
PARTITION = "debug"
MUNGE_SOCKET_DIR = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started on this machine."""


def _which(cmd: str) -> str | None:
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def missing_commands() -> list[str]:
    return [c for c in COMMANDS if _which(c) is None]


def ensure_slurm(timeout: float = 900) -> str | None:
    """Install the Slurm/munge Debian packages if needed; ``None`` if usable, else why not."""
    missing = missing_commands()
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"Slurm commands {missing} are missing and we are not root, so cannot apt-get install {PACKAGES}"
    apt = shutil.which("apt-get")
    if apt is None:
        return f"Slurm commands {missing} are missing and there is no apt-get to install {PACKAGES}"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update", "-q"], [apt, "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out after {timeout:.0f} s"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}"
    missing = missing_commands()
    if missing:
        return f"installed {PACKAGES} but {missing} are still not on PATH"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 8192


def _munge_works(env: dict[str, str]) -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], env=env, capture_output=True, timeout=10)
        if cred.returncode != 0:
            return False
        check = subprocess.run(["unmunge"], input=cred.stdout, env=env, capture_output=True, timeout=10)
        return check.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group we created for ``proc``, SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    env: dict[str, str]
    node: str
    partition: str = PARTITION
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_handles: list = field(default_factory=list)

    def run(self, *cmd: str, timeout: float = 30, check: bool = True) -> str:
        proc = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge): id -> scontrol fields."""
        out = self.run("scontrol", "show", "job", "--oneliner", check=False)
        jobs = {}
        for line in out.splitlines():
            fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    def logs(self) -> str:
        return "\n".join(
            f"==> {p.name} <==\n{p.read_text(errors='replace')[-4000:]}" for p in sorted([*self.root.glob("*.log"), *self.root.glob("*.out")])
        )

    def stop(self) -> None:
        """Cancel the cluster's jobs, then end the daemons we started (bounded waits)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--user", str(os.geteuid()), timeout=15, check=False)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    active = self.run("squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING", timeout=15, check=False)
                    if not active.strip():
                        break
                    time.sleep(1)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            if name in self.procs:
                _stop_process(self.procs[name])
        for handle in self.log_handles:
            handle.close()


def write_conf(root: Path, cpus: int, memory_mb: int) -> tuple[Path, str]:
    node = socket.gethostname().split(".")[0]
    (root / "state").mkdir(parents=True, exist_ok=True)
    (root / "spool").mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(
        f"""# One-node test cluster written by tests/slurm_cluster.py
ClusterName=lsftbench-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=7200
KillWait=5
InactiveLimit=0
SlurmdParameters=config_overrides
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf, node


def start_cluster(root: Path, cpus: int = 2, min_memory_mb: int = 8192, timeout: float = 60) -> SlurmCluster:
    """Start munged (if needed), slurmctld and slurmd; return once the node is idle.

    RealMemory is the machine's memory, but at least ``min_memory_mb`` so that the pipeline's
    4000 MB jobs fit on a small CI machine (not enforced: no cgroups).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    conf, node = write_conf(root, cpus, max(_machine_memory_mb(), min_memory_mb))
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{_which("srun")}" "$@"\n')
    srun.chmod(0o755)
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=f"{bin_dir}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    for var in [v for v in env if v.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_")) and v != "SLURM_CONF"]:
        env.pop(var)
    cluster = SlurmCluster(root=root, conf=conf, env=env, node=node)

    def spawn(name: str, cmd: list[str], **kw) -> None:
        log = open(root / f"{name}.out", "w")  # noqa: SIM115 - closed in stop()
        cluster.log_handles.append(log)
        cluster.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True, **kw
        )

    try:
        if not _munge_works(env):
            if not MUNGE_KEY.exists():
                raise SlurmUnavailable(f"{MUNGE_KEY} is missing (the munge package creates it)")
            MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
            shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
            MUNGE_SOCKET_DIR.chmod(0o755)
            spawn("munged", [_which("munged"), "--foreground"], user="munge", group="munge", extra_groups=[])
            _wait(lambda: _munge_works(env), 20, "munged to answer", cluster)
        spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(conf)])
        _wait(lambda: subprocess.run(["sinfo", "-h"], env=env, capture_output=True).returncode == 0, timeout, "slurmctld", cluster)
        spawn("slurmd", [_which("slurmd"), "-D", "-f", str(conf)])
        _wait(lambda: _node_state(env) == "idle", timeout, f"node {node} to be idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_state(env: dict[str, str]) -> str:
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True, timeout=15)
    return proc.stdout.strip()


def _wait(predicate, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise SlurmUnavailable(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{cluster.logs()}")
        if predicate():
            return
        time.sleep(0.5)
    raise SlurmUnavailable(f"timed out after {timeout:.0f} s waiting for {what}:\n{cluster.logs()}")
