"""`obsconf doctor`: one line per component — found or missing, version, how to get it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from obsconf.stack import binaries


@dataclass(frozen=True)
class Check:
    component: str
    binary: str
    version_args: tuple[str, ...]
    how: str
    required: bool = True


def _checks() -> list[Check]:
    go = {b.binary: b for b in binaries.go_builds()}
    apt = binaries.apt_packages()
    collector = binaries.collector_build()

    def built(binary: str) -> str:
        b = go[binary]
        return f"obsconf install --only {b.name}  (go build {b.package}@{b.version})"

    return [
        Check(
            "PostgreSQL server", "postgres", ("--version",), f"apt-get install {apt['postgres']}"
        ),
        Check("PostgreSQL initdb", "initdb", ("--version",), f"apt-get install {apt['postgres']}"),
        Check(
            "NATS JetStream", "nats-server", ("--version",), f"apt-get install {apt['nats-server']}"
        ),
        Check("Prometheus", "prometheus", ("--version",), f"apt-get install {apt['prometheus']}"),
        Check(
            "log path (OpenTelemetry Collector)",
            "otelcol-obsconf",
            ("--version",),
            f"obsconf install --only otelcol  (collector builder, {collector.builder})",
        ),
        Check("log store (VictoriaLogs)", "victoria-logs", ("-version",), built("victoria-logs")),
        Check("trace store (Jaeger v2)", "jaeger", ("version",), built("jaeger")),
        Check("MongoDB wire (FerretDB)", "ferretdb", ("--version",), built("ferretdb")),
        Check(
            "Chromium (report test)",
            "chromium",
            ("--version",),
            f"apt-get install {apt['chromium']}",
            required=False,
        ),
        Check("Go toolchain (for install)", "go", ("version",), "install Go", required=False),
        Check(
            "Docker engine client",
            "docker",
            ("--version",),
            "obsconf install --containers",
            required=False,
        ),
        Check(
            "Docker engine (containers)",
            "dockerd",
            ("--version",),
            "obsconf install --containers",
            required=False,
        ),
        Check(
            "debootstrap (local images)",
            "debootstrap",
            ("--version",),
            "obsconf install --containers",
            required=False,
        ),
    ]


def _version(path: str, args: tuple[str, ...]) -> str:
    try:
        proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(version unknown: {error})"
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return lines[0][:90] if lines else "(no version output)"


def doctor() -> int:
    """Print the report; 0 when every required component is found, else 1."""
    missing_required = 0
    pinned = {
        b.binary: f"{b.version} (built from {b.module})"
        for b in binaries.go_builds()
        if binaries.find(b.binary) == b.path
    }
    for check in _checks():
        path = binaries.find(check.binary)
        if path is None:
            status = "MISSING " if check.required else "absent  "
            missing_required += check.required
            print(f"{status} {check.component:<28} get it: {check.how}")
        else:
            version = pinned.get(check.binary) or _version(str(path), check.version_args)
            print(f"ok       {check.component:<28} {version}  [{path}]")
    from obsconf.stack.native import status as native_status

    for name, line in native_status():
        print(f"{'ok' if line.startswith('built') else 'absent':<8} {'native ' + name:<28} {line}")
    from obsconf.stack.docker_engine import engine_answers

    if engine_answers():
        print("ok       Docker engine answers        --stack containers|auto can run")
    else:
        print(
            "absent   Docker engine not answering  --stack containers needs one: "
            "`python -m obsconf.stack.dockerd start` (or systemctl/Docker Desktop); local "
            "works without"
        )
    if missing_required:
        print(f"\n{missing_required} required component(s) missing: run `obsconf install`.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(doctor())
