"""The implementer's contract as data: what a start command may say and what a service gets.

A target's start command (`StartCommand`: argv, working directory, extra environment, ready
timeout) may use the placeholders of `PLACEHOLDERS` in every string; `placeholders_in` checks
a template against them when the target is loaded. Every started service receives the
environment `CONTRACT_ENV`, rendered from the same placeholders, whose values come from the
stack's endpoints (`stack_values`), the target and the run (`run_values`) and the service
itself (its name, role, port and log path, filled in by the harness that starts it,
stack/services.py).

docs/contract.md documents `PLACEHOLDERS` and `CONTRACT_ENV`; tests/test_contract_doc.py
keeps the document and these tables equal.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from obsconf.stack.endpoints import Endpoints
from obsconf.stack.native import NATIVE

READY_TIMEOUT = 30.0  # seconds until GET /health must answer 200 (a start command's default)
BUILD_PLACEHOLDER = "build[NAME]"
# `{build[inventory-go]}`: index syntax, so str.format looks the name up in a mapping.
BUILD_KEY = "build"

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


class TemplateError(ValueError):
    """A template names an unknown placeholder or is malformed."""


def _build_name(field_name: str) -> str | None:
    """`inventory-go` for the field `build[inventory-go]`, None for any other field."""
    prefix, sep, rest = field_name.partition("[")
    if prefix != BUILD_KEY or not sep or not rest.endswith("]") or "[" in rest:
        return None
    return rest[:-1]


def placeholders_in(template: str) -> list[str]:
    """The placeholder names of `template` (`{{`/`}}` are literal braces); TemplateError
    if one is unknown, carries a format spec or conversion, or a brace is unbalanced."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(
            f"{template!r}: {error} (write {{{{ and }}}} for literal braces)"
        ) from None
    names: list[str] = []
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
