"""Start the reference services against a running stack, each as a child process.

    with ReferenceServices(endpoints) as services:
        httpx.post(services.urls["user-service"] + "/api/users", json=...)

Each service writes its JSON logs to `<endpoints.log_dir>/<service>.log` (the log shipper
tails that directory) and is registered as a Prometheus scrape target (job = service name).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

import reference_services
from reference_services.faults import parse_faults
from stack.endpoints import Endpoints
from stack.local import register_scrape_target
from stack.ports import free_port
from stack.process import ManagedProcess
from stack.waiting import PollTimeout, poll

READY_TIMEOUT = 30.0
HOST = "127.0.0.1"  # where the suite calls the services (they bind endpoints.service_host)


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # service.name, log file stem, Prometheus job
    module: str  # python -m <module>


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("user-service", "reference_services.user"),
    ServiceSpec("order-service", "reference_services.order"),
    ServiceSpec("inventory-service", "reference_services.inventory"),
)
SERVICE_NAMES = tuple(spec.name for spec in SERVICES)


class ServiceFailed(RuntimeError):
    """A service did not become healthy; the message carries its last log lines."""


class ReferenceServices:
    """The three reference services as child processes; `urls` maps name -> base URL."""

    def __init__(
        self,
        endpoints: Endpoints,
        faults: Sequence[str] = (),
        run_dir: Path | None = None,
        services: Sequence[str] = SERVICE_NAMES,
        telemetry: bool = True,
        consumer_relation: str = "parent",
    ) -> None:
        parse_faults(",".join(faults))  # unknown names fail here, before anything starts
        unknown = sorted(set(services) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; valid: {list(SERVICE_NAMES)}")
        self.endpoints = endpoints
        self.faults = tuple(faults)
        self.run_dir = run_dir
        self.telemetry = telemetry
        self.consumer_relation = consumer_relation
        self.specs = {spec.name: spec for spec in SERVICES if spec.name in services}
        self.processes: dict[str, ManagedProcess] = {}
        self.ports: dict[str, int] = {}
        self.urls: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Launch every service, wait until each answers /health with 200; returns `urls`."""
        try:
            for name in self.specs:
                self._launch(name)
            for name in self.specs:
                self._await_healthy(name)
        except BaseException:
            self.stop()
            raise
        return dict(self.urls)

    def stop(self) -> None:
        """Stop every service and unregister its scrape target. Idempotent."""
        for name in list(self.processes):
            self.stop_service(name)
            (self._scrape_dir / f"{name}.json").unlink(missing_ok=True)
        self.processes.clear()

    def stop_service(self, name: str) -> None:
        """Stop one service (its port and scrape target are kept)."""
        process = self.processes.get(name)
        if process is not None:
            process.stop()

    def __enter__(self) -> ReferenceServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------------------

    @property
    def _scrape_dir(self) -> Path:
        return Path(self.endpoints.scrape_dir or tempfile.gettempdir())

    def log_path(self, name: str) -> Path:
        base = self.endpoints.log_dir or str(self.run_dir or tempfile.gettempdir())
        return Path(base) / f"{name}.log"

    def _environment(self, name: str) -> dict[str, str]:
        package_root = str(Path(reference_services.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env.update(
            OBSCONF_HOST=self.endpoints.service_host,
            OBSCONF_PORT=str(self.ports[name]),
            DATABASE_URL=self.endpoints.postgres,
            MONGODB_URL=self.endpoints.mongodb,
            NATS_URL=self.endpoints.nats,
            OTEL_EXPORTER_OTLP_ENDPOINT=self.endpoints.otlp,
            OBSCONF_FAULTS=",".join(self.faults),
            OBSCONF_TELEMETRY="on" if self.telemetry else "off",
            OBSCONF_CONSUMER_RELATION=self.consumer_relation,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")])),
        )
        return env

    def _launch(self, name: str) -> None:
        spec = self.specs[name]
        port = self.ports.setdefault(name, free_port())
        process = ManagedProcess(
            name,
            [sys.executable, "-m", spec.module],
            self.log_path(name),
            env=self._environment(name),
            cwd=self.run_dir,
        )
        process.start()
        self.processes[name] = process
        self.urls[name] = f"http://{HOST}:{port}"
        if self.endpoints.scrape_dir:
            register_scrape_target(
                Path(self.endpoints.scrape_dir),
                name,
                f"{self.endpoints.scrape_host}:{port}",
                {"service": name},
            )

    def _await_healthy(self, name: str) -> None:
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
                timeout=READY_TIMEOUT,
                describe=f"{name} /health to answer 200",
                interval=0.1,
                max_interval=0.3,
            )
            why = None if status == 200 else f"exited with code {process.exited()}"
        except PollTimeout as error:
            why = str(error)
        if why is not None:
            raise ServiceFailed(
                f"reference service '{name}' did not become healthy: {why}\n"
                f"command: {' '.join(process.argv)}\n"
                f"last log lines ({process.log_path}):\n{process.log_tail(30)}"
            )
