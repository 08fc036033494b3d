"""Services started by command: the one way the harness starts an implementation.

A target says, per service (or once for all), a command, a working directory and extra
environment, all templated from the stack's endpoints (`PLACEHOLDERS`). For each service the
harness picks a free port, starts the command in its own process group with stdout and
stderr appended to `<log_dir>/<service>.log` (the file the log shipper tails), gives it the
contract's environment (`CONTRACT_ENV`), registers it as a Prometheus scrape target (job =
service name, plus the target's service label), waits until `GET /health` answers 200, and
stops the whole group at the end.

    with ServiceProcesses(endpoints, {"user-service": ("user", command), ...}) as services:
        httpx.get(services.urls["user-service"] + "/health")

Our reference services are one predefined command among others (`PREDEFINED["reference"]`).
The implementer's contract (docs/contract.md) documents `PLACEHOLDERS` and `CONTRACT_ENV`;
a test keeps the document and these tables equal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from obsconf.stack.endpoints import Endpoints
from obsconf.stack.local import register_scrape_target
from obsconf.stack.native import NATIVE, BuiltBinaries
from obsconf.stack.ports import free_port
from obsconf.stack.process import ManagedProcess
from obsconf.stack.waiting import PollTimeout, poll

READY_TIMEOUT = 30.0
BUILD_PLACEHOLDER = "build[NAME]"
CALL_HOST = "127.0.0.1"  # where the suite calls the services (they bind endpoints.service_host)
LOG_TAIL_LINES = 30
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

# Every placeholder a start command, working directory or environment value may use.
PLACEHOLDERS: dict[str, str] = {
    "service": "the service's name (`user-service`): its service.name, log file stem and "
    "Prometheus job",
    "role": "the service's role: `user`, `order` or `inventory`",
    "host": "the interface to listen on (`127.0.0.1`; `0.0.0.0` when Prometheus runs in a "
    "container)",
    "port": "the TCP port to serve HTTP on, picked free by the harness",
    "database_url": "PostgreSQL as an SQLAlchemy URL: `postgresql+psycopg://obsconf@127.0.0.1:"
    "PORT/obsconf`",
    "postgres_url": "the same database as a plain libpq URL: `postgresql://obsconf@127.0.0.1:"
    "PORT/obsconf`",
    "mongodb_url": "the MongoDB-wire server: `mongodb://127.0.0.1:PORT` (no database in the "
    "path: pick your own database name)",
    "nats_url": "the NATS server, JetStream enabled: `nats://127.0.0.1:PORT`",
    "otlp_endpoint": "the OTLP/HTTP base URL of the trace store: `http://127.0.0.1:PORT` "
    "(POST spans to `<otlp_endpoint>/v1/traces`)",
    "otlp_logs_endpoint": "the URL OTLP/HTTP log records are POSTed to: "
    "`http://127.0.0.1:PORT/v1/logs` (the log path's receiver; empty on a stack without one)",
    "logs": "the target's `capabilities.logs`: `file` (JSON lines on stdout) or `otlp`",
    "log_path": "the file the service's stdout and stderr are appended to: "
    "`<log_dir>/<service>.log`",
    "python": "the Python interpreter running the harness (for implementations in Python)",
    "faults": "the fault modes asked for with `--fault`, comma-separated (empty without); "
    "a target whose commands never use it refuses `--fault`",
    "consumer_relation": "the target's `capabilities.consumer_relation`: `parent` or `link`",
    "span_flush_interval_ms": "the target's `capabilities.span_flush_interval` in whole "
    "milliseconds (e.g. for `OTEL_BSP_SCHEDULE_DELAY`)",
    BUILD_PLACEHOLDER: "the binary of native implementation NAME of this repository "
    "(`inventory-go`, `order-rust`), built into the cache keyed by its sources' hash on first "
    "use (`obsconf install` builds them ahead)",
}

# The environment every started service receives (on top of the harness's own environment;
# the target's `env` is applied last and may override these).
CONTRACT_ENV: dict[str, str] = {
    "OBSCONF_SERVICE": "{service}",
    "OBSCONF_ROLE": "{role}",
    "OBSCONF_HOST": "{host}",
    "OBSCONF_PORT": "{port}",
    "DATABASE_URL": "{database_url}",
    "POSTGRES_URL": "{postgres_url}",
    "MONGODB_URL": "{mongodb_url}",
    "NATS_URL": "{nats_url}",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp_endpoint}",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "{otlp_logs_endpoint}",
    "OBSCONF_LOG_PATH": "{log_path}",
}

# `{build[inventory-go]}`: index syntax, so str.format looks the name up in a mapping.
BUILD_KEY = "build"


def _build_name(field_name: str) -> str | None:
    """`inventory-go` for the field `build[inventory-go]`, None for any other field."""
    prefix, sep, rest = field_name.partition("[")
    if prefix != BUILD_KEY or not sep or not rest.endswith("]") or "[" in rest:
        return None
    return rest[:-1]


# Placeholders whose value comes from the target or the run, not from the stack.
RUN_PLACEHOLDERS = ("faults", "consumer_relation", "span_flush_interval_ms", "logs")


class ServiceFailed(RuntimeError):
    """A service did not become healthy; the message names its command and log tail."""


class TemplateError(ValueError):
    """A template names an unknown placeholder or is malformed."""


def placeholders_in(template: str) -> list[str]:
    """The placeholder names of `template` (`{{`/`}}` are literal braces); TemplateError
    if one is unknown, carries a format spec or conversion, or a brace is unbalanced."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(
            f"{template!r}: {error} (write {{{{ and }}}} for literal braces)"
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        built = _build_name(name)
        if built is not None and built in NATIVE and not (spec or conversion):
            names.append(BUILD_PLACEHOLDER)
            continue
        if name not in PLACEHOLDERS or name == BUILD_PLACEHOLDER or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise TemplateError(
                f"unknown placeholder {shown} in {template!r} "
                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )
        names.append(name)
    return names


