"""What a span is by the semantic conventions: its messaging role and subject, its HTTP status."""

from __future__ import annotations

from typing import Literal

from obsconf.conformance.traces.model import Span

PUBLISH_OPERATIONS = frozenset({"publish", "send"})
CONSUME_OPERATIONS = frozenset({"process", "receive"})
_OPERATION_KEYS = ("messaging.operation", "messaging.operation.type")
_DESTINATION_KEYS = ("messaging.destination.name", "messaging.destination")
_STATUS_CODE_KEYS = ("http.response.status_code", "http.status_code")

Role = Literal["publish", "consume"]
_ROLE_OF_KIND: dict[str, Role] = {"PRODUCER": "publish", "CONSUMER": "consume"}


def messaging_role(span: Span) -> Role | None:
    """`publish`, `consume` or None: from `messaging.operation`, else the name, else the kind.

    The name counts when it is `<operation> <subject>` or `<subject> <operation>`, so a span
    that says what it does is judged by that even when its kind is wrong.
    """
    for key in _OPERATION_KEYS:
        operation = str(span.attributes.get(key, "")).lower()
        if operation in PUBLISH_OPERATIONS:
            return "publish"
        if operation in CONSUME_OPERATIONS:
            return "consume"
    words = span.name.lower().split()
    if len(words) == 2:
        if PUBLISH_OPERATIONS.intersection(words):
            return "publish"
        if CONSUME_OPERATIONS.intersection(words):
            return "consume"
    return _ROLE_OF_KIND.get(span.kind)


def is_publish(span: Span) -> bool:
    return messaging_role(span) == "publish"


def is_consume(span: Span) -> bool:
    return messaging_role(span) == "consume"


def subject_of(span: Span) -> str:
    """The messaging destination: `messaging.destination.name`, else the subject in the name."""
    for key in _DESTINATION_KEYS:
        if span.attributes.get(key):
            return str(span.attributes[key])
    words = span.name.split()
    if len(words) == 2:
        operations = PUBLISH_OPERATIONS | CONSUME_OPERATIONS
        if words[0].lower() in operations:
            return words[1]
        if words[1].lower() in operations:
            return words[0]
    return ""


def http_status_code(span: Span) -> int | None:
    """`http.response.status_code` (or the older `http.status_code`) as an int, else None."""
    for key in _STATUS_CODE_KEYS:
        value = span.attributes.get(key)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
