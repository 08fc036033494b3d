"""Start the reference services against a running stack, each as a child process.

    with ReferenceServices(endpoints) as services:
        httpx.post(services.urls["user-service"] + "/api/users", json=...)

The reference services are started as any implementation is: through their predefined start
command (`obsconf.stack.services.PREDEFINED["reference"]`, what a target's `services.start:
reference`
names) and `obsconf.stack.services.ServiceProcesses`, which logs each to
`<endpoints.log_dir>/<service>.log`, registers its scrape target and waits for `/health`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from obsconf.conformance.contract import run_values
from obsconf.reference_services.faults import parse_faults
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.services import PREDEFINED, ServiceFailed, ServiceProcesses

ROLES = {"user-service": "user", "order-service": "order", "inventory-service": "inventory"}
SERVICE_NAMES = tuple(ROLES)
# What targets/reference*.yaml declare as capabilities.span_flush_interval.
SPAN_FLUSH_INTERVAL_S = 0.2

__all__ = ["SERVICE_NAMES", "ReferenceServices", "ServiceFailed"]


class ReferenceServices(ServiceProcesses):
    """The three reference services (or some of them); `urls` maps name -> base URL."""

    def __init__(
        self,
        endpoints: Endpoints,
        faults: Sequence[str] = (),
        services: Sequence[str] = SERVICE_NAMES,
        telemetry: bool = True,
        consumer_relation: str = "parent",
        env: Mapping[str, str] | None = None,
    ) -> None:
        parse_faults(",".join(faults))  # unknown names fail here, before anything starts
        unknown = sorted(set(services) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; valid: {list(SERVICE_NAMES)}")
        command = PREDEFINED["reference"].with_env(
            OBSCONF_TELEMETRY="on" if telemetry else "off", **(env or {})
        )
        super().__init__(
            endpoints,
            {name: (ROLES[name], command) for name in SERVICE_NAMES if name in services},
            run_values(",".join(faults), consumer_relation, SPAN_FLUSH_INTERVAL_S),
        )
        self.faults = tuple(faults)