def render(template: str, values: Mapping[str, object]) -> str:
    return template.format_map(values)


@dataclass(frozen=True)
class StartCommand:
    """How to start one service: every string may hold placeholders (see `PLACEHOLDERS`)."""

    command: tuple[str, ...]
    cwd: str | None = None  # absolute, or relative to the harness's working directory
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = READY_TIMEOUT
    origin: str = "start"  # where it was declared (a target field path), for messages

    def templates(self) -> list[str]:
        return [*self.command, *([self.cwd] if self.cwd else []), *self.env.values()]

    def uses(self, placeholder: str) -> bool:
        return any(placeholder in placeholders_in(t) for t in self.templates())

    def with_env(self, **env: str) -> StartCommand:
        return replace(self, env={**self.env, **env})


def _import_root() -> Path:
    """The directory the `obsconf` package is imported from (a checkout, or site-packages)."""
    import obsconf

    return Path(obsconf.__file__).resolve().parent.parent


def _reference_start() -> StartCommand:
    root = str(_import_root())
    pythonpath = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return StartCommand(
        command=("{python}", "-m", "obsconf.reference_services.{role}"),
        env={
            "OBSCONF_FAULTS": "{faults}",
            "OBSCONF_CONSUMER_RELATION": "{consumer_relation}",
            "OBSCONF_LOGS": "{logs}",
            "OBSCONF_TELEMETRY": "on",
            "OTEL_BSP_SCHEDULE_DELAY": "{span_flush_interval_ms}",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": pythonpath.replace("{", "{{").replace("}", "}}"),
        },
        origin="services.start: reference",
    )


# Start commands a target names by a word (`services.start: reference`).
PREDEFINED: dict[str, StartCommand] = {"reference": _reference_start()}


def stack_values(endpoints: Endpoints) -> dict[str, str]:
    """The placeholders whose value comes from the stack's endpoints."""
    sqlalchemy_url = endpoints.postgres
    scheme, sep, rest = sqlalchemy_url.partition("://")
    plain = f"postgresql://{rest}" if sep and scheme.startswith("postgresql") else sqlalchemy_url
    return {
        "host": endpoints.service_host,
        "database_url": sqlalchemy_url,
        "postgres_url": plain,
        "mongodb_url": endpoints.mongodb,
        "nats_url": endpoints.nats,
        "otlp_endpoint": endpoints.otlp.rstrip("/"),
        "otlp_logs_endpoint": endpoints.otlp_logs,
        "python": sys.executable,
    }


def run_values(
    faults: str = "",
    consumer_relation: str = "parent",
    span_flush_interval: float = 5.0,
    logs: str = "file",
) -> dict[str, str]:
    """The placeholders whose value comes from the target and the run."""
    return {
        "faults": faults,
        "consumer_relation": consumer_relation,
        "span_flush_interval_ms": str(round(span_flush_interval * 1000)),
        "logs": logs,
    }


def contract_environment(values: Mapping[str, object]) -> dict[str, str]:
    """`CONTRACT_ENV` rendered for one service (`values`: every placeholder's value)."""
    return {name: render(template, values) for name, template in CONTRACT_ENV.items()}


