"""The docker-compose path (stack/docker-compose.yml), checked structurally: no Docker needed.

There is no registry on the build machines, so the compose stack is never started here; these
tests keep its files consistent with each other and with the rest of the project (image pins,
the local stack's shipping and tracing config, the metric names, the compose target).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from obsconf.conformance.target import DEFAULT_LABELS, DEFAULT_METRICS, load_target
from obsconf.reference_services.launcher import SERVICE_NAMES
from obsconf.reports.html import explore_url
from obsconf.stack.components import COLLECTOR_STREAM_FIELD, collector_config

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "stack"
COMPOSE_FILE = STACK / "docker-compose.yml"
GRAFANA = STACK / "grafana"

# compose service -> key of stack/versions.toml [images.upstream]
IMAGE_KEYS = {
    "postgres": "postgres",
    "mongodb": "mongodb",
    "nats": "nats",
    "prometheus": "prometheus",
    "victoria-logs": "logs",
    "otelcol": "collector",
    "jaeger": "traces",
    "grafana": "grafana",
}
NO_HEALTHCHECK = {"nats", "otelcol"}  # no shell or client in the image to probe with
LOG_DIR = "/var/log/obsconf"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def services() -> dict:
    return load_yaml(COMPOSE_FILE)["services"]


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict]:
    data = load_yaml(GRAFANA / "provisioning/datasources/obsconf.yaml")
    return {ds["uid"]: ds for ds in data["datasources"]}


def published(service: dict) -> dict[int, int]:
    """container port -> host port, from "127.0.0.1:HOST:CONTAINER" entries."""
    ports = {}
    for entry in service.get("ports", []):
        _ip, host, container = entry.split(":")
        ports[int(container)] = int(host)
    return ports


def mounts(service: dict) -> dict[str, str]:
    """container path -> source (a named volume or a path relative to stack/)."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def flag(args: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"{name}="))


# --- compose file --------------------------------------------------------------------------


def test_compose_defines_the_stack_and_the_three_services(services):
    assert set(services) == set(IMAGE_KEYS) | set(SERVICE_NAMES)


def test_images_are_the_pinned_upstream_images(services):
    pins = tomllib.loads((STACK / "versions.toml").read_text())["images"]["upstream"]
    assert {name: services[name]["image"] for name in IMAGE_KEYS} == {
        name: pins[key] for name, key in IMAGE_KEYS.items()
    }


