"""Target files: a malformed one is rejected with the path to the field, before anything runs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from obsconf.conformance.clients.registry import StoreSpec
from obsconf.conformance.target import TargetError, load_target, parse_target
from obsconf.stack.ports import free_port
from obsconf.stack.services import PREDEFINED

REPO = Path(__file__).resolve().parent.parent


def test_reference_target_loads() -> None:
    target = load_target(REPO / "targets" / "reference.yaml")
    assert target.starts_services and target.backends.start == "local"
    assert all(spec.start == PREDEFINED["reference"] for spec in target.services.values())
    assert target.service("order").name == "order-service"
    assert target.metrics["requests"] == "http_requests_total"


def test_a_target_can_start_a_container_stack_with_its_own_images() -> None:
    target = parse_target(
        {
            "name": "x",
            "services": {"start": "reference"},
            "backends": {"start": "containers", "images": {"postgres": "postgres:17"}},
        }
    )
    assert target.backends.start == "containers"
    assert target.backends.images == {"postgres": "postgres:17"}


def test_settle_interval_follows_the_declared_flush_interval() -> None:
    reference = load_target(REPO / "targets" / "reference.yaml")
    link = load_target(REPO / "targets" / "reference-link.yaml")
    assert link.consumer_relation == "link" and reference.consumer_relation == "parent"
    assert reference.span_flush_interval == 0.2 and reference.settle_s == pytest.approx(1.0)
    unknown = parse_target(
        {"name": "x", "services": {"start": "reference"}, "backends": {"start": "local"}}
    )
    assert unknown.span_flush_interval == 5.0  # the OpenTelemetry SDK's default


@pytest.mark.parametrize(
    ("data", "path_in_error"),
    [
        ({"services": {"start": "reference"}, "backends": {"start": "local"}}, "name"),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "capabilities": {"span_flush_interval": "soon"},
            },
            "capabilities.span_flush_interval",
        ),
        ({"name": "x", "servics": {}}, "target.servics"),
        (
            {"name": "x", "description": 3, "services": {"start": "reference"}},
            "description",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "faults": "",  # not a list, though empty
            },
            "faults",
        ),
        ({"name": "x", "services": {"user": {"url": "ftp://x"}}}, "services.user.url"),
        ({"name": "x", "services": {"user": {"url": "http://u"}}}, "services.order.url"),
        ({"name": "x", "services": {"start": "reference"}}, "backends.prometheus"),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "capabilities": {"consumer_relation": "sibling"},
            },
            "capabilities.consumer_relation",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "capabilities": {"error_hook": {"method": "GET"}},
            },
            "capabilities.error_hook.path",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "capabilities": {"logs": "syslog"},
            },
            "capabilities.logs",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local"},
                "metrics": {"requests": 3},
            },
            "metrics.requests",
        ),
        (
            {"name": "x", "services": {"start": "reference"}, "backends": {"start": "docker"}},
            "backends.start",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "containers", "images": {"loki": "grafana/loki:3"}},
            },
            "backends.images.loki",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local", "logs": {"kind": "splunk", "url": "http://l"}},
            },
            "backends.logs.kind",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local", "traces": {"kind": "jaeger", "tenant": "a"}},
            },
            "backends.traces.tenant",
        ),
        (
            {
                "name": "x",
                "services": {"start": "reference"},
                "backends": {"start": "local", "traces": {"kind": "tempo", "api": "v3"}},
            },
            "backends.traces.api",
        ),
        (
            {
                "name": "x",
                "services": {
                    "user": {"url": "http://u"},
                    "order": {"url": "http://o"},
                    "inventory": {"url": "http://i"},
                },
                "backends": {
                    "prometheus": "http://p",
                    "logs": {"kind": "victorialogs"},
                    "traces": "http://t",
                },
            },
            "backends.logs.url",
        ),
    ],
)
def test_malformed_target_names_the_field(data: dict, path_in_error: str) -> None:
    with pytest.raises(TargetError, match=re.escape(f"t.yaml: {path_in_error}:")):
        parse_target(data, "t.yaml")


def test_a_target_says_how_its_logs_are_shipped() -> None:
    otlp = load_target(REPO / "targets" / "reference-otlp-logs.yaml")
    assert otlp.logs == "otlp" and load_target(REPO / "targets" / "reference.yaml").logs == "file"


def test_log_and_trace_stores_are_chosen_by_kind_and_plain_urls_keep_their_meaning() -> None:
    urls = {role: {"url": f"http://{role}"} for role in ("user", "order", "inventory")}
    plain = parse_target(
        {
            "name": "x",
            "services": urls,
            "backends": {"prometheus": "http://p", "logs": "http://l/", "traces": "http://t"},
        }
    )
    assert plain.backends.logs == StoreSpec("victorialogs", "http://l")
    assert plain.backends.traces == StoreSpec("jaeger", "http://t")
    chosen = parse_target(
        {
            "name": "x",
            "services": urls,
            "backends": {
                "prometheus": "http://p",
                "logs": {"kind": "loki", "url": "http://loki:3100", "tenant": "team-a"},
                "traces": {"kind": "tempo", "url": "http://tempo:3200"},
            },
        }
    )
    assert chosen.backends.logs == StoreSpec("loki", "http://loki:3100", {"tenant": "team-a"})
    assert chosen.backends.traces == StoreSpec("tempo", "http://tempo:3200")


def test_the_loki_tempo_example_target_names_both_adapters() -> None:
    target = load_target(REPO / "targets" / "loki-tempo.yaml")
    assert target.backends.logs == StoreSpec(
        "loki", "http://127.0.0.1:3100", {"service_label": "service_name"}
    )
    assert target.backends.traces == StoreSpec("tempo", "http://127.0.0.1:3200", {"api": "v2"})


def test_non_yaml_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(TargetError, match="not valid YAML"):
        load_target(bad)


def _external_target(tmp_path: Path) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"
    data = {
        "name": "unreachable",
        "services": {role: {"url": dead} for role in ("user", "order", "inventory")},
        "backends": {"prometheus": dead, "logs": dead, "traces": dead},
    }
    path = tmp_path / "external.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_rejects_a_malformed_target_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "services": {"user": {"url": "nope"}}}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.conformance.cli",
            "run",
            f"--target={bad}",
            f"--out={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "services.user.url" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_unreachable_backend_is_one_clear_failure(tmp_path: Path) -> None:
    target = _external_target(tmp_path)
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.conformance.cli",
            "run",
            f"--target={target}",
            f"--out={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Prometheus is unreachable at http://127.0.0.1:" in output, output[-2000:]
    assert time.monotonic() - started < 30, "one failure, not a timeout per test"


# --- start commands -------------------------------------------------------------------------

COMMAND = ["{python}", "-m", "impl", "--role", "{role}", "--port", "{port}"]


def _started(services: dict, **top: object) -> dict:
    return {"name": "theirs", "services": services, "backends": {"start": "local"}, **top}


def test_one_start_command_for_every_service_is_templated_per_role(tmp_path: Path) -> None:
    (tmp_path / "impl").mkdir()
    file = tmp_path / "theirs.yaml"
    start = {
        "command": COMMAND,
        "cwd": "impl",
        "env": {"PORT": "{port}", "DB": "{postgres_url}", "WORKERS": 2},
        "ready_timeout": 90,
    }
    file.write_text(yaml.safe_dump(_started({"start": start})))
    target = load_target(file)
    assert target.starts_services
    for spec in target.services.values():
        assert spec.url is None and spec.start is not None
        assert spec.start.command == tuple(COMMAND)
        assert spec.start.cwd == str((tmp_path / "impl").resolve())  # relative to the file
        assert spec.start.env == {"PORT": "{port}", "DB": "{postgres_url}", "WORKERS": "2"}
        assert spec.start.ready_timeout == 90.0


def test_a_service_may_have_its_own_start_command_or_a_url() -> None:
    target = parse_target(
        _started(
            {
                "start": {"command": COMMAND},
                "order": {"name": "orders", "start": {"command": ["./orders", "{port}"]}},
                "inventory": {"url": "http://127.0.0.1:9"},  # not started: reached at its url
                "user": {},
            }
        ),
        "t.yaml",
    )
    assert target.service("user").start.command == tuple(COMMAND)
    assert target.service("order").start.command == ("./orders", "{port}")
    assert target.service("order").start.origin == "services.order.start"
    assert target.service("inventory").start is None


def test_reference_is_a_predefined_start_command() -> None:
    shorthand = parse_target(_started({"start": "reference"}))
    per_role = parse_target(
        _started({r: {"start": "reference"} for r in ("user", "order", "inventory")})
    )
    for target in (shorthand, per_role):
        assert all(s.start == PREDEFINED["reference"] for s in target.services.values())
    assert PREDEFINED["reference"].uses("faults")


@pytest.mark.parametrize(
    ("services", "path_in_error", "message"),
    [
        ({"start": "ours"}, "services.start", "must be one of reference"),
        ({"start": {"cmd": ["x"]}}, "services.start.cmd", "unknown field"),
        ({"start": {"env": {}}}, "services.start.command", "required"),
        ({"start": {"command": "python -m impl"}}, "services.start.command", "non-empty list"),
        ({"start": {"command": []}}, "services.start.command", "non-empty list"),
        ({"start": {"command": ["x", "{prot}"]}}, "services.start.command[1]", "{prot}"),
        ({"start": {"command": ["x", "{port:d}"]}}, "services.start.command[1]", "{port:d}"),
        ({"start": {"command": ["x", "{port"]}}, "services.start.command[1]", "literal braces"),
        ({"start": {"command": [["x"]]}}, "services.start.command[0]", "must be a string"),
        (
            {"start": {"command": ["x"], "env": {"A": "{nats}"}}},
            "services.start.env.A",
            "unknown placeholder {nats}",
        ),
        (
            {"start": {"command": ["x"], "env": {"NOT-A-NAME": "1"}}},
            "services.start.env.NOT-A-NAME",
            "environment variable name",
        ),
        ({"start": {"command": ["x"], "env": ["A=1"]}}, "services.start.env", "mapping"),
        ({"start": {"command": ["x"], "env": []}}, "services.start.env", "mapping"),
        ({"start": {"command": ["x"], "cwd": "no/such/dir"}}, "services.start.cwd", "no such"),
        (
            {"start": {"command": ["x"], "ready_timeout": 0}},
            "services.start.ready_timeout",
            "between 1 and 600",
        ),
        (
            {"start": "reference", "order": {"url": "http://x", "start": {"command": ["x"]}}},
            "services.order.url",
            "not both",
        ),
        (
            {"user": {"start": {"command": ["x", "{faults"]}}},
            "services.user.start.command[1]",
            "literal braces",
        ),
        (
            {"start": "reference", "order": {"name": "user-service"}},
            "services.",
            "names two services",
        ),
    ],
)
def test_malformed_start_command_names_the_field(
    services: dict, path_in_error: str, message: str
) -> None:
    with pytest.raises(TargetError, match=re.escape(f"t.yaml: {path_in_error}")) as caught:
        parse_target(_started(services), "t.yaml")
    assert message in str(caught.value)


def test_starting_services_needs_a_stack_to_start() -> None:
    with pytest.raises(TargetError, match=re.escape("t.yaml: services.user.start: ")):
        parse_target(
            {
                "name": "x",
                "services": {
                    "user": {"start": {"command": ["x"]}},
                    "order": {"url": "http://127.0.0.1:9"},
                    "inventory": {"url": "http://127.0.0.1:9"},
                },
                "backends": {"prometheus": "http://p", "logs": "http://l", "traces": "http://t"},
            },
            "t.yaml",
        )