class ServiceProcesses:
    """Services started by command against a running stack; `urls` maps name -> base URL.

    `commands` maps each service name to (role, StartCommand); `values` gives the run's
    placeholders (`run_values`); `service_label` is the label name the scrape target carries
    the service name under (the target's `labels.service`)."""

    def __init__(
        self,
        endpoints: Endpoints,
        commands: Mapping[str, tuple[str, StartCommand]],
        values: Mapping[str, str] | None = None,
        service_label: str = "service",
    ) -> None:
        self.endpoints = endpoints
        self.commands = dict(commands)
        self.values = {**run_values(), **(values or {})}
        self.service_label = service_label
        self.processes: dict[str, ManagedProcess] = {}
        self.ports: dict[str, int] = {}
        self.urls: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Launch every service, then wait until each answers /health with 200; `urls`."""
        try:
            for name in self.commands:
                self._launch(name)
            for name in self.commands:
                self._await_healthy(name)
        except BaseException:
            self.stop()
            raise
        return dict(self.urls)

    def stop(self) -> None:
        """Stop every service's process group and unregister its scrape target. Idempotent.

        Every group gets SIGTERM at once (their graceful shutdowns overlap), then SIGKILL
        after `STOP_GRACE` seconds, also for what a service left behind in its group."""
        running = [p for p in self.processes.values() if p.proc is not None]
        for process in running:
            if process.exited() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=5.0)
        for name in self.processes:
            if self.endpoints.scrape_dir:
                (Path(self.endpoints.scrape_dir) / f"{name}.json").unlink(missing_ok=True)
        self.processes.clear()

    def stop_service(self, name: str) -> None:
        """Stop one service (its port and scrape target are kept for `start_service`)."""
        process = self.processes.get(name)
        if process is not None:
            process.stop()

    def start_service(self, name: str) -> None:
        """(Re)start one service on its previous port and wait until it is healthy."""
        self._launch(name)
        try:
            self._await_healthy(name)
        except BaseException:
            self.stop_service(name)
            raise

    def __enter__(self) -> ServiceProcesses:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one service ------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return Path(self.endpoints.log_dir or tempfile.gettempdir()) / f"{name}.log"

    def template_values(self, name: str) -> dict[str, object]:
        """Every placeholder's value for service `name` (its port must be picked)."""
        role, _ = self.commands[name]
        return {
            BUILD_KEY: BuiltBinaries(),
            **stack_values(self.endpoints),
            **self.values,
            "service": name,
            "role": role,
            "port": str(self.ports[name]),
            "log_path": str(self.log_path(name)),
        }

    def environment(self, name: str) -> dict[str, str]:
        """The harness's environment + the contract's + the target's `env`, rendered."""
        _, command = self.commands[name]
        values = self.template_values(name)
        env = dict(os.environ)
        env.update(contract_environment(values))
        env.update({key: render(value, values) for key, value in command.env.items()})
        return env

    def argv(self, name: str) -> list[str]:
        _, command = self.commands[name]
        values = self.template_values(name)
        return [render(part, values) for part in command.command]

    def _launch(self, name: str) -> None:
        _, command = self.commands[name]
        port = self.ports.setdefault(name, free_port())
        values = self.template_values(name)
        process = ManagedProcess(
            name,
            self.argv(name),
            self.log_path(name),
            env=self.environment(name),
            cwd=Path(render(command.cwd, values)) if command.cwd else None,
        )
        try:
            process.start()
        except OSError as error:
            raise ServiceFailed(
                f"service '{name}' could not be started ({command.origin}): {error}\n"
                f"command: {' '.join(process.argv)}"
                + (f"\nworking directory: {process.cwd}" if process.cwd else "")
            ) from error
        self.processes[name] = process
        self.urls[name] = f"http://{CALL_HOST}:{port}"
        if self.endpoints.scrape_dir:
            register_scrape_target(
                Path(self.endpoints.scrape_dir),
                name,
                f"{self.endpoints.scrape_host}:{port}",
                {self.service_label: name},
            )

    def _await_healthy(self, name: str) -> None:
        _, command = self.commands[name]
        process = self.processes[name]
        url = self.urls[name] + "/health"

        def health() -> int | None:
            if process.exited() is not None:
                return None  # stops the poll: no point waiting for a dead process
            return httpx.get(url, timeout=2.0).status_code

        try:
            status = poll(
                health,
                until=lambda status: status in (None, 200),
                timeout=command.ready_timeout,
                describe=f"{name} GET /health to answer 200",
                interval=0.1,
                max_interval=0.3,
            )
            why = None if status == 200 else f"exited with code {process.exited()}"
        except PollTimeout as error:
            why = f"not healthy within {command.ready_timeout:g} s: {error}"
        if why is not None:
            raise ServiceFailed(
                f"service '{name}' did not become healthy ({command.origin}): {why}\n"
                f"command: {' '.join(process.argv)}\n"
                + (f"working directory: {process.cwd}\n" if process.cwd else "")
                + f"last {LOG_TAIL_LINES} log lines ({process.log_path}):\n"
                f"{process.log_tail(LOG_TAIL_LINES)}"
            )
