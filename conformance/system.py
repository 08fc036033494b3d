"""The system under test as the suite sees it: service URLs, backend clients, names.

`open_system(target, ...)` starts what the target asks to be started (the local stack, the
services through their start commands, with fault modes if the commands take them), checks
every URL answers once — one clear error per unreachable URL instead of a timeout per test —
and returns a `System`; `close()` stops whatever was started.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import httpx

from obsconf.conformance.clients.logs import LogsClient
from obsconf.conformance.clients.prometheus import PrometheusClient
from obsconf.conformance.clients.traces import TracesClient
from obsconf.conformance.target import ROLES, Target
from obsconf.stack.backends import STARTED_KINDS, make_stack, stack_kind
from obsconf.stack.binaries import MissingBinary
from obsconf.stack.docker_engine import NoDockerEngine
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.images import ImagesMissing
from obsconf.stack.local import ComponentFailed
from obsconf.stack.proxy import TcpProxy, proxied_url, proxy_for
from obsconf.stack.services import ServiceFailed, ServiceProcesses, run_values


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
)


@dataclass
class System:
    target: Target
    urls: dict[str, str]  # role -> base URL
    names: dict[str, str]  # role -> service name
    prometheus: PrometheusClient
    logs: LogsClient
    traces: TracesClient
    nats_url: str | None
    grafana_url: str | None = None
    # dependency -> the proxy the started services reach it through (cut = outage); empty
    # when the harness did not start the services
    dependencies: dict[str, TcpProxy] = field(default_factory=dict)
    _closers: list = field(default_factory=list)

    def close(self) -> None:
        for client in (self.prometheus, self.logs, self.traces):
            client.close()
        while self._closers:
            self._closers.pop()()


def _check(url: str, what: str) -> None:
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.TransportError as error:
        raise Unreachable(f"{what} is unreachable at {url}: {error}") from error
    if response.status_code >= 500:
        raise Unreachable(f"{what} at {url} answered {response.status_code}: {response.text[:200]}")


# The dependencies the harness can take away from the services it starts (RES outages).
OUTAGE_DEPENDENCIES = ("postgres", "nats")


def route_through_proxies(
    endpoints: Endpoints, proxies: dict[str, TcpProxy], closers: list
) -> Endpoints:
    """`endpoints` with each outage dependency behind a fresh proxy (added to `proxies`)."""
    routed = {}
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
    closers: list,
    proxies: dict[str, TcpProxy] | None = None,
) -> dict[str, str]:
    """Start the services the target gives start commands for; role -> base URL of every
    service (started, or at the target's URL). The stop goes onto `closers` first. With
    `proxies`, the services reach the outage dependencies through proxies put there."""
    started = {role: spec for role, spec in target.services.items() if spec.start is not None}
    if faults and not any(spec.start.uses("faults") for spec in started.values()):
        raise ValueError(
            f"fault modes ({', '.join(faults)}) need start commands that take them "
            f"(the {{faults}} placeholder); target {target.name}'s do not"
        )
    urls = {role: spec.url for role, spec in target.services.items() if spec.start is None}
    if not started:
        return urls
    if endpoints is None or not (endpoints.log_dir and endpoints.scrape_dir):
        raise ValueError(
            f"target {target.name} starts its services, but the stack's endpoints name no log "
            "or scrape directory: start the stack here (--stack local|containers|auto)"
        )
    if proxies is not None:
        endpoints = route_through_proxies(endpoints, proxies, closers)
    services = ServiceProcesses(
        endpoints,
        {spec.name: (role, spec.start) for role, spec in started.items()},
        run_values(",".join(faults), target.consumer_relation, target.span_flush_interval),
        service_label=target.labels["service"],
    )
    closers.append(services.stop)
    by_name = services.start()
    urls.update({role: by_name[spec.name] for role, spec in started.items()})
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
    `stack_endpoints` (an `obsconf up --json` file) means an external, already running stack.
    """
    closers: list = []
    try:
        endpoints: Endpoints | None = None
        kind = stack_kind(stack, default=target.backends.start or "external")
        if stack_endpoints is not None:
            given = json.loads(stack_endpoints.read_text())
            known = {f.name for f in fields(Endpoints)}
            endpoints = Endpoints(**{k: v for k, v in given.items() if k in known})
        elif kind in STARTED_KINDS:
            started = make_stack(kind, overrides=target.backends.images)
            closers.append(started.stop)
            endpoints = started.start()
        elif target.starts_services:
            raise ValueError(
                f"target {target.name} starts its services: that needs a stack "
                "(--stack local|containers|auto, or --stack-endpoints FILE)"
            )
        if endpoints is None and not (target.backends.prometheus and target.backends.logs):
            raise ValueError(
                f"--stack {kind}: target {target.name} names no backend URLs to use; "
                "give backends.prometheus/logs/traces or a stack to start"
            )
        prometheus_url = target.backends.prometheus or endpoints.prometheus
        logs_url = target.backends.logs or endpoints.logs
        traces_url = target.backends.traces or endpoints.traces
        nats_url = target.backends.nats or (endpoints.nats if endpoints else None)
        _check(f"{prometheus_url}/-/ready", "Prometheus")
        _check(f"{logs_url}/health", "log store")
        _check(f"{traces_url}/api/services", "trace store")

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
            logs=LogsClient(logs_url),
            traces=TracesClient(traces_url),
            nats_url=nats_url,
            grafana_url=target.backends.grafana,
            dependencies=proxies,
            _closers=closers,
        )
    except BaseException:
        while closers:
            closers.pop()()
        raise
