"""The local backend: every stack component as a subprocess of ours, under one run dir.

    with LocalStack() as stack:
        print(stack.endpoints.prometheus)

Start-up checks every binary first, launches all components, then waits for each one's real
readiness. Any failure stops everything already started and names the component with its
last log lines. Stop is idempotent and also runs on SIGINT/SIGTERM via the caller's handler
(see `obsconf.stack.signals`); children die with us even on SIGKILL (parent-death signal).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from obsconf.stack import binaries, orphans
from obsconf.stack.components import ALL, Component, RunContext, endpoints_of
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.ports import port_in_use_message
from obsconf.stack.process import ManagedProcess
from obsconf.stack.waiting import PollTimeout, StopPolling, poll

READY_TIMEOUT = 30.0
PORT_RETRIES = 3


class ComponentFailed(RuntimeError):
    """A component did not become ready; the message carries its log tail."""


class LocalStack:
    """All backends as local processes; `endpoints` is set once every one is ready."""

    def __init__(self, run_dir: Path | None = None, keep_run_dir: bool = False) -> None:
        self._given_run_dir = run_dir
        self.keep_run_dir = keep_run_dir or run_dir is not None
        self.run_dir: Path | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.endpoints: Endpoints | None = None
        self.timings: dict[str, float] = {}
        self._started_at: dict[str, float] = {}  # component -> launch time (monotonic)
        self._ctx: RunContext | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Endpoints:
        needed = {c.binary for c in ALL} | {"initdb"}
        found = binaries.require(*sorted(needed))  # before anything starts
        if self._given_run_dir:
            self.run_dir = self._given_run_dir
            self.run_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.run_dir = Path(tempfile.mkdtemp(prefix="obsconf-stack-"))
        self.run_dir.chmod(0o755)  # postgres runs as its own user when we are root
        orphans.claim(self.run_dir)  # a later `obsconf up`/`down` cleans it if we are killed
        ctx = self._ctx = RunContext(run_dir=self.run_dir, binaries=found)
        began = time.monotonic()
        try:
            for component in ALL:
                self._launch(component, ctx)
            for component in ALL:
                self._await_ready(component, ctx)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began
        self.endpoints = endpoints_of(ctx, "local")
        return self.endpoints

    def stop(self) -> None:
        """Stop every component (reverse start order) and remove the run dir. Idempotent."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()
        if self.run_dir and not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.endpoints = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outages ----------------------------------------------------------------------------

    def stop_component(self, name: str) -> None:
        """Stop one running component (an outage); `start_component` brings it back."""
        self._component(name)
        self.processes[name].stop()

    def start_component(self, name: str) -> None:
        """Start a stopped component again on its ports and data, and wait until ready."""
        component = self._component(name)
        assert self._ctx is not None
        process = self.processes[name]
        if process.exited() is None:
            return
        process.start()
        self._started_at[name] = time.monotonic()
        self._await_ready(component, self._ctx)

    def _component(self, name: str) -> Component:
        if name not in self.processes:
            raise ValueError(f"no running stack component {name!r}; have {sorted(self.processes)}")
        return next(c for c in ALL if c.name == name)

    # -- helpers ----------------------------------------------------------------------------

    def _launch(self, component: Component, ctx: RunContext) -> None:
        ctx.pick(*component.ports)
        if component.prepare:
            started = time.monotonic()
            component.prepare(ctx)
            self.timings[f"{component.name}.prepare"] = time.monotonic() - started
        process = ManagedProcess(
            component.name,
            component.argv(ctx),
            ctx.run_dir / "logs" / f"{component.name}.log",
            user=component.user(),
        )
        process.start()
        self.processes[component.name] = process
        self._started_at[component.name] = time.monotonic()

    def _await_ready(self, component: Component, ctx: RunContext) -> None:
        for attempt in range(PORT_RETRIES + 1):
            process = self.processes[component.name]

            def check(process: ManagedProcess = process) -> bool:
                code = process.exited()
                if code is not None:
                    raise ComponentExited(code)
                return component.ready(ctx)

            try:
                poll(
                    check,
                    timeout=READY_TIMEOUT,
                    describe=f"{component.name} to be ready",
                    interval=0.05,
                    max_interval=0.25,
                )
                self.timings[component.name] = time.monotonic() - self._started_at[component.name]
                return
            except ComponentExited as exited:
                tail = process.log_tail()
                if port_in_use_message(tail) and attempt < PORT_RETRIES:
                    process.stop()
                    self._launch(component, ctx)  # lost a port race: pick new ports
                    continue
                raise ComponentFailed(
                    self._failure(component, f"exited with code {exited.code}")
                ) from None
            except PollTimeout as timeout:
                raise ComponentFailed(self._failure(component, str(timeout))) from None

    def _failure(self, component: Component, why: str) -> str:
        process = self.processes[component.name]
        return (
            f"stack component '{component.name}' failed to start: {why}\n"
            f"command: {' '.join(process.argv)}\n"
            f"last log lines ({process.log_path}):\n{process.log_tail(30)}"
        )


class ComponentExited(StopPolling):
    def __init__(self, code: int) -> None:
        super().__init__(f"exited with code {code}")
        self.code = code


def register_scrape_target(
    scrape_dir: Path, job: str, address: str, labels: dict | None = None
) -> None:
    """Write a Prometheus file_sd entry atomically (Prometheus never sees half a file)."""
    entry = [{"targets": [address], "labels": {"job": job, **(labels or {})}}]
    final = scrape_dir / f"{job}.json"
    temp = scrape_dir / f".{job}.json.tmp"
    temp.write_text(json.dumps(entry))
    temp.replace(final)
