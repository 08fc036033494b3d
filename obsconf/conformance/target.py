"""Target files: what implementation to grade and where its telemetry lands.

A target names the three services (started by the harness through start commands, or already
running at URLs), the NATS subjects, the metric and label names, capabilities (consumer spans
linked instead of parented, a hook that answers 5xx), the backends (the local stack, or URLs)
and the deviations it declares per guarantee (known bug, missing feature, not applicable). A
malformed file is rejected before anything starts, with the path to the field at fault.

`load_target(path)` reads a file, `parse_target(data)` checks what YAML gave; both answer a
`Target` (target_model.py) or raise `TargetError`. What a target may leave out is
target_defaults.py; what each field may hold is target_fields.py, which the checks
(target_validate.py) read. Import the public names from here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from obsconf.conformance.target_defaults import (
    DEFAULT_CONSUMER_RELATION,
    DEFAULT_FRESHNESS_S,
    DEFAULT_LABELS,
    DEFAULT_LOGS,
    DEFAULT_METRICS,
    DEFAULT_NAMES,
    DEFAULT_SPAN_FLUSH_INTERVAL,
    DEFAULT_SUBJECTS,
    FRESHNESS_SIGNALS,
    ROLES,
    STORE_INGEST_S,
    default_freshness,
)
from obsconf.conformance.target_model import BackendsSpec, Hook, ServiceSpec, Target, TargetError
from obsconf.conformance.target_validate import parse_target

__all__ = [
    "DEFAULT_CONSUMER_RELATION",
    "DEFAULT_FRESHNESS_S",
    "DEFAULT_LABELS",
    "DEFAULT_LOGS",
    "DEFAULT_METRICS",
    "DEFAULT_NAMES",
    "DEFAULT_SPAN_FLUSH_INTERVAL",
    "DEFAULT_SUBJECTS",
    "FRESHNESS_SIGNALS",
    "ROLES",
    "STORE_INGEST_S",
    "BackendsSpec",
    "Hook",
    "ServiceSpec",
    "Target",
    "TargetError",
    "default_freshness",
    "load_target",
    "parse_target",
]


def load_target(path: str | Path) -> Target:
    """Read and validate a target file."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise TargetError(f"{file}: cannot read target file: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TargetError(f"{file}: not valid YAML: {error}") from error
    return parse_target(data, str(file), file)
