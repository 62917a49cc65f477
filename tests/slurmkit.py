"""A one-node SLURM cluster for tests, from Debian's slurm-wlm and munge: munged, slurmctld and
slurmd run as child processes of the test (foreground, config, state, sockets and logs in a tmp
folder, free ports), and are stopped at the end. Needs root (slurmd starts jobs as their user)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo", "squeue")


def skip_unless_available() -> None:
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM binaries absent ({', '.join(missing)}): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the one-node SLURM cluster needs root (slurmd runs jobs as their user)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """ClusterName=ignite-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
# cred_expire: a killed job's credential stays revoked this long, and a requeued job waits for it
# (120 s by default); launched sooner, it fails at once.
AuthInfo=socket={dir}/munge.sock,cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
PlugStackConfig={dir}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# CPUs beyond the machine's: 4 array tasks run at once even on a 2-core runner.
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MinJobAge=3600
NodeName={host} CPUs=8 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.conf = folder / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._procs: list[subprocess.Popen] = []

    def start(self) -> None:
        d = self.dir
        for sub in ("state", "spool"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "plugstack.conf").touch()
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._spawn("munged", ["munged", "-F", "-f", f"--socket={d}/munge.sock", f"--key-file={key}",
                               f"--log-file={d}/munged.log", f"--pid-file={d}/munged.pid",
                               f"--seed-file={d}/munged.seed"])
        self._wait(lambda: (d / "munge.sock").exists(), "munged did not create its socket")
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(CONF.format(host=host, dir=d, ctld_port=_free_port(), d_port=_free_port()))
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", host])
        self._wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False), "the node did not become idle")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.dir / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        self._procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env))

    def _wait(self, ready, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                pytest.fail(f"{what}; see the logs in {self.dir}: {self.logs()}")
            time.sleep(0.2)

    def run(self, *cmd: str, check: bool = True) -> str:
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {r.stderr}")
        return r.stdout

    def state(self, job: str) -> str:
        out = self.run("scontrol", "-o", "show", "job", job, check=False)
        return next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), "UNKNOWN")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted(self.dir.glob("*.log")) + sorted(self.dir.glob("*.out")))

    def stop(self) -> None:
        self.run("scancel", "--full", "--user", "root", check=False)
        # Jobs end before slurmd does, or their slurmstepd would outlive the cluster.
        deadline = time.monotonic() + 60
        while self.run("squeue", "-h", check=False).strip() and time.monotonic() < deadline:
            time.sleep(0.5)
        for proc in reversed(self._procs):  # slurmd, slurmctld, munged: each one this test started
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
