"""Start commands: the harness starts any implementation by command, in its own process group,
logs it to the contract's log path, registers it for scraping, waits for /health, stops it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from obsconf.conformance.clients.prometheus import PrometheusClient
from obsconf.conformance.contract import CONTRACT_ENV, PLACEHOLDERS, StartCommand, run_values
from obsconf.conformance.system import start_services
from obsconf.conformance.target import parse_target
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.process import pid_alive
from obsconf.stack.services import ServiceFailed, ServiceProcesses
from obsconf.stack.waiting import poll

# A service as small as can be: /health, /metrics, /env (its environment), a line on stdout
# and one on stderr at start, and a grandchild (`sleep`) that must die with it.
PROBE = """\
import json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

child = subprocess.Popen(["sleep", "600"])
print(json.dumps({"msg": "probe starting", "child": child.pid}), flush=True)
print("a line on stderr", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/env":
            body = json.dumps(dict(os.environ)).encode()
        elif self.path == "/metrics":
            body = b"probe_requests_total 1\\n"
        else:
            body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer((os.environ["OBSCONF_HOST"], int(os.environ["PROBE_PORT"])), Handler).serve_forever()
"""
NAMES = {"user": "probe-user", "order": "probe-order", "inventory": "probe-inventory"}


def _endpoints(tmp_path: Path) -> Endpoints:
    """Endpoints of a stack that is not there: enough to start, log and register services."""
    for name in ("logs", "scrape"):
        (tmp_path / name).mkdir(exist_ok=True)
    return Endpoints(
        prometheus="http://127.0.0.1:9",
        logs="http://127.0.0.1:9",
        traces="http://127.0.0.1:9",
        otlp="http://127.0.0.1:4318",
        postgres="postgresql+psycopg://obsconf@127.0.0.1:5432/obsconf",
        mongodb="mongodb://127.0.0.1:27017",
        nats="nats://127.0.0.1:4222",
        log_dir=str(tmp_path / "logs"),
        scrape_dir=str(tmp_path / "scrape"),
    )


def _probe_target(tmp_path: Path, **labels: str):
    (tmp_path / "impl").mkdir(exist_ok=True)
    (tmp_path / "impl" / "probe.py").write_text(PROBE)
    file = tmp_path / "probe.yaml"
    data = {
        "name": "probe",
        "services": {
            "start": {
                "command": ["{python}", "probe.py", "{role}"],
                "cwd": "impl",
                "env": {"PROBE_PORT": "{port}", "PROBE_DB": "{postgres_url} for {service}"},
            },
            **{role: {"name": name} for role, name in NAMES.items()},
        },
        "labels": labels,
        "backends": {"start": "local"},
    }
    return parse_target(data, str(file), file)


def _stop(closers: list) -> None:
    while closers:
        closers.pop()()


def _children(log: Path) -> list[int]:
    return [json.loads(line)["child"] for line in log.read_text().splitlines() if '"child"' in line]


def test_contract_environment_and_placeholders() -> None:
    """Every contract variable is rendered from a known placeholder (or is a constant)."""
    for name, template in CONTRACT_ENV.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
        assert set(re.findall(r"\{(\w+)\}", template)) <= set(PLACEHOLDERS), name
    assert set(run_values()) <= set(PLACEHOLDERS)


def test_services_started_by_command_get_the_contract(tmp_path: Path) -> None:
    endpoints = _endpoints(tmp_path)
    target = _probe_target(tmp_path)
    closers: list = []
    try:
        urls = start_services(target, endpoints, [], closers)
        services: ServiceProcesses = closers[0].__self__
        for role, name in NAMES.items():
            env = httpx.get(urls[role] + "/env").json()
            port = services.ports[name]
            assert urls[role] == f"http://127.0.0.1:{port}"
            assert env["OBSCONF_SERVICE"] == name and env["OBSCONF_ROLE"] == role
            assert env["OBSCONF_PORT"] == env["PROBE_PORT"] == str(port)
            assert env["DATABASE_URL"] == "postgresql+psycopg://obsconf@127.0.0.1:5432/obsconf"
            assert env["POSTGRES_URL"] == "postgresql://obsconf@127.0.0.1:5432/obsconf"
            assert env["PROBE_DB"] == f"{env['POSTGRES_URL']} for {name}"
            assert env["OBSCONF_LOG_PATH"] == str(tmp_path / "logs" / f"{name}.log")
            assert set(CONTRACT_ENV) <= set(env)
            assert env["PATH"]  # the harness's own environment is inherited
            scrape = json.loads((tmp_path / "scrape" / f"{name}.json").read_text())
            assert scrape == [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"job": name, "service": name}}
            ]
            log = (tmp_path / "logs" / f"{name}.log").read_text()
            assert '"msg": "probe starting"' in log and "a line on stderr" in log
        processes = [p.proc.pid for p in services.processes.values()]
        children = [pid for name in NAMES.values() for pid in _children(services.log_path(name))]
        assert all(pid_alive(pid) for pid in processes + children)
    finally:
        _stop(closers)
    gone = poll(
        lambda: [pid for pid in processes + children if pid_alive(pid)],
        until=lambda alive: not alive,
        timeout=10,
        describe="every process of the started services to be gone",
    )
    assert not gone
    assert not list((tmp_path / "scrape").glob("*.json")), "scrape targets left registered"


def test_fault_modes_need_commands_that_take_them(tmp_path: Path) -> None:
    closers: list = []
    with pytest.raises(ValueError, match=r"need start commands that take them \(the \{faults\}"):
        start_services(_probe_target(tmp_path), _endpoints(tmp_path), ["drop-logs"], closers)
    assert not closers, "nothing may start"


def _one(tmp_path: Path, command: StartCommand) -> ServiceProcesses:
    return ServiceProcesses(_endpoints(tmp_path), {"probe": ("user", command)})


def test_a_service_that_exits_is_named_with_its_command_and_last_log_lines(
    tmp_path: Path,
) -> None:
    # {{ }}: literal braces in a template
    script = "import sys\nfor i in range(1, 41): print(f'line {{i}}')\nsys.exit(3)"
    services = _one(tmp_path, StartCommand(("{python}", "-c", script), origin="services.start"))
    started = time.monotonic()
    with pytest.raises(ServiceFailed) as caught:
        services.start()
    message = str(caught.value)
    assert time.monotonic() - started < 15, "a dead process is not waited for"
    assert "service 'probe' did not become healthy (services.start): exited with code 3" in message
    assert "command: " in message and "-c import sys" in message
    assert "line 11\nline 12" in message and "line 40" in message
    assert "line 10\n" not in message, "the last 30 lines only"
    assert not services.processes or all(
        p.exited() is not None for p in services.processes.values()
    )


def test_a_service_that_never_answers_fails_at_its_ready_timeout(tmp_path: Path) -> None:
    command = StartCommand(
        ("sh", "-c", "echo pid $$; exec sleep 600"), ready_timeout=1.0, origin="services.start"
    )
    services = _one(tmp_path, command)
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match=r"not healthy within 1 s") as caught:
        services.start()
    assert time.monotonic() - started < 10
    assert "command: sh -c echo pid $$; exec sleep 600" in str(caught.value)
    pid = int(services.log_path("probe").read_text().split()[-1])
    assert not pid_alive(pid), "a service that failed to start is stopped"


def test_a_command_that_cannot_run_is_named(tmp_path: Path) -> None:
    services = _one(tmp_path, StartCommand(("./no-such-program",), origin="services.start"))
    with pytest.raises(ServiceFailed, match=r"could not be started \(services.start\)"):
        services.start()


@pytest.mark.stack
def test_a_started_service_is_scraped_with_the_targets_service_label(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    """On the real stack: Prometheus scrapes the started services (job = service name), and
    the service label carries the target's label name."""
    target = _probe_target(tmp_path, service="svc")
    closers: list = []
    prometheus = PrometheusClient(endpoints.prometheus)
    try:
        start_services(target, endpoints, [], closers)
        for name in NAMES.values():
            query = f'probe_requests_total{{job="{name}", svc="{name}"}}'
            poll(
                lambda query=query: prometheus.value(query),
                until=lambda value: value == 1,
                timeout=20,
                describe=query,
            )
            assert prometheus.value(f'up{{job="{name}"}}') == 1
    finally:
        _stop(closers)
        prometheus.close()


def test_the_reference_start_command_takes_faults_and_the_consumer_relation(
    tmp_path: Path,
) -> None:
    target = parse_target(
        {
            "name": "ref",
            "services": {"start": "reference"},
            "capabilities": {"consumer_relation": "link", "span_flush_interval": 0.2},
            "backends": {"start": "local"},
        }
    )
    spec = target.service("order")
    services = ServiceProcesses(
        _endpoints(tmp_path),
        {spec.name: ("order", spec.start)},
        run_values("drop-logs,no-inject", target.consumer_relation, target.span_flush_interval),
    )
    services.ports[spec.name] = 1234
    env = services.environment(spec.name)
    assert services.argv(spec.name)[1:] == ["-m", "obsconf.reference_services.order"]
    assert env["OBSCONF_FAULTS"] == "drop-logs,no-inject"
    assert env["OBSCONF_CONSUMER_RELATION"] == "link"
    assert env["OBSCONF_PORT"] == "1234" and env["PYTHONUNBUFFERED"] == "1"
    assert services.template_values(spec.name)["span_flush_interval_ms"] == "200"
