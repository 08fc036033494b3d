"""Evidence: what a conformance check looked at, one class per kind.

A test records a piece through the `obsconf_evidence` fixture, before it asserts:

    obsconf_evidence(LogEvidence(check="request lines without the request's trace_id",
                                 expected=trace_id, seen=[line.raw for line in bad]))

The results of a run carry every piece of the guarantees it verified (`results.json`, the HTML
report, JUnit). In results.json a piece is `to_dict()`: a JSON object whose `kind` names its
class (`compare`, `logs`, `trace`, ...), read back into that class by `evidence_from_dict`.
What a piece holds is what results.json holds: expected and seen values are kept as their
JSON (a tuple is a list, a set its text), the spans of a trace check as the fields the
waterfall draws, so a report drawn from a live run and one drawn from its results.json are
the same.

The kinds:

- `CompareEvidence` (`compare`): a value expected and the value seen, and the query run;
  `LogEvidence` (`logs`, log lines), `NatsEvidence` (`nats`, message headers), `SpanEvidence`
  (`spans`, span fields), `ExpositionEvidence` (`exposition`, a /metrics page) and
  `SweepEvidence` (`sweep`, the whole-run sweep, with what it `examined`) are comparisons too;
- `LogQueryEvidence` (`logquery`): a query run against the log store, in its language;
- `TraceEvidence` (`trace`): a flow's spans, the findings on them and the gap they explain;
- `ReconciliationEvidence` (`reconciliation`): LOAD's flows accounted for, stage by stage;
- `FreshnessEvidence` (`freshness`): LOAD's seconds from a request to its signals, per signal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, ClassVar, Self, TypeAlias

from obsconf.conformance.traces.findings import Finding, FindingCode
from obsconf.conformance.traces.model import Span

JsonValue: TypeAlias = (
    str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
)
# The fields of a span that trace evidence keeps (what the waterfall and the report draw).
SPAN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
)


class EvidenceError(ValueError):
    """A piece of evidence in a results document that this version cannot read."""


def as_json(value: Any) -> Any:
    """`value` as results.json holds it: tuples are lists, dataclasses objects, and what JSON
    has no word for (a set, a date) is its text."""
    return json.loads(json.dumps(value, default=_plain))


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What one check looked at; `check` says what it checked, in a phrase."""

    kind: ClassVar[str]
    check: str

    def to_dict(self) -> dict[str, Any]:
        """The piece as results.json holds it: `kind` and the fields, as JSON."""
        return {"kind": self.kind, **{f.name: as_json(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The piece a results.json object holds (each kind reads its own fields)."""
        raise NotImplementedError(f"{cls.__name__} is not a kind of evidence")


@dataclass(frozen=True, kw_only=True)
class CompareEvidence(Evidence):
    """A value expected and the value seen; `query` is what was asked to see it, if anything."""

    kind: ClassVar[str] = "compare"
    expected: JsonValue
    seen: JsonValue
    query: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "expected", as_json(self.expected))
        object.__setattr__(self, "seen", as_json(self.seen))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            expected=data.get("expected"),
            seen=data.get("seen"),
            query=_text(data.get("query")),
        )


@dataclass(frozen=True, kw_only=True)
class LogEvidence(CompareEvidence):
    """Log lines: those expected (usually none of a kind) and those seen."""

    kind: ClassVar[str] = "logs"


@dataclass(frozen=True, kw_only=True)
class NatsEvidence(CompareEvidence):
    """The headers of NATS messages: what they should carry and what they carried."""

    kind: ClassVar[str] = "nats"


@dataclass(frozen=True, kw_only=True)
class SpanEvidence(CompareEvidence):
    """Fields of spans (kinds, attributes): what they should be and what they were."""

    kind: ClassVar[str] = "spans"


@dataclass(frozen=True, kw_only=True)
class ExpositionEvidence(CompareEvidence):
    """A service's /metrics page, and what its parser made of it."""

    kind: ClassVar[str] = "exposition"


@dataclass(frozen=True, kw_only=True)
class SweepEvidence(CompareEvidence):
    """A check of the whole-run sweep; `examined` counts what it looked at (lines, spans,
    traces, requests, and `window_s`, the seconds of the run it covered)."""

    kind: ClassVar[str] = "sweep"
    examined: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            expected=data.get("expected"),
            seen=data.get("seen"),
            query=_text(data.get("query")),
            examined={str(k): int(v) for k, v in (data.get("examined") or {}).items()},
        )


@dataclass(frozen=True, kw_only=True)
class LogQueryEvidence(Evidence):
    """A query run against the log store, in the store's query `language` (LogsQL, LogQL)."""

    kind: ClassVar[str] = "logquery"
    language: str
    query: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            language=_text(data.get("language")),
            query=_text(data.get("query")),
        )


@dataclass(frozen=True, kw_only=True)
class TraceEvidence(Evidence):
    """A trace check: the flow's trace (`trace_id`), the request that began it, the spans of
    the flow's traces, the findings on them and `gap`, the sentence that explains them."""

    kind: ClassVar[str] = "trace"
    trace_id: str
    request: str = ""
    findings: tuple[Finding, ...] = ()
    gap: str = ""
    spans: tuple[Span, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(self.findings))
        object.__setattr__(self, "spans", tuple(_kept(span) for span in self.spans))

    @property
    def gap_sentence(self) -> str:
        """The one-sentence explanation of the gap: `gap`, else the first finding's message
        and likely cause ("" when there is no finding)."""
        if self.gap:
            return self.gap
        if not self.findings:
            return ""
        first = self.findings[0]
        message = first.message.rstrip(".")
        cause = first.likely_cause
        return f"{message}; likely cause: {cause}." if cause else f"{message}."

    @property
    def flagged(self) -> set[str]:
        """The ids of the spans the findings name."""
        return {f.span_id for f in self.findings if f.span_id}

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "spans": [{k: getattr(span, k) for k in SPAN_FIELDS} for span in self.spans],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            trace_id=_text(data.get("trace_id")),
            request=_text(data.get("request")),
            findings=tuple(_finding(f) for f in data.get("findings") or ()),
            gap=_text(data.get("gap")),
            spans=tuple(_span(s) for s in data.get("spans") or ()),
        )


