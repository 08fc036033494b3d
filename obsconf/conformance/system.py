"""The system under test as the suite sees it: service URLs, backend clients, names.

`open_system(target, ...)` starts what the target asks to be started (the local stack, the
services through their start commands, with fault modes if the commands take them), checks
every URL answers once — one clear error per unreachable URL instead of a timeout per test —
and returns a `System`; `close()` stops whatever was started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import httpx

from obsconf.conformance.clients.logs import LogStore
from obsconf.conformance.clients.prometheus import PrometheusClient
from obsconf.conformance.clients.registry import DEFAULT_KIND, StoreSpec, open_store
from obsconf.conformance.clients.traces import TraceStore
from obsconf.conformance.contract import run_values
from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.target import ROLES, Target
from obsconf.stack.backends import STARTED_KINDS, make_stack, stack_kind
from obsconf.stack.binaries import MissingBinary
from obsconf.stack.docker_engine import NoDockerEngine
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.images import ImagesMissing
from obsconf.stack.local import ComponentFailed
from obsconf.stack.proxy import TcpProxy, proxied_url, proxy_for
from obsconf.stack.runlock import StackBusy, lock_stack
from obsconf.stack.services import ServiceFailed, ServiceProcesses

Closers = list[Callable[[], object]]  # what stops what was started, called last first


class Unreachable(RuntimeError):
    """A URL the target names does not answer."""


# What can stop a system from opening: each says what failed and what to do, in one message.
STARTUP_ERRORS: tuple[type[BaseException], ...] = (
    Unreachable,
    ValueError,
    MissingBinary,
    ComponentFailed,
    NoDockerEngine,
    ImagesMissing,
    ServiceFailed,
    StackBusy,
)


@dataclass
class System:
    target: Target
    urls: dict[str, str]  # role -> base URL
    names: dict[str, str]  # role -> service name
    prometheus: PrometheusClient
    logs: LogStore
    traces: TraceStore
    nats_url: str | None
    grafana_url: str | None = None
    opened_at: float = field(default_factory=time.time)  # epoch s, before services started
    journal: list[Call] = field(default_factory=list)  # every call any driver made
    # dependency -> the proxy the started services reach it through (cut = outage); empty
    # when the harness did not start the services
    dependencies: dict[str, TcpProxy] = field(default_factory=dict)
    _closers: Closers = field(default_factory=list)

    def driver(self, timeout: float = 10.0) -> Driver:
        """A request driver whose calls also go into the run's journal."""
        return Driver(self.urls, timeout=timeout, journal=self.journal)

    def close(self) -> None:
        self.prometheus.close()
        while self._closers:
            self._closers.pop()()


def _check(url: str, what: str) -> None:
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.TransportError as error:
        raise Unreachable(f"{what} is unreachable at {url}: {error}") from error
    if response.status_code >= 500:
        raise Unreachable(f"{what} at {url} answered {response.status_code}: {response.text[:200]}")


def stack_store(role: str, endpoints: Endpoints | None, spec: StoreSpec | None = None) -> Any:
    """The log or trace store adapter for `spec` (default: the role's default kind), at the
    spec's URL or else the stack's, with the field the stack's log path names services by."""
    spec = spec or StoreSpec(DEFAULT_KIND[role])
    if spec.url is None and endpoints is not None:
        options = dict(spec.options)
        stream_field = endpoints.kinds.get("log_stream_field")
        if role == "logs" and spec.kind == "victorialogs" and stream_field:
            options.setdefault("stream_field", stream_field)
        spec = StoreSpec(spec.kind, getattr(endpoints, role), options)
    return open_store(role, spec)


# The dependencies the harness can take away from the services it starts (RES outages).
OUTAGE_DEPENDENCIES = ("postgres", "nats")


def route_through_proxies(
    endpoints: Endpoints, proxies: dict[str, TcpProxy], closers: Closers
) -> Endpoints:
    """`endpoints` with each outage dependency behind a fresh proxy (added to `proxies`)."""
    routed: dict[str, Any] = {}  # str fields of Endpoints; replace() cannot tell which by name
    for name in OUTAGE_DEPENDENCIES:
        proxy = proxy_for(getattr(endpoints, name))
        closers.append(proxy.stop)
        proxies[name] = proxy
        routed[name] = proxied_url(getattr(endpoints, name), proxy)
    return replace(endpoints, **routed)


