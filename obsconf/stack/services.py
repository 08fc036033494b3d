"""Services started by command: the one way the harness starts an implementation.

A target says, per service (or once for all), a command, a working directory and extra
environment (a `StartCommand`), all templated from the contract's placeholders
(conformance/contract.py). For each service the harness picks a free port, starts the
command in its own process group with stdout and stderr appended to `<log_dir>/<service>.log`
(the file the log shipper tails), gives it the contract's environment (`CONTRACT_ENV`),
registers it as a Prometheus scrape target (job = service name, plus the target's service
label), waits until `GET /health` answers 200, and stops the whole group at the end.

    with ServiceProcesses(endpoints, {"user-service": ("user", command), ...}) as services:
        httpx.get(services.urls["user-service"] + "/health")

Our reference services are one predefined command among others (`PREDEFINED["reference"]`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from obsconf.conformance.contract import (
    BUILD_KEY,
    StartCommand,
    contract_environment,
    render,
    run_values,
    stack_values,
)
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.local import register_scrape_target
from obsconf.stack.native import BuiltBinaries
from obsconf.stack.ports import free_port
from obsconf.stack.process import ManagedProcess
from obsconf.stack.waiting import PollTimeout, poll

CALL_HOST = "127.0.0.1"  # where the suite calls the services (they bind endpoints.service_host)
LOG_TAIL_LINES = 30
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


class ServiceFailed(RuntimeError):
    """A service did not become healthy; the message names its command and log tail."""


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
        running = [(p, p.proc) for p in self.processes.values() if p.proc is not None]
        for process, proc in running:
            if process.exited() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for _, proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _, proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
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