def test_reference_services_are_built_from_their_dockerfile(services):
    for name in SERVICE_NAMES:
        build = services[name]["build"]
        dockerfile = Path(os.path.normpath(STACK / build["context"] / build["dockerfile"]))
        assert dockerfile == ROOT / "reference_services/Dockerfile"
        assert services[name]["command"] == [name]
    lines = (ROOT / "reference_services/Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith("FROM ")] == ["FROM python:3.11-slim"]


def test_bind_mounted_files_exist(services):
    sources = [src for s in services.values() for src in mounts(s).values()]
    binds = [src for src in sources if src.startswith(".")]
    assert binds, "expected config files bind-mounted from stack/"
    for source in binds:
        assert (STACK / source).exists(), source


def test_depends_on_names_defined_services(services):
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in ("service_started", "service_healthy")
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency


def test_healthchecks_where_the_image_allows(services):
    assert {name for name, s in services.items() if "healthcheck" not in s} == NO_HEALTHCHECK


def test_ports_are_published_on_localhost_only(services):
    entries = [entry for s in services.values() for entry in s.get("ports", [])]
    assert entries
    assert all(entry.startswith("127.0.0.1:") for entry in entries), entries


def test_services_get_every_setting_they_read(services):
    config = (ROOT / "reference_services/config.py").read_text()
    read = set(re.findall(r'env\.get\(\s*"(\w+)"', config))
    assert {"DATABASE_URL", "NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"} <= read
    for name in SERVICE_NAMES:
        env = services[name]["environment"]
        assert read <= set(env), f"{name} misses {read - set(env)}"
        assert env["OBSCONF_HOST"] == "0.0.0.0"
        assert published(services[name]) == {int(env["OBSCONF_PORT"]): int(env["OBSCONF_PORT"])}
        for key in ("DATABASE_URL", "MONGODB_URL", "NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            assert urlsplit(env[key]).hostname in services, f"{name} {key}={env[key]}"
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert mounts(services[name])[env["OBSCONF_LOG_DIR"]] == "service-logs"


# --- backends configuration ----------------------------------------------------------------


def test_prometheus_scrapes_exactly_the_three_services(services):
    config = load_yaml(STACK / "compose/prometheus.yml")
    interval = config["global"]["scrape_interval"]
    assert interval.endswith("s") and 1 <= int(interval[:-1]) <= 5
    jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICE_NAMES)
    for name, static in jobs.items():
        port = services[name]["environment"]["OBSCONF_PORT"]
        assert static == [{"targets": [f"{name}:{port}"], "labels": {"service": name}}]


def test_collector_ships_the_service_logs_like_the_local_stack(services):
    collector = services["otelcol"]
    assert mounts(collector)[LOG_DIR] == "service-logs"
    config_path = mounts(collector)[flag(collector["command"], "--config")]
    victoria_logs = flag(services["victoria-logs"]["command"], "-httpListenAddr")
    local = collector_config(Path(LOG_DIR), "0.0.0.0:4318", f"http://victoria-logs{victoria_logs}")
    assert load_yaml(STACK / config_path) == local
    otlp = services["user-service"]["environment"]["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]
    assert otlp == "http://otelcol:4318/v1/logs"


def test_jaeger_receives_otlp_and_serves_queries_on_the_published_port(services):
    jaeger = services["jaeger"]
    config = load_yaml(STACK / mounts(jaeger)[flag(jaeger["command"], "--config")])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"
    assert published(jaeger) == {16686: 16686}
    health = config["extensions"]["healthcheckv2"]["http"]["endpoint"].split(":")[1]
    assert f"127.0.0.1:{health}/" in " ".join(jaeger["healthcheck"]["test"])
    otlp = services["user-service"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert otlp == "http://jaeger:4318"


# --- Grafana ---------------------------------------------------------------------------------


def test_datasource_links_reference_existing_uids(datasources):
    assert {ds["type"] for ds in datasources.values()} == {
        "prometheus",
        "jaeger",
        "victoriametrics-logs-datasource",
    }
    uid = {ds["type"]: ds["uid"] for ds in datasources.values()}
    logs, traces = uid["victoriametrics-logs-datasource"], uid["jaeger"]
    (derived,) = datasources[logs]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == traces
    jaeger = datasources[traces]["jsonData"]
    assert jaeger["tracesToLogsV2"]["datasourceUid"] == logs
    assert jaeger["tracesToMetrics"]["datasourceUid"] == uid["prometheus"]
    # the HTML report's "open in Grafana" links name the trace data source by this uid
    panes = parse_qs(urlsplit(explore_url("http://grafana", "0" * 32)).query)["panes"][0]
    assert json.loads(panes)["trace"]["datasource"] == traces


def test_datasource_urls_are_compose_services(datasources, services):
    for ds in datasources.values():
        url = urlsplit(ds["url"])
        assert url.port in published(services[url.hostname]), ds["url"]


def strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_provisioning_escapes_every_literal_dollar():
    # Grafana expands $NAME in provisioning values from its environment; "$$" is a literal "$".
    values = strings(load_yaml(GRAFANA / "provisioning/datasources/obsconf.yaml"))
    assert any("$$" in value for value in values)
    assert [value for value in values if "$" in value.replace("$$", "")] == []


def test_derived_field_finds_the_trace_id_in_a_service_log_line(datasources):
    (derived,) = datasources["logs"]["jsonData"]["derivedFields"]
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    line = json.dumps({"msg": "GET /api/users/1 -> 200", "trace_id": trace_id, "span_id": "ab"})
    assert re.search(derived["matcherRegex"], line).group(1) == trace_id
    assert re.search(derived["matcherRegex"], json.dumps({"trace_id": ""})) is None


def test_grafana_installs_the_logs_datasource_plugin(services, datasources):
    plugins = services["grafana"]["environment"]["GF_INSTALL_PLUGINS"].split(",")
    assert datasources["logs"]["type"] in plugins


def test_dashboard_provider_reads_the_mounted_dashboards(services):
    grafana = mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    (provider,) = load_yaml(GRAFANA / "provisioning/dashboards/obsconf.yaml")["providers"]
    assert grafana[provider["options"]["path"]] == "./grafana/dashboards"


def test_one_dashboard_per_service_on_the_suites_metric_names(datasources):
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    dashboards = {p.stem: json.loads(p.read_text()) for p in files}
    assert set(dashboards) == set(SERVICE_NAMES)
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    template = json.dumps(dashboards["user-service"]).replace("user-service", "{service}")
    for name, dashboard in dashboards.items():
        # all three are the same dashboard, on their own service
        assert json.dumps(dashboard) == template.replace("{service}", name)
        text = json.dumps(dashboard)
        assert f'{DEFAULT_LABELS["service"]}=\\"{name}\\"' in text
        assert DEFAULT_METRICS["requests"] in text
        assert f"{DEFAULT_METRICS['duration']}_bucket" in text
        for panel in dashboard["panels"]:
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert datasources[ref["uid"]]["type"] == ref["type"], (name, panel["title"])
        traces = [p for p in dashboard["panels"] if p["datasource"]["type"] == "jaeger"]
        assert [t["service"] for p in traces for t in p["targets"]] == [name]
        logs = [p for p in dashboard["panels"] if p["datasource"]["uid"] == "logs"]
        # the stream field the collector sets from the file name
        expected = f'"{COLLECTOR_STREAM_FIELD}":="{name}"'
        assert [t["expr"] for p in logs for t in p["targets"]] == [expected]


# --- the compose target --------------------------------------------------------------------


def test_compose_target_points_at_the_published_ports(services):
    target = load_target(ROOT / "targets/compose.yaml")
    assert not target.starts_services and target.backends.start is None

    def host_port(url: str) -> int:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        return parts.port

    for spec in target.services.values():
        assert host_port(spec.url) in published(services[spec.name]).values(), spec
    backends = {
        "prometheus": target.backends.prometheus,
        "victoria-logs": target.backends.logs.url,
        "jaeger": target.backends.traces.url,
        "nats": target.backends.nats,
        "grafana": target.backends.grafana,
    }
    for name, url in backends.items():
        assert url is not None, name
        assert host_port(url) in published(services[name]).values(), (name, url)
    # the field the collector names the service by (stack/compose/otelcol.yaml)
    assert target.backends.logs.kind == "victorialogs"
    assert target.backends.logs.options == {"stream_field": COLLECTOR_STREAM_FIELD}


# --- override files -------------------------------------------------------------------------


class Override(dict):
    """A mapping tagged `!override`: replaces the base file's value instead of merging."""


class OverrideList(list):
    """A sequence tagged `!override`."""


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: the `!override` tag (Compose v2.24.4+)."""


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    return OverrideList(loader.construct_sequence(node, deep=True))


ComposeLoader.add_constructor("!override", _override)


def _merged_compose(base: dict, override: dict) -> dict:
    """Compose's merge of an override file, for what the files here use: a value tagged
    `!override` replaces, mappings merge key by key, anything else is replaced (Compose merges
    some lists, e.g. volumes, so the override files tag every list they change)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, (Override, OverrideList)):
            merged[key] = type(value).__mro__[1](value)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged_compose(base[key], value)
        else:
            merged[key] = value
    return merged


# --- the polyglot override (Rust order, Go inventory) --------------------------------------

POLYGLOT_FILE = STACK / "docker-compose.polyglot.yml"


@pytest.fixture(scope="module")
def polyglot(services) -> dict:
    override = load_yaml(POLYGLOT_FILE)["services"]
    assert set(override) == {"order-service", "inventory-service"}
    return _merged_compose(services, override)


def test_polyglot_inventory_is_the_go_build_with_every_setting_it_reads(polyglot):
    service = polyglot["inventory-service"]
    context = Path(os.path.normpath(STACK / service["build"]["context"]))
    assert context == ROOT / "implementations" / "inventory-go"
    dockerfile = (context / service["build"]["dockerfile"]).read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) == 2 and stages[-1] == "scratch", stages  # static binary, empty runtime
    source = "\n".join(p.read_text() for p in context.glob("*.go"))
    read = set(re.findall(r'env\("(\w+)"', source)) | set(re.findall(r'Getenv\("(\w+)"', source))
    env = service["environment"]
    assert read - {"OBSCONF_FAULTS", "OTEL_BSP_SCHEDULE_DELAY"} <= set(env), read - set(env)
    assert urlsplit(env["POSTGRES_URL"]).hostname in polyglot
    assert mounts(service)[env["OBSCONF_LOG_DIR"]] == "service-logs"
    assert service["healthcheck"]["test"] == ["CMD", "/inventory-go", "healthcheck"]
    assert "healthcheck" in source and service["command"] == []


def test_polyglot_keeps_the_names_ports_and_scrape_jobs_of_the_compose_target(services, polyglot):
    for name in ("order-service", "inventory-service"):
        assert polyglot[name]["environment"]["OBSCONF_SERVICE"] == name
        assert published(polyglot[name]) == published(services[name])
        assert (STACK / polyglot[name]["build"]["context"]).name in (
            "order-rust",
            "inventory-go",
        )


# --- the Loki/Tempo flavour (override file) ------------------------------------------------
# Loki, Tempo and Grafana never run here (AGPL, no registry): their config is written from
# their documentation and checked for consistency only.

LOKI_TEMPO_FILE = STACK / "docker-compose.loki-tempo.yml"
LOKI_TEMPO_GRAFANA = GRAFANA / "loki-tempo/datasources/obsconf.yaml"


@pytest.fixture(scope="module")
def loki_tempo(services) -> dict:
    override = yaml.load(LOKI_TEMPO_FILE.read_text(), Loader=ComposeLoader)
    assert set(override["volumes"]) == {"loki-data", "tempo-data"}
    return _merged_compose(services, override["services"])


def started(stack: dict) -> dict:
    """The services `up` starts: those under no profile."""
    return {name: s for name, s in stack.items() if not s.get("profiles")}


def test_loki_tempo_replaces_victorialogs_and_jaeger(loki_tempo):
    running = started(loki_tempo)
    assert set(running) == (set(IMAGE_KEYS) - {"victoria-logs", "jaeger"}) | {
        "loki",
        "tempo",
    } | set(SERVICE_NAMES)
    pins = tomllib.loads((STACK / "versions.toml").read_text())["images"]["compose-loki-tempo"]
    assert {name: running[name]["image"] for name in pins} == pins
    for name, service in running.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in running, f"{name} depends on {dependency}, not started"
        for source in mounts(service).values():
            assert not source.startswith(".") or (STACK / source).exists(), source
        assert all(entry.startswith("127.0.0.1:") for entry in service.get("ports", []))
    assert published(running["loki"]) == {3100: 3100}
    assert published(running["tempo"]) == {3200: 3200}


def test_loki_and_tempo_configs_listen_where_compose_says(loki_tempo):
    loki, tempo = loki_tempo["loki"], loki_tempo["tempo"]
    loki_config = load_yaml(STACK / mounts(loki)[flag(loki["command"], "-config.file")])
    assert loki_config["server"]["http_listen_port"] == 3100
    assert loki_config["auth_enabled"] is False  # one tenant: the target sets no X-Scope-OrgID
    assert loki_config["limits_config"]["allow_structured_metadata"] is True  # OTLP ingestion
    assert {c["schema"] for c in loki_config["schema_config"]["configs"]} == {"v13"}
    assert mounts(loki)["/loki"] == "loki-data"
    assert loki_config["common"]["path_prefix"] == "/loki"
    tempo_config = load_yaml(STACK / mounts(tempo)[flag(tempo["command"], "-config.file")])
    assert tempo_config["server"]["http_listen_port"] == 3200
    otlp = tempo_config["distributor"]["receivers"]["otlp"]["protocols"]
    assert otlp["http"]["endpoint"] == "0.0.0.0:4318"
    storage = tempo_config["storage"]["trace"]
    assert mounts(tempo)["/var/tempo"] == "tempo-data"
    for path in (storage["wal"]["path"], storage["local"]["path"]):
        assert path.startswith("/var/tempo/")


def test_loki_tempo_services_send_traces_to_tempo_and_logs_through_the_collector(loki_tempo):
    for name in SERVICE_NAMES:
        env = loki_tempo[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318"
        assert urlsplit(env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]).hostname == "otelcol"
        assert env["OBSCONF_PORT"]  # the base file's settings survive the merge


def test_loki_tempo_collector_is_the_local_config_exporting_to_lokis_otlp_endpoint(loki_tempo):
    collector = loki_tempo["otelcol"]
    assert mounts(collector)[LOG_DIR] == "service-logs"
    config = load_yaml(STACK / mounts(collector)[flag(collector["command"], "--config")])
    expected = collector_config(Path(LOG_DIR), "0.0.0.0:4318", "http://loki:3100")
    exporter = expected["exporters"]["otlp_http"]
    del exporter["logs_endpoint"]
    exporter["endpoint"] = "http://loki:3100/otlp"  # the exporter appends /v1/logs
    assert config == expected
    assert collector["depends_on"] == {"loki": {"condition": "service_started"}}


@pytest.fixture(scope="module")
def loki_tempo_datasources() -> dict[str, dict]:
    return {ds["uid"]: ds for ds in load_yaml(LOKI_TEMPO_GRAFANA)["datasources"]}


def test_loki_tempo_grafana_links_logs_and_traces(loki_tempo, loki_tempo_datasources):
    sources = loki_tempo_datasources
    assert {uid: ds["type"] for uid, ds in sources.items()} == {
        "prometheus": "prometheus",
        "logs": "loki",
        "traces": "tempo",
    }
    grafana = mounts(loki_tempo["grafana"])
    assert (STACK / grafana["/etc/grafana/provisioning/datasources"]).resolve() == (
        LOKI_TEMPO_GRAFANA.parent.resolve()
    )
    assert loki_tempo["grafana"]["environment"]["GF_INSTALL_PLUGINS"] == ""
    for ds in sources.values():
        url = urlsplit(ds["url"])
        assert url.port in published(loki_tempo[url.hostname]), ds["url"]
    derived = sources["logs"]["jsonData"]["derivedFields"]
    assert {d["datasourceUid"] for d in derived} == {"traces"}
    # logs to trace: structured metadata set by the collector's JSON parsing, or the line
    label = next(d for d in derived if d["matcherType"] == "label")
    assert label["matcherRegex"] == "trace_id"
    regex = next(d for d in derived if d["matcherType"] == "regex")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert re.search(regex["matcherRegex"], json.dumps({"trace_id": trace_id})).group(1) == trace_id
    # trace to logs: the span's service as Loki's stream label, filtered by trace id
    tempo = sources["traces"]["jsonData"]
    to_logs = tempo["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "logs" and to_logs["filterByTraceID"] is True
    assert to_logs["tags"] == [{"key": "service.name", "value": "service_name"}]
    for link in ("tracesToMetrics", "serviceMap"):
        assert tempo[link]["datasourceUid"] in sources
    values = strings(load_yaml(LOKI_TEMPO_GRAFANA))
    assert [value for value in values if "$" in value.replace("$$", "")] == []


def test_loki_tempo_target_points_at_the_overrides_ports(loki_tempo):
    target = load_target(ROOT / "targets/compose-loki-tempo.yaml")
    assert not target.starts_services and target.backends.start is None
    logs, traces = target.backends.logs, target.backends.traces
    assert (logs.kind, traces.kind) == ("loki", "tempo")
    assert logs.options == {"service_label": "service_name"}  # service.name, as Loki labels it
    running = started(loki_tempo)
    for name, url in {
        "loki": logs.url,
        "tempo": traces.url,
        "prometheus": target.backends.prometheus,
        "grafana": target.backends.grafana,
        **{spec.name: spec.url for spec in target.services.values()},
    }.items():
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        assert parts.port in published(running[name]).values(), (name, url)
