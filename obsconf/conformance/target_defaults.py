"""What a target file need not say: the names and timings a target gets when it is silent.

docs/contract.md tables the metric and label names (tests/test_contract_doc.py keeps them
equal).
"""

from __future__ import annotations

ROLES = ("user", "order", "inventory")
DEFAULT_NAMES = {"user": "user-service", "order": "order-service", "inventory": "inventory-service"}
DEFAULT_SUBJECTS = {"user_created": "user.created", "order_created": "order.created"}
DEFAULT_METRICS = {
    "requests": "http_requests_total",
    "duration": "http_request_duration_seconds",
    "log_records": "log_records_total",
    "users_created": "users_created_total",
    "orders_created": "orders_created_total",
    "welcome_orders_created": "welcome_orders_created_total",
    "events_published": "events_published_total",
    "events_consumed": "events_consumed_total",
}
DEFAULT_LABELS = {"service": "service", "method": "method", "route": "endpoint", "status": "status"}
DEFAULT_CONSUMER_RELATION = "parent"
DEFAULT_LOGS = "file"  # JSON lines on stdout, tailed by the stack's log shipper
DEFAULT_SPAN_FLUSH_INTERVAL = 5.0  # OTEL_BSP_SCHEDULE_DELAY's default
STORE_INGEST_S = 0.8  # from export to queryable in the trace store, measured on Jaeger here
# LOAD-FRESHNESS: p99 seconds from a request's end to its signal being queryable, a few times
# the floor (1 s scrapes; shipper + log store ingest; span flush + ingest + two NATS hops).
FRESHNESS_SIGNALS = ("metrics", "logs", "traces")
DEFAULT_FRESHNESS_S = {"metrics": 3.0, "logs": 10.0}  # log path measured here: ~3 s


def default_freshness(span_flush_interval: float) -> dict[str, float]:
    return {**DEFAULT_FRESHNESS_S, "traces": 3 * (span_flush_interval + STORE_INGEST_S) + 2}
