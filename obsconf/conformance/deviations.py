"""Deviations a target declares, per guarantee id (the model: DataDog system-tests manifests).

```yaml
deviations:
  MET-DURATION-UNIT: {bug: "ISSUE-42: the histogram observes milliseconds"}
  PROP-TRACESTATE-PASSED: missing_feature
  TRC-ERROR-STATUS: {not_applicable: "no endpoint of this implementation answers 5xx"}
```

- `bug` (a reason or ticket is required): the guarantee still runs. A failure is reported as an
  expected failure (XFAIL) and does not fail the run; a pass is reported as XPASS and fails
  the run, so a fixed bug cannot stay declared.
- `missing_feature`: not run (reported skipped, with the declaration). A MUST declared
  missing leaves the verdict INCOMPLETE: conformance is not claimed for what is not built.
- `not_applicable`: not run; a MUST declared not applicable does not count against the
  verdict.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class DeviationKind(enum.StrEnum):
    """What a target may declare about a guarantee. A member is its string (the YAML and JSON
    spelling): `DeviationKind.BUG == "bug"`."""

    BUG = "bug"
    MISSING_FEATURE = "missing_feature"
    NOT_APPLICABLE = "not_applicable"


_VALID = ", ".join(DeviationKind)


def _kind(value: object) -> DeviationKind | None:
    """The kind `value` names, or None."""
    if not isinstance(value, str):
        return None
    try:
        return DeviationKind(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Deviation:
    """One declaration: the kind and why (ticket, explanation)."""

    kind: DeviationKind  # a plain string naming a kind is taken as that kind
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DeviationKind(self.kind))

    @property
    def runs(self) -> bool:
        """A declared bug still runs (expected to fail); the other kinds are not run."""
        return self.kind is DeviationKind.BUG

    def describe(self) -> str:
        return f"{self.kind}: {self.reason}" if self.reason else self.kind.value

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deviation:
        name = str(data.get("kind", ""))
        kind = _kind(name)
        if kind is None:
            raise ValueError(f"unknown deviation kind {name!r} (valid: {_VALID})")
        return cls(kind, str(data.get("reason") or ""))


def parse_deviations(
    value: Any, known_ids: Mapping[str, object], fail: Callable[[str, str], Exception]
) -> dict[str, Deviation]:
    """The `deviations:` mapping of a target file. Each entry is `ID: KIND` or `ID: {KIND:
    REASON}`; `fail(path, message)` builds the error naming the field at fault (an unknown
    guarantee id, an unknown kind, a bug without a reason)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("deviations", f"must be a mapping of guarantee id to deviation, got {value!r}")
    declared: dict[str, Deviation] = {}
    for gid, entry in value.items():
        path = f"deviations.{gid}"
        if gid not in known_ids:
            close = difflib.get_close_matches(str(gid), list(known_ids), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise fail(path, f"unknown guarantee id (see conformance/catalog.yaml){hint}")
        if isinstance(entry, str):
            name, reason = entry, ""
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, reason),) = entry.items()
            if reason is not None and not isinstance(reason, str):
                raise fail(f"{path}.{name}", f"the reason must be a string, got {reason!r}")
        else:
            raise fail(path, f"must be one of {_VALID} or {{KIND: reason}}, got {entry!r}")
        kind = _kind(name)
        if kind is None:
            raise fail(path, f"unknown deviation {name!r} (valid: {_VALID})")
        reason = (reason or "").strip()
        if kind is DeviationKind.BUG and not reason:
            raise fail(
                path, "a declared bug needs a reason or ticket: {bug: 'ISSUE-1: what fails'}"
            )
        declared[str(gid)] = Deviation(kind, reason)
    return declared
