"""Start and stop a Docker engine by hand where no init system runs one (CI, these machines).

    python -m obsconf.stack.dockerd status  # exit 0 when an engine answers
    python -m obsconf.stack.dockerd start   # no-op when an engine already answers
    python -m obsconf.stack.dockerd stop    # only stops an engine this module started

`start` launches `dockerd --storage-driver=vfs` (the only driver that works inside this kind of
sandbox) in its own session, logs to the cache dir, and waits until it answers a ping. `stop`
ends it and removes what dockerd leaves behind on the host: the docker0 bridge, its iptables
chains and the FORWARD DROP policy it sets.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from obsconf.stack.binaries import cache_root
from obsconf.stack.docker_engine import engine_answers
from obsconf.stack.process import pid_alive
from obsconf.stack.waiting import PollTimeout, poll

START_TIMEOUT = 60.0


def _pid_file():
    return cache_root() / "dockerd.pid"


def start() -> int:
    if engine_answers():
        print("[dockerd] an engine already answers; nothing started")
        return 0
    binary = shutil.which("dockerd")
    if binary is None:
        print("[dockerd] dockerd is missing: `obsconf install --containers`", file=sys.stderr)
        return 1
    log = cache_root() / "dockerd.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [binary, "--storage-driver=vfs"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file().write_text(str(proc.pid))
    try:
        poll(
            engine_answers,
            timeout=START_TIMEOUT,
            describe="dockerd to answer a ping",
            interval=0.2,
            max_interval=1.0,
        )
    except PollTimeout as error:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        print(f"[dockerd] {error}\nlast log lines ({log}):\n{tail}", file=sys.stderr)
        stop()
        return 1
    print(f"[dockerd] started (pid {proc.pid}, storage driver vfs, log {log})")
    return 0


def stop() -> int:
    pid_file = _pid_file()
    if not pid_file.exists():
        print("[dockerd] not started by obsconf; left alone")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    else:
        try:
            poll(lambda: not pid_alive(pid), timeout=30, describe=f"dockerd {pid} to exit")
        except PollTimeout:
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    _remove_host_leftovers()
    print(f"[dockerd] stopped (pid {pid}); docker0 and its iptables rules removed")
    return 0


def _remove_host_leftovers() -> None:
    """Drop docker0 and dockerd's iptables rules; restore FORWARD's ACCEPT policy."""
    subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)
    for table in ("filter", "nat"):
        saved = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True)
        if saved.returncode != 0:
            continue
        kept = [
            line
            for line in saved.stdout.splitlines()
            if "DOCKER" not in line and "docker0" not in line
        ]
        subprocess.run(
            ["iptables-restore", "-T", table],
            input="\n".join(kept) + "\n",
            text=True,
            capture_output=True,
        )
    subprocess.run(["iptables", "-P", "FORWARD", "ACCEPT"], capture_output=True)


def status() -> int:
    answers = engine_answers()
    print(f"[dockerd] {'an engine answers' if answers else 'no engine answers'}")
    return 0 if answers else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {"start": start, "stop": stop, "status": status}
    if len(args) != 1 or args[0] not in commands:
        print("usage: python -m obsconf.stack.dockerd start|stop|status", file=sys.stderr)
        return 2
    return commands[args[0]]()


if __name__ == "__main__":
    raise SystemExit(main())
