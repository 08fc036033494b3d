"""deploy/k8s: the Kubernetes manifests, checked for structure (no cluster is needed).

What a cluster would catch late is caught here: a file kustomize would not find, a Service that
selects no pod or names a port its container lacks, a missing ConfigMap or key, an image that
drifted from stack/versions.toml, a service URL naming no Service, a collector or Jaeger config
that drifted from the local stack's, and a target file that disagrees with the port-forwards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from obsconf.conformance.clients.victorialogs import STREAM_FIELD
from obsconf.conformance.target import DEFAULT_NAMES, load_target
from obsconf.stack.components import COLLECTOR_STREAM_FIELD, collector_config, jaeger_config

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
NAMESPACE = "obsconf"
SERVICES = tuple(DEFAULT_NAMES.values())
SERVICES_IMAGE = "obsconf/reference-services:latest"
# The collector sidecar's OTLP receiver: loopback of the service pod.
OTLP_IN_POD = "127.0.0.1:4318"
# stack/versions.toml [images.upstream] key -> the Deployment running it
STACK = {
    "postgres": "postgres",
    "mongodb": "mongodb",
    "nats": "nats",
    "prometheus": "prometheus",
    "logs": "victoria-logs",
    "traces": "jaeger",
}
CLUSTER_SUFFIXES = ("", NAMESPACE, f"{NAMESPACE}.svc", f"{NAMESPACE}.svc.cluster.local")


def _resources() -> list[str]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [
        doc
        for name in _resources()
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc is not None
    ]


def _of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def _containers(objects: list[dict]) -> Iterator[tuple[str, dict]]:
    for name, deployment in _of_kind(objects, "Deployment").items():
        for container in _pod(deployment)["containers"]:
            yield name, container


def _container(objects: list[dict], deployment: str, container: str) -> dict:
    return next(c for d, c in _containers(objects) if d == deployment and c["name"] == container)


def _service_name(host: str) -> str:
    name, _, suffix = host.partition(".")
    assert suffix in CLUSTER_SUFFIXES, f"{host} is not a Service of namespace {NAMESPACE}"
    return name


def _assert_service_port(objects: list[dict], host: str, port: int) -> None:
    service = _of_kind(objects, "Service").get(_service_name(host))
    assert service is not None, f"{host}: no such Service"
    assert port in [p["port"] for p in service["spec"]["ports"]], f"{host}: no port {port}"


def test_kustomization_lists_every_manifest_once() -> None:
    resources = _resources()
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert len(resources) == len(set(resources)) and set(resources) == on_disk


def test_every_object_is_named_and_in_the_namespace(objects: list[dict]) -> None:
    seen = set()
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name"), obj
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, f"{key} defined twice"
        seen.add(key)
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, key
    assert {name for kind, name in seen if kind == "Deployment"} == {*STACK.values(), *SERVICES}


def test_services_select_one_deployment_and_existing_ports(objects: list[dict]) -> None:
    deployments = _of_kind(objects, "Deployment")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    for name, service in _of_kind(objects, "Service").items():
        selector = service["spec"]["selector"].items()
        selected = [
            d
            for d in deployments.values()
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} Deployments"
        ports = [p for c in _pod(selected[0])["containers"] for p in c.get("ports", [])]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            field = "name" if isinstance(target, str) else "containerPort"
            assert any(p.get(field) == target for p in ports), f"Service {name}: {target}"


def test_config_map_references_exist(objects: list[dict]) -> None:
    config_maps = {name: cm.get("data", {}) for name, cm in _of_kind(objects, "ConfigMap").items()}
    for name, deployment in _of_kind(objects, "Deployment").items():
        volumes = {v["name"]: v for v in _pod(deployment).get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                data = config_maps[volume["configMap"]["name"]]
                assert all(item["key"] in data for item in volume["configMap"].get("items", []))
        for container in _pod(deployment)["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= set(volumes), name
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, name
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref is not None:
                    assert ref["key"] in config_maps[ref["name"]], f"{name}: {ref}"


def test_images_resources_and_probes(objects: list[dict]) -> None:
    upstream = tomllib.loads((REPO / "stack" / "versions.toml").read_text())["images"]["upstream"]
    for component, deployment in STACK.items():
        assert _container(objects, deployment, deployment)["image"] == upstream[component]
    for name, container in _containers(objects):
        assert container["resources"]["requests"].keys() >= {"cpu", "memory"}, name
        if name in SERVICES:
            expected = SERVICES_IMAGE if container["name"] == "service" else upstream["collector"]
            assert container["image"] == expected
    for name in SERVICES:
        service = _container(objects, name, "service")
        for probe in ("readinessProbe", "livenessProbe"):
            assert service[probe]["httpGet"] == {"path": "/health", "port": "http"}, name
        role = next(role for role, service_name in DEFAULT_NAMES.items() if service_name == name)
        script = service["args"][0]
        assert (
            f"python -m obsconf.reference_services.{role} " in script
            and f"/logs/{name}.log" in script
        )
        port = {e["name"]: e["value"] for e in service["env"]}["OBSCONF_PORT"]
        assert service["ports"] == [{"name": "http", "containerPort": int(port)}]


def test_service_env_urls_point_at_services(objects: list[dict]) -> None:
    env = _of_kind(objects, "ConfigMap")["services-env"]["data"]
    expected = {
        "DATABASE_URL": "postgres",
        "MONGODB_URL": "mongodb",
        "NATS_URL": "nats",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger",
    }
    for key, service in expected.items():
        assert _service_name(urlsplit(env[key]).hostname) == service, key
    literal = [e.get("value", "") for _, c in _containers(objects) for e in c.get("env", [])]
    for value in [*env.values(), *literal]:
        if "://" in value:
            url = urlsplit(value)
            _assert_service_port(objects, url.hostname, url.port)


def test_prometheus_scrapes_the_three_services(objects: list[dict]) -> None:
    data = _of_kind(objects, "ConfigMap")["prometheus-config"]["data"]["prometheus.yml"]
    jobs = {job["job_name"]: job for job in yaml.safe_load(data)["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, job in jobs.items():
        [static] = job["static_configs"]
        assert static["labels"] == {"service": name}
        [address] = static["targets"]
        host, port = address.rsplit(":", 1)
        assert _service_name(host) == name
        _assert_service_port(objects, host, int(port))


def _mount(container: dict, volume: str) -> str:
    return next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume)


def test_collector_and_jaeger_configs_match_the_local_stack(objects: list[dict]) -> None:
    config_maps = _of_kind(objects, "ConfigMap")
    services = _of_kind(objects, "Service")
    http = next(
        p["port"] for p in services["victoria-logs"]["spec"]["ports"] if p["name"] == "http"
    )
    for name in SERVICES:
        collector = _container(objects, name, "otel-collector")
        assert _mount(collector, "logs") == _mount(_container(objects, name, "service"), "logs")
        config_dir = _mount(collector, "collector-config")
        assert collector["args"] == [f"--config={config_dir}/config.yaml"]
        pod = _pod(_of_kind(objects, "Deployment")[name])
        volume = next(v for v in pod["volumes"] if v["name"] == "collector-config")
        assert volume["configMap"]["name"] == "otel-collector", name
        # Its OTLP receiver listens inside the pod only, on a port no container of it uses.
        ports = {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
        assert int(OTLP_IN_POD.rsplit(":", 1)[1]) not in ports, name
    expected = collector_config(
        Path(_mount(collector, "logs")), OTLP_IN_POD, f"http://victoria-logs:{http}"
    )
    data = config_maps["otel-collector"]["data"]["config.yaml"]
    assert data == yaml.safe_dump(expected, sort_keys=False)

    jaeger = _container(objects, "jaeger", "jaeger")
    assert jaeger["args"] == [f"--config={_mount(jaeger, 'config')}/config.yaml"]
    port = {p["name"]: p["containerPort"] for p in jaeger["ports"]}
    names = {"traces": "query", "traces-grpc": "query-grpc", "traces-health": "health"}
    names |= {"otlp": "otlp-http", "otlp-grpc": "otlp-grpc"}
    listen = {key: f"0.0.0.0:{port[name]}" for key, name in names.items()}
    got = yaml.safe_load(config_maps["jaeger-config"]["data"]["config.yaml"])
    assert got == jaeger_config(listen)


def test_target_and_port_forwards_agree(objects: list[dict]) -> None:
    target = load_target(REPO / "targets" / "k8s.yaml")
    assert not target.starts_services and target.backends.start is None
    # The suite queries the stream field the collector sidecars set.
    assert target.backends.logs.kind == "victorialogs"
    stream_field = target.backends.logs.options.get("stream_field", STREAM_FIELD)
    assert stream_field == COLLECTOR_STREAM_FIELD
    assert [target.service(role).name for role in ("user", "order", "inventory")] == list(SERVICES)
    script = K8S / "port-forward.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    forwards = re.findall(r'"svc/([a-z0-9-]+) (\d+):(\d+)"', script.read_text())
    by_local = {int(local): (service, int(remote)) for service, local, remote in forwards}
    urls = {spec.name: spec.url for spec in target.services.values()}
    b = target.backends
    urls |= {
        "prometheus": b.prometheus,
        "victoria-logs": b.logs.url,
        "jaeger": b.traces.url,
        "nats": b.nats,
    }
    assert len(by_local) == len(forwards) == len(urls)
    for service, url in urls.items():
        parts = urlsplit(url)
        assert parts.hostname in ("127.0.0.1", "localhost"), url
        assert by_local[parts.port][0] == service, url
        _assert_service_port(objects, service, by_local[parts.port][1])


def test_kubectl_kustomize_builds(objects: list[dict]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not run")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    rendered = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, rendered)) == sorted(map(key, objects))
