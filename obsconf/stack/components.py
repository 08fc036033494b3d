"""Each local stack component: its command line, generated test-mode config, and readiness check.

A component is described by a `Component`: `argv(ctx)` builds the command (writing any config
file it needs under the run dir), `ready(ctx)` performs a real round trip and returns True once
the component serves. Ports are chosen free by the caller and kept in `ctx.ports`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from obsconf.stack.endpoints import Endpoints
from obsconf.stack.ports import free_port


@dataclass
class RunContext:
    """Shared state of one stack run: where files go and which ports were picked."""

    run_dir: Path
    binaries: dict[str, Path]
    ports: dict[str, int] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)  # database role -> password

    def dir(self, name: str) -> Path:
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pick(self, *names: str) -> None:
        for name in names:
            self.ports[name] = free_port()

    def url(self, port_name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[port_name]}"


@dataclass
class Component:
    """One backend process."""

    name: str
    binary: str
    ports: tuple[str, ...]
    argv: Callable[[RunContext], list[str]]
    ready: Callable[[RunContext], bool]
    prepare: Callable[[RunContext], None] | None = None
    user: Callable[[], str | None] = lambda: None


def _http_ok(url: str, expect: str | None = None) -> bool:
    response = httpx.get(url, timeout=1.0)
    return response.status_code == 200 and (expect is None or expect in response.text)


# --- PostgreSQL -------------------------------------------------------------------------------

PG_DATABASE = "obsconf"
PG_USER = "obsconf"  # the superuser: the harness's own, never handed to a service
PG_APP_USER = "obsconf_app"  # the services' role: owns the database, no superuser


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as Debian's `postgres` user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise RuntimeError(
            "running as root needs the `postgres` user (apt postgresql-15)"
        ) from error
    return "postgres"


def _pg_prepare(ctx: RunContext) -> None:
    """initdb with password (SCRAM) authentication for every connection, local or TCP; one
    random password per role, kept in the context (nothing trusts a local user)."""
    base = ctx.dir("postgres")
    data, sock = base / "data", ctx.dir("postgres/sock")
    ctx.passwords.update(
        {PG_USER: secrets.token_urlsafe(18), PG_APP_USER: secrets.token_urlsafe(18)}
    )
    pwfile = base / "initdb.pw"
    pwfile.write_text(ctx.passwords[PG_USER] + "\n")
    pwfile.chmod(0o600)
    user = _pg_user()
    if user:
        entry = pwd.getpwnam(user)
        for path in (base, sock, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        proc = subprocess.run(
            [
                str(ctx.binaries["initdb"]),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "-A",
                "scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"initdb failed: {proc.stdout}{proc.stderr}")


def _pg_argv(ctx: RunContext) -> list[str]:
    base = ctx.run_dir / "postgres"
    return [
        str(ctx.binaries["postgres"]),
        "-D",
        str(base / "data"),
        "-p",
        str(ctx.ports["postgres"]),
        "-k",
        str(base / "sock"),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=200",
    ]


def postgres_url(ctx: RunContext, database: str = PG_DATABASE) -> str:
    """The services' URL: the application role with its password (the containers backend,
    which trusts local connections, has no password: the superuser name then)."""
    password = ctx.passwords.get(PG_APP_USER)
    login = f"{PG_APP_USER}:{password}" if password else PG_USER
    return f"postgresql+psycopg://{login}@127.0.0.1:{ctx.ports['postgres']}/{database}"


def _pg_ready(ctx: RunContext) -> bool:
    """Connect as the superuser; create the application role (where the backend gives it a
    password) and its database once."""
    import psycopg
    from psycopg import sql

    dsn = (
        f"host=127.0.0.1 port={ctx.ports['postgres']} user={PG_USER} dbname=postgres "
        f"password={ctx.passwords.get(PG_USER, '')}"
    )
    app_password = ctx.passwords.get(PG_APP_USER)  # None: a backend without passwords
    owner = PG_APP_USER if app_password is not None else PG_USER
    with psycopg.connect(dsn, connect_timeout=1, autocommit=True) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (PG_APP_USER,))
        if app_password is not None and role.fetchone() is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE CREATEDB PASSWORD {}"
                ).format(sql.Identifier(PG_APP_USER), sql.Literal(app_password))
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (PG_DATABASE,))
        if exists.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(PG_DATABASE), sql.Identifier(owner)
                )
            )
    return True


POSTGRES = Component(
    name="postgres",
    binary="postgres",
    ports=("postgres",),
    argv=_pg_argv,
    ready=_pg_ready,
    prepare=_pg_prepare,
    user=_pg_user,
)

# --- MongoDB wire protocol: FerretDB on SQLite ----------------------------------------------------


def _ferret_argv(ctx: RunContext) -> list[str]:
    data = ctx.dir("ferretdb/data")
    return [
        str(ctx.binaries["ferretdb"]),
        f"--listen-addr=127.0.0.1:{ctx.ports['mongodb']}",
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--state-dir={ctx.dir('ferretdb')}",
        "--telemetry=disable",
        f"--debug-addr=127.0.0.1:{ctx.ports['ferretdb-debug']}",
        "--log-level=warn",
    ]


def _ferret_ready(ctx: RunContext) -> bool:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(
        ctx.url("mongodb", "mongodb"), serverSelectionTimeoutMS=1000
    )
    try:
        return client.admin.command("ping").get("ok") == 1.0
    finally:
        client.close()


MONGODB = Component(
    name="mongodb",
    binary="ferretdb",
    ports=("mongodb", "ferretdb-debug"),
    argv=_ferret_argv,
    ready=_ferret_ready,
)

# --- NATS JetStream -------------------------------------------------------------------------------


def _nats_argv(ctx: RunContext) -> list[str]:
    return [
        str(ctx.binaries["nats-server"]),
        "-a",
        "127.0.0.1",
        "-p",
        str(ctx.ports["nats"]),
        "-m",
        str(ctx.ports["nats-monitor"]),
        "-js",
        "-sd",
        str(ctx.dir("nats")),
    ]


NATS = Component(
    name="nats",
    binary="nats-server",
    ports=("nats", "nats-monitor"),
    argv=_nats_argv,
    ready=lambda ctx: _http_ok(ctx.url("nats-monitor") + "/healthz", '"ok"'),
)

# --- Logs: VictoriaLogs, fed by the OpenTelemetry Collector --------------------------------


def _vlogs_argv(ctx: RunContext) -> list[str]:
    return [
        str(ctx.binaries["victoria-logs"]),
        f"-storageDataPath={ctx.dir('victoria-logs')}",
        f"-httpListenAddr=127.0.0.1:{ctx.ports['logs']}",
        "-retentionPeriod=7d",
        "-loggerLevel=WARN",
    ]


LOGS = Component(
    name="victoria-logs",
    binary="victoria-logs",
    ports=("logs",),
    argv=_vlogs_argv,
    ready=lambda ctx: _http_ok(ctx.url("logs") + "/health", "OK"),
)

# The stream field naming the service: the OpenTelemetry resource attribute the collector sets
# from the file name (<service>.log) and OTLP-shipped logs carry; VictoriaLogs makes resource
# attributes stream fields.
COLLECTOR_STREAM_FIELD = "service.name"


def _probe_stored(ctx: RunContext, stream_field: str) -> bool:
    """Real round trip: a probe line written to the tailed dir is queryable in the log store."""
    probe_file = ctx.dir("service-logs") / "obsconf-probe.log"
    marker = ctx.ports.setdefault("probe-marker", int(time.time() * 1000) % 1_000_000_000)
    if not probe_file.exists():
        probe_file.write_text(f'{{"msg": "stack probe", "probe": "p{marker}"}}\n')
    query = f'"{stream_field}":="obsconf-probe" "p{marker}"'
    response = httpx.post(
        ctx.url("logs") + "/select/logsql/query", data={"query": query}, timeout=2.0
    )
    return response.status_code == 200 and f"p{marker}" in response.text


def collector_config(log_dir: Path, otlp_listen: str, logs_url: str) -> dict:
    """The log path: tail <log_dir>/*.log (resource service.name = file stem, the JSON line
    parsed into attributes, the line itself kept as the body) and receive OTLP logs; export
    both to VictoriaLogs' OpenTelemetry endpoint."""
    stem = {
        "type": "regex_parser",
        "parse_from": 'attributes["log.file.name"]',
        "regex": r"^(?P<stem>.+)\.log$",
        "parse_to": "resource",
    }
    operators = [
        stem,
        {"type": "move", "from": 'resource["stem"]', "to": f'resource["{COLLECTOR_STREAM_FIELD}"]'},
        {
            "type": "json_parser",
            "parse_from": "body",
            "parse_to": "attributes",
            "on_error": "send_quiet",
        },
    ]
    return {
        "receivers": {
            "file_log": {
                "include": [f"{log_dir}/*.log"],
                "start_at": "beginning",
                "poll_interval": "100ms",
                "max_log_size": "256KiB",
                "operators": operators,
            },
            "otlp": {"protocols": {"http": {"endpoint": otlp_listen}}},
        },
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {
            "otlp_http": {
                "logs_endpoint": f"{logs_url}/insert/opentelemetry/v1/logs",
                "retry_on_failure": {"max_elapsed_time": "0s"},  # retry until stopped
                "sending_queue": {"queue_size": 100000},
            }
        },
        "service": {
            "telemetry": {"logs": {"level": "warn"}, "metrics": {"level": "none"}},
            "pipelines": {
                "logs": {
                    "receivers": ["file_log", "otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_http"],
                }
            },
        },
    }


def _collector_argv(ctx: RunContext) -> list[str]:
    work = ctx.dir("collector")
    conf = work / "collector.yaml"
    config = collector_config(
        ctx.dir("service-logs"),
        f"127.0.0.1:{ctx.ports['otlp-logs']}",
        ctx.url("logs"),
    )
    conf.write_text(yaml.safe_dump(config, sort_keys=False))
    return [str(ctx.binaries["otelcol-obsconf"]), f"--config={conf}"]


COLLECTOR = Component(
    name="otelcol",
    binary="otelcol-obsconf",
    ports=("otlp-logs",),
    argv=_collector_argv,
    ready=lambda ctx: _probe_stored(ctx, COLLECTOR_STREAM_FIELD),
)

# --- Traces: Jaeger v2 (OTLP in, query API out), in-memory storage -------------------------------


JAEGER_LISTENERS = ("traces", "traces-grpc", "traces-health", "otlp", "otlp-grpc")


def jaeger_config(listen: dict[str, str]) -> dict:
    """Jaeger v2 config; `listen` maps each of JAEGER_LISTENERS to its host:port."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": [],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "metrics": {"level": "none"},
                "logs": {"level": "warn"},
            },
        },
        "extensions": {
            "healthcheckv2": {
                "use_v2": True,
                "http": {"endpoint": listen["traces-health"]},
            },
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                "http": {"endpoint": listen["traces"]},
                "grpc": {"endpoint": listen["traces-grpc"]},
            },
            "jaeger_storage": {
                "backends": {"memstore": {"memory": {"max_traces": 200000}}},
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "http": {"endpoint": listen["otlp"]},
                    "grpc": {"endpoint": listen["otlp-grpc"]},
                }
            }
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


def _jaeger_argv(ctx: RunContext) -> list[str]:
    conf = ctx.dir("jaeger") / "jaeger.yaml"
    listen = {name: f"127.0.0.1:{ctx.ports[name]}" for name in JAEGER_LISTENERS}
    conf.write_text(yaml.safe_dump(jaeger_config(listen), sort_keys=False))
    return [str(ctx.binaries["jaeger"]), f"--config={conf}"]


def _jaeger_ready(ctx: RunContext) -> bool:
    return _http_ok(ctx.url("traces-health") + "/status") and _http_ok(
        ctx.url("traces") + "/api/services"
    )


TRACES = Component(
    name="jaeger",
    binary="jaeger",
    ports=JAEGER_LISTENERS,
    argv=_jaeger_argv,
    ready=_jaeger_ready,
)

# --- Prometheus: 1 s scrapes of targets registered by file_sd ---------------------------------


def prometheus_config(scrape_dir: Path) -> dict:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "obsconf",
                "file_sd_configs": [{"files": [f"{scrape_dir}/*.json"], "refresh_interval": "1s"}],
            }
        ],
    }


def _prom_argv(ctx: RunContext) -> list[str]:
    base = ctx.dir("prometheus")
    conf = base / "prometheus.yml"
    conf.write_text(yaml.safe_dump(prometheus_config(ctx.dir("scrape-targets"))))
    return [
        str(ctx.binaries["prometheus"]),
        f"--config.file={conf}",
        f"--storage.tsdb.path={ctx.dir('prometheus/data')}",
        f"--web.listen-address=127.0.0.1:{ctx.ports['prometheus']}",
        "--log.level=warn",
    ]


PROMETHEUS = Component(
    name="prometheus",
    binary="prometheus",
    ports=("prometheus",),
    argv=_prom_argv,
    ready=lambda ctx: _http_ok(ctx.url("prometheus") + "/-/ready"),
)

# Start order: the log store before the collector that feeds it; PostgreSQL last, so its
# initdb (the slowest step) overlaps with the others booting.
ALL = (LOGS, TRACES, PROMETHEUS, NATS, MONGODB, COLLECTOR, POSTGRES)


def endpoints_of(
    ctx: RunContext, stack_kind: str, stream_field: str = COLLECTOR_STREAM_FIELD, **hosts: str
) -> Endpoints:
    """The Endpoints of a started stack whose host-side ports are in `ctx.ports`."""
    return Endpoints(
        prometheus=ctx.url("prometheus"),
        logs=ctx.url("logs"),
        traces=ctx.url("traces"),
        otlp=ctx.url("otlp"),
        postgres=postgres_url(ctx),
        mongodb=ctx.url("mongodb", "mongodb"),
        nats=ctx.url("nats", "nats"),
        log_dir=str(ctx.dir("service-logs")),
        otlp_logs=ctx.url("otlp-logs") + "/v1/logs" if "otlp-logs" in ctx.ports else "",
        scrape_dir=str(ctx.dir("scrape-targets")),
        run_dir=str(ctx.run_dir),
        kinds={
            "stack": stack_kind,
            "logs": "victorialogs",
            "traces": "jaeger",
            "log_stream_field": stream_field,
        },
        **hosts,
    )
