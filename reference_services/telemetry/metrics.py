"""Prometheus metrics: HTTP request counter and duration histogram, business counters."""

from __future__ import annotations

import prometheus_client
from prometheus_client import Counter, Histogram

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


def record_request(service: str, method: str, endpoint: str, status: int, seconds: float) -> None:
    labels = (service, method, endpoint, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_DURATION.labels(*labels).observe(seconds)