def start_services(
    target: Target,
    endpoints: Endpoints | None,
    faults: Sequence[str],
    closers: Closers,
    proxies: dict[str, TcpProxy] | None = None,
) -> dict[str, str]:
    """Start the services the target gives start commands for; role -> base URL of every
    service (started, or at the target's URL). The stop goes onto `closers` first. With
    `proxies`, the services reach the outage dependencies through proxies put there."""
    started = {  # role -> (service name, start command)
        role: (spec.name, spec.start)
        for role, spec in target.services.items()
        if spec.start is not None
    }
    if faults and not any(start.uses("faults") for _, start in started.values()):
        raise ValueError(
            f"fault modes ({', '.join(faults)}) need start commands that take them "
            f"(the {{faults}} placeholder); target {target.name}'s do not"
        )
    urls: dict[str, str] = {}
    for role, spec in target.services.items():
        if spec.start is None:
            if spec.url is None:  # the target parser refuses such a service
                raise ValueError(f"target {target.name}: services.{role} has no url to reach")
            urls[role] = spec.url
    if not started:
        return urls
    if endpoints is None or not (endpoints.log_dir and endpoints.scrape_dir):
        raise ValueError(
            f"target {target.name} starts its services, but the stack's endpoints name no log "
            "or scrape directory: start the stack here (--stack local|containers|auto)"
        )
    if target.logs == "otlp" and not endpoints.otlp_logs:
        raise ValueError(
            f"target {target.name} ships its logs over OTLP (capabilities.logs: otlp), but this "
            "stack's log path takes no OTLP log records (the local stack's collector does)"
        )
    if proxies is not None:
        endpoints = route_through_proxies(endpoints, proxies, closers)
    services = ServiceProcesses(
        endpoints,
        {name: (role, start) for role, (name, start) in started.items()},
        run_values(
            ",".join(faults), target.consumer_relation, target.span_flush_interval, target.logs
        ),
        service_label=target.labels["service"],
    )
    closers.append(services.stop)
    by_name = services.start()
    urls.update({role: by_name[name] for role, (name, _) in started.items()})
    return urls


def open_system(
    target: Target,
    faults: Sequence[str] = (),
    stack_endpoints: Path | None = None,
    stack: str | None = None,
) -> System:
    """Start what the target needs, verify reachability, and return the system.

    `stack` (auto|local|containers|external), else $OBSCONF_STACK, overrides the target's
    `backends.start`;
    `stack_endpoints` (an `obsconf up --json` file) means an external, already running stack,
    which the run locks (stack/runlock.py: a second run on it is refused with `StackBusy`).
    """
    closers: Closers = []
    opened_at = time.time()
    try:
        endpoints: Endpoints | None = None
        kind = stack_kind(stack, default=target.backends.start or "external")
        if stack_endpoints is not None:
            given = json.loads(stack_endpoints.read_text())
            known = {f.name for f in fields(Endpoints)}
            endpoints = Endpoints(**{k: v for k, v in given.items() if k in known})
            # the stack is this run's until it ends (released last), or the run is refused
            closers.append(lock_stack(endpoints, f"the stack of {stack_endpoints}").release)
        elif kind in STARTED_KINDS:
            started = make_stack(kind, overrides=target.backends.images)
            closers.append(started.stop)
            endpoints = started.start()
        elif target.starts_services:
            raise ValueError(
                f"target {target.name} starts its services: that needs a stack "
                "(--stack local|containers|auto, or --stack-endpoints FILE)"
            )
        prometheus_url = target.backends.prometheus or (endpoints.prometheus if endpoints else None)
        if prometheus_url is None or (endpoints is None and not target.backends.logs):
            raise ValueError(
                f"--stack {kind}: target {target.name} names no backend URLs to use; "
                "give backends.prometheus/logs/traces or a stack to start"
            )
        logs = stack_store("logs", endpoints, target.backends.logs)
        closers.append(logs.close)
        traces = stack_store("traces", endpoints, target.backends.traces)
        closers.append(traces.close)
        nats_url = target.backends.nats or (endpoints.nats if endpoints else None)
        _check(f"{prometheus_url}/-/ready", "Prometheus")
        _check(logs.ready_url, f"log store ({logs.kind})")
        _check(traces.ready_url, f"trace store ({traces.kind})")

        names = {role: target.services[role].name for role in ROLES}
        proxies: dict[str, TcpProxy] = {}
        urls = start_services(target, endpoints, [*target.faults, *faults], closers, proxies)
        for role in ROLES:
            _check(f"{urls[role]}/health", f"{names[role]} ({role} service)")
        return System(
            target=target,
            urls=urls,
            names=names,
            prometheus=PrometheusClient(prometheus_url),
            logs=logs,
            traces=traces,
            nats_url=nats_url,
            grafana_url=target.backends.grafana,
            opened_at=opened_at,
            dependencies=proxies,
            _closers=closers,
        )
    except BaseException:
        while closers:
            closers.pop()()
        raise
