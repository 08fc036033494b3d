"""The container backend: every stack component in a container, started through testcontainers.

    with ContainerStack() as stack:
        print(stack.endpoints.prometheus)

One class per component, each a testcontainers `DockerContainer` with its image (upstream by
default, see `obsconf.stack.images`), its config mounted from the run dir, its ports published on
127.0.0.1 only, and the same real readiness round trip as the local backend. All containers
share one network; Prometheus reaches services running on this host through the host gateway
(`host.docker.internal`), so services bind all interfaces when this backend runs. The result is
the same `Endpoints` the local backend gives: the suite cannot tell them apart.

testcontainers' reaper (Ryuk) needs an image from a registry, so it is off: every container
and the network carry `obsconf.stack=<run id>` and `obsconf.pid=<our pid>` labels, `stop()`
removes them, and `sweep()` removes those whose owner process is gone (after a SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # read when testcontainers loads

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from obsconf.stack import components
from obsconf.stack.components import Component, RunContext, endpoints_of
from obsconf.stack.docker_engine import docker_client
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.images import ImagesMissing, image_for, image_present, image_set
from obsconf.stack.local import ComponentExited, ComponentFailed
from obsconf.stack.process import pid_alive
from obsconf.stack.waiting import PollTimeout, poll

if TYPE_CHECKING:
    from docker import DockerClient

READY_TIMEOUT = 60.0
LABEL_STACK = "obsconf.stack"
LABEL_PID = "obsconf.pid"
HOST_GATEWAY = "host.docker.internal"


class StackContainer(DockerContainer):
    """One stack component in a container. Subclasses set what differs."""

    component: Component  # the local definition: its name and readiness round trip
    image_key: str  # key in [images.*] of stack/versions.toml
    alias: str  # host name on the stack network
    published: Mapping[str, int] = {}  # port name -> container port, published on 127.0.0.1

    def __init__(self, image: str, network: Network, labels: dict[str, str]) -> None:
        super().__init__(image)
        self.with_network(network).with_network_aliases(self.alias)
        self.with_name(f"obsconf-{labels[LABEL_STACK]}-{self.alias}")
        self.with_kwargs(labels=labels)
        for container_port in self.published.values():  # loopback only, a free host port
            self.ports[f"{container_port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]

    def configure(self, ctx: RunContext) -> None:
        """Set command, environment and mounts (config files are written under ctx.run_dir)."""

    def add_kwargs(self, **kwargs: object) -> None:
        """Extra docker `create` arguments, merged (testcontainers' with_kwargs replaces)."""
        self.with_kwargs(**{**self._kwargs, **kwargs})

    def host_ports(self) -> dict[str, int]:
        """Port name -> the host port Docker published it on (none once it has exited)."""
        wrapped = self.get_wrapped_container()
        wrapped.reload()
        bindings = wrapped.attrs["NetworkSettings"]["Ports"] or {}
        return {
            name: int(bindings[f"{port}/tcp"][0]["HostPort"])
            for name, port in self.published.items()
            if bindings.get(f"{port}/tcp")
        }

    def exit_code(self) -> int | None:
        wrapped = self.get_wrapped_container()
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            return int(wrapped.attrs["State"]["ExitCode"])
        return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            out = self.get_wrapped_container().logs(tail=lines).decode(errors="replace")
        except Exception as error:  # the container may already be gone
            return f"(logs unavailable: {error})"
        return out.rstrip() or "(no output)"


class PostgresContainer(StackContainer):
    component = components.POSTGRES
    image_key = "postgres"
    alias = "postgres"
    published = {"postgres": 5432}

    def configure(self, ctx: RunContext) -> None:
        self.with_env("POSTGRES_USER", components.PG_USER)
        self.with_env("POSTGRES_DB", components.PG_DATABASE)
        self.with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
        settings = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
        self.with_command(["postgres", *[a for s in settings for a in ("-c", s)]])


class MongoContainer(StackContainer):
    component = components.MONGODB
    image_key = "mongodb"
    alias = "mongodb"
    published = {"mongodb": 27017}


class NatsContainer(StackContainer):
    component = components.NATS
    image_key = "nats"
    alias = "nats"
    published = {"nats": 4222, "nats-monitor": 8222}

    def configure(self, ctx: RunContext) -> None:
        self.with_command(["-js", "-m", "8222", "-sd", "/tmp/nats"])


class LogStoreContainer(StackContainer):
    component = components.LOGS
    image_key = "logs"
    alias = "victoria-logs"
    published = {"logs": 9428}

    def configure(self, ctx: RunContext) -> None:
        self.with_command(
            [
                "-storageDataPath=/victoria-logs-data",
                "-httpListenAddr=:9428",
                "-retentionPeriod=7d",
                "-loggerLevel=WARN",
            ]
        )


class CollectorContainer(StackContainer):
    """The log path: tails the services' log dir (a read-only bind mount), takes OTLP logs."""

    component = components.COLLECTOR
    image_key = "collector"
    alias = "otelcol"
    published = {"otlp-logs": 4318}

    def configure(self, ctx: RunContext) -> None:
        config = components.collector_config(
            Path("/logs"), "0.0.0.0:4318", f"http://{LogStoreContainer.alias}:9428"
        )
        conf = ctx.dir("collector") / "config.yaml"
        conf.write_text(yaml.safe_dump(config, sort_keys=False))
        self.with_volume_mapping(str(ctx.dir("service-logs")), "/logs", "ro")
        self.with_volume_mapping(str(conf), "/etc/otelcol-contrib/config.yaml", "ro")


class TraceStoreContainer(StackContainer):
    component = components.TRACES
    image_key = "traces"
    alias = "jaeger"
    published = {"traces": 16686, "traces-health": 13133, "otlp": 4318}
    inside = {"traces-grpc": 16685, "otlp-grpc": 4317}

    def configure(self, ctx: RunContext) -> None:
        ports = {**self.published, **self.inside}
        listen = {name: f"0.0.0.0:{port}" for name, port in ports.items()}
        conf = ctx.dir("jaeger") / "jaeger.yaml"
        conf.write_text(yaml.safe_dump(components.jaeger_config(listen), sort_keys=False))
        self.with_volume_mapping(str(conf), "/etc/jaeger/config.yaml", "ro")
        self.with_command(["--config=/etc/jaeger/config.yaml"])


class PrometheusContainer(StackContainer):
    component = components.PROMETHEUS
    image_key = "prometheus"
    alias = "prometheus"
    published = {"prometheus": 9090}

    def configure(self, ctx: RunContext) -> None:
        conf = ctx.dir("prometheus") / "prometheus.yml"
        conf.write_text(
            yaml.safe_dump(components.prometheus_config(Path("/etc/prometheus/targets")))
        )
        self.with_volume_mapping(str(conf), "/etc/prometheus/prometheus.yml", "ro")
        self.with_volume_mapping(str(ctx.dir("scrape-targets")), "/etc/prometheus/targets", "ro")
        self.add_kwargs(extra_hosts={HOST_GATEWAY: "host-gateway"})
        self.with_command(
            [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--log.level=warn",
            ]
        )


# Start order as in the local backend: the log store before the shipper that feeds it.
CONTAINERS: tuple[type[StackContainer], ...] = (
    LogStoreContainer,
    TraceStoreContainer,
    PrometheusContainer,
    NatsContainer,
    MongoContainer,
    CollectorContainer,
    PostgresContainer,
)


def stack_images(
    set_name: str | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Image key -> image reference, for every container of the stack."""
    return {cls.image_key: image_for(cls.image_key, set_name, overrides) for cls in CONTAINERS}


class ContainerStack:
    """All backends as containers on one network; `endpoints` is set once every one is ready."""

    def __init__(
        self, images: str | None = None, image_overrides: Mapping[str, str] | None = None
    ) -> None:
        self.image_set = image_set(images)
        self.images = stack_images(self.image_set, image_overrides)
        self.run_id = uuid.uuid4().hex[:8]
        self.labels = {LABEL_STACK: self.run_id, LABEL_PID: str(os.getpid())}
        self.run_dir: Path | None = None
        self.network: Network | None = None
        self.containers: dict[str, StackContainer] = {}
        self.endpoints: Endpoints | None = None
        self.timings: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Endpoints:
        client = docker_client()  # NoDockerEngine, with what to do, before anything starts
        try:
            sweep(client)
            self._require_images(client)
        finally:
            client.close()
        self.run_dir = Path(tempfile.mkdtemp(prefix="obsconf-containers-"))
        self.run_dir.chmod(0o755)  # Prometheus upstream runs as nobody and reads our mounts
        ctx = RunContext(run_dir=self.run_dir, binaries={})
        began = time.monotonic()
        try:
            self.network = Network(docker_network_kw={"labels": self.labels}).create()
            for cls in CONTAINERS:
                container = cls(self.images[cls.image_key], self.network, self.labels)
                container.configure(ctx)
                self.containers[cls.image_key] = container  # registered first: stop() sees it
            # Created and started side by side: on vfs each start copies the image's files.
            # Leaving the `with` waits for every start, so stop() never races a late create.
            with ThreadPoolExecutor(max_workers=len(self.containers)) as pool:
                for started in [pool.submit(self._launch, c) for c in self.containers.values()]:
                    started.result()
            for container in self.containers.values():
                ctx.ports.update(container.host_ports())
            for container in self.containers.values():
                self._await_ready(container, ctx)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began
        self.endpoints = endpoints_of(
            ctx, "containers", service_host="0.0.0.0", scrape_host=HOST_GATEWAY
        )
        return self.endpoints

    def stop(self) -> None:
        """Remove every container and the network, and the run dir. Idempotent."""
        for container in reversed(list(self.containers.values())):
            with contextlib.suppress(Exception):  # already gone: nothing to remove
                container.stop()
        self.containers.clear()
        if self.network is not None:
            with contextlib.suppress(Exception):
                self.network.remove()
            self.network = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        self.endpoints = None

    def __enter__(self) -> ContainerStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------------------

    def _launch(self, container: StackContainer) -> None:
        launched = time.monotonic()
        container.start()
        self.timings[f"{container.component.name}.start"] = time.monotonic() - launched

    def _require_images(self, client: DockerClient) -> None:
        import docker.errors

        missing = []
        for key, ref in self.images.items():
            if image_present(client, ref):
                continue
            try:
                client.images.pull(ref)
            except docker.errors.DockerException as error:
                missing.append(f"{key}: {ref} ({str(error).splitlines()[0][:120]})")
        if missing:
            hint = (
                "build them with `obsconf images`"
                if self.image_set == "local"
                else "no registry answers? build the local set with `obsconf images` and use it "
                "with OBSCONF_IMAGES=local (or `--images local`)"
            )
            raise ImagesMissing(
                "container image(s) not present and not pullable:\n  "
                + "\n  ".join(missing)
                + f"\n{hint}"
            )

    def _await_ready(self, container: StackContainer, ctx: RunContext) -> None:
        name = container.component.name

        def check() -> bool:
            code = container.exit_code()
            if code is not None:
                raise ComponentExited(code)
            return container.component.ready(ctx)

        started = time.monotonic()
        try:
            poll(
                check,
                timeout=READY_TIMEOUT,
                describe=f"{name} container to be ready",
                interval=0.1,
                max_interval=0.5,
            )
        except ComponentExited as exited:
            raise ComponentFailed(
                self._failure(container, f"exited with code {exited.code}")
            ) from None
        except PollTimeout as timeout:
            raise ComponentFailed(self._failure(container, str(timeout))) from None
        self.timings[name] = time.monotonic() - started

    def _failure(self, container: StackContainer, why: str) -> str:
        return (
            f"stack container '{container.component.name}' ({container.image}) failed to "
            f"start: {why}\nlast log lines:\n{container.log_tail(30)}"
        )


def sweep(client: DockerClient | None = None) -> list[str]:
    """Remove obsconf containers and networks whose owner process is gone; returns their names."""
    own = client is None
    client = client or docker_client()
    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL_STACK}):
            if not _owner_alive(container.labels.get(LABEL_PID, "")):
                container.remove(force=True, v=True)
                removed.append(container.name or container.short_id)  # listed: always named
        for network in client.networks.list(filters={"label": LABEL_STACK}):
            if not _owner_alive(network.attrs.get("Labels", {}).get(LABEL_PID, "")):
                network.remove()
                removed.append(f"network {network.name}")
    finally:
        if own:
            client.close()
    return removed


def _owner_alive(pid_label: str) -> bool:
    """Whether the process named by an `obsconf.pid` label still exists (unparsable: gone)."""
    return pid_label.isdigit() and pid_alive(int(pid_label))
