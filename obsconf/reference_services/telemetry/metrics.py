"""Prometheus metrics: HTTP request counter and duration histogram, business counters."""

from __future__ import annotations

import re

import prometheus_client
from prometheus_client import Counter, Histogram

from obsconf.reference_services import faults

prometheus_client.disable_created_metrics()  # no *_created series: only what tests count

HTTP_LABELS = ("service", "method", "endpoint", "status")

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by route template (endpoint) and status code",
    HTTP_LABELS,
)
# Same labels as the counter, so each series' _count equals the matching counter series.
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration, by route template (endpoint) and status code",
    HTTP_LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

USERS_CREATED = Counter("users_created_total", "Users created")
ORDERS_CREATED = Counter("orders_created_total", "Orders created (API and welcome orders)")
WELCOME_ORDERS_CREATED = Counter("welcome_orders_created_total", "Welcome orders created")
STOCK_UPDATES = Counter("stock_updates_total", "Inventory receipts written")
STOCK_RESERVATIONS = Counter("stock_reservations_total", "Stock reservation rows written")
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events acknowledged by JetStream", ["subject"]
)
EVENTS_CONSUMED = Counter("events_consumed_total", "Events processed and acked", ["subject"])
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total",
    "Events moved to the dead-letter stream, by subject and reason",
    ["subject", "reason"],
)
LOG_RECORDS = Counter("log_records_total", "Log lines the service wrote to stdout", ["level"])


def count_business(counter: Counter, amount: float = 1, *labels: str) -> None:
    """Increment a business counter (the `no-business-count` fault skips it)."""
    if faults.enabled("no-business-count"):
        return
    (counter.labels(*labels) if labels else counter).inc(amount)


def record_request(service: str, method: str, endpoint: str, status: int, seconds: float) -> None:
    """Count one request and observe its duration (`duration-in-ms` observes milliseconds)."""
    labels = (service, method, endpoint, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    if not (status >= 400 and faults.enabled("histogram-skips-errors")):
        scale = 1000.0 if faults.enabled("duration-in-ms") else 1.0
        HTTP_DURATION.labels(*labels).observe(seconds * scale)


_BUCKET = re.compile(
    r'^(?P<name>\w+_bucket)\{(?P<labels>.*?),?le="(?P<le>[^"]+)"(?P<rest>.*?)\} (?P<v>\S+)$'
)


def exposition() -> bytes:
    """The /metrics body; the `garbled-metrics` and `noncumulative-buckets` faults corrupt it."""
    text = prometheus_client.generate_latest().decode()
    if faults.enabled("noncumulative-buckets"):
        text = _decumulate(text)
    if faults.enabled("garbled-metrics"):
        text += "this line is not prometheus text format {\n"
    return text.encode()


def _decumulate(text: str) -> str:
    """Rewrite histogram buckets to per-bucket counts (the `noncumulative-buckets` fault)."""
    previous: dict[tuple[str, str], float] = {}
    out = []
    for line in text.splitlines():
        match = _BUCKET.match(line)
        if match:
            key = (match["name"], match["labels"] + match["rest"])
            value = float(match["v"])
            out.append(line[: match.start("v")] + repr(value - previous.get(key, 0.0)))
            previous[key] = value
        else:
            out.append(line)
    return "\n".join(out) + "\n"