@dataclass(frozen=True)
class ReconciliationRow:
    """One stage of LOAD's reconciliation: how many flows were lost there, and the first."""

    stage: str
    flows: int
    example: str

    @classmethod
    def from_dict(cls, row: Mapping[str, object]) -> ReconciliationRow:
        return cls(_text(row.get("stage")), _int(row.get("flows")), _text(row.get("example")))


@dataclass(frozen=True, kw_only=True)
class ReconciliationEvidence(Evidence):
    """LOAD's concurrent flows accounted for, stage by stage: `rows`, and `table`, the same
    as text (the terminal prints it)."""

    kind: ClassVar[str] = "reconciliation"
    rows: tuple[ReconciliationRow, ...]
    table: str
    expected: str
    seen: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            rows=tuple(ReconciliationRow.from_dict(r) for r in data.get("rows") or ()),
            table=_text(data.get("table")),
            expected=_text(data.get("expected")),
            seen=_text(data.get("seen")),
        )


@dataclass(frozen=True)
class SignalFreshness:
    """Seconds from the end of a request to one of its signals being queryable."""

    p50: float | None
    p99: float | None
    n: int  # requests observed
    resolution_s: float | None  # how finely the signal's arrival was polled

    @classmethod
    def from_dict(cls, row: Mapping[str, object]) -> SignalFreshness:
        return cls(
            _number(row.get("p50")),
            _number(row.get("p99")),
            _int(row.get("n")),
            _number(row.get("resolution_s")),
        )


@dataclass(frozen=True, kw_only=True)
class FreshnessEvidence(Evidence):
    """LOAD's freshness per signal (`freshness`), the limits (`expected`, per signal) and the
    percentiles in a sentence (`seen`, the terminal prints it)."""

    kind: ClassVar[str] = "freshness"
    freshness: Mapping[str, SignalFreshness]
    expected: Mapping[str, str]
    seen: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            check=_text(data.get("check")),
            freshness={
                str(signal): SignalFreshness.from_dict(row)
                for signal, row in (data.get("freshness") or {}).items()
            },
            expected={str(k): _text(v) for k, v in (data.get("expected") or {}).items()},
            seen=_text(data.get("seen")),
        )


Recorder = Callable[[Evidence], None]  # what the obsconf_evidence fixture gives a test

KINDS: dict[str, type[Evidence]] = {
    cls.kind: cls
    for cls in (
        CompareEvidence,
        LogEvidence,
        NatsEvidence,
        SpanEvidence,
        ExpositionEvidence,
        SweepEvidence,
        LogQueryEvidence,
        TraceEvidence,
        ReconciliationEvidence,
        FreshnessEvidence,
    )
}


def evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    """The piece of evidence a results.json object holds (EvidenceError if its kind is not
    one of KINDS)."""
    if not isinstance(data, Mapping):
        raise EvidenceError(f"evidence is not an object: {data!r}"[:200])
    kind = data.get("kind")
    if kind == "logsql":  # before the log store adapters, the one store was VictoriaLogs
        data = {**data, "kind": LogQueryEvidence.kind, "language": "LogsQL"}
        kind = LogQueryEvidence.kind
    cls = KINDS.get(str(kind))
    if cls is None:
        raise EvidenceError(f"unknown evidence kind {kind!r} (known: {', '.join(KINDS)})")
    return cls.from_dict(data)


def _kept(span: Span) -> Span:
    """The span with only the fields trace evidence keeps."""
    return replace(span, attributes={}, links=(), trace_state="")


def _span(data: Mapping[str, Any]) -> Span:
    return Span(
        trace_id=_text(data.get("trace_id")),
        span_id=_text(data.get("span_id")),
        parent_span_id=_text(data.get("parent_span_id")),
        name=_text(data.get("name")),
        kind=_text(data.get("kind")),
        service=_text(data.get("service")),
        start_ns=_int(data.get("start_ns")),
        end_ns=_int(data.get("end_ns")),
        status=_text(data.get("status")) or "UNSET",
        status_message=_text(data.get("status_message")),
    )


def _finding(data: Mapping[str, Any]) -> Finding:
    text = {f.name: _text(data.get(f.name)) for f in fields(Finding)}
    code = text.pop("code")
    try:
        return Finding(code=FindingCode(code), **text)
    except ValueError:
        raise EvidenceError(f"unknown finding code {code!r}") from None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _int(value: object) -> int:
    if isinstance(value, int | float | str):
        try:
            return int(value)
        except ValueError:
            pass
    return 0


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
