"""W3C Trace Context (Level 1) as data: the traceparent and tracestate cases the suite grades,
each with what the recommendation requires and the clause it rests on, and the tracestate
grammar used to judge what a service passed on. Pure: no I/O, unit-tested in tests/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from obsconf.conformance.driver import new_span_id, new_trace_id

CONTINUE, RESTART = "continue", "restart"
KEEP, DISCARD, VALID_ONLY = "pass on", "discard", "drop invalid members"
TP = "traceparent"
TS = "tracestate"
TRACEPARENT_00 = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

# --- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    """Fresh ids for one case (a second pair for the two-field case); the first pair holds a
    letter each, so their upper-case forms differ from them."""

    t: str
    p: str
    t2: str
    p2: str

    @classmethod
    def fresh(cls) -> Ids:
        return cls(_lettered(new_trace_id), _lettered(new_span_id), new_trace_id(), new_span_id())

    def fill(self, template: str) -> str:
        return template.format(
            t=self.t,
            p=self.p,
            t2=self.t2,
            p2=self.p2,
            T=self.t.upper(),
            P=self.p.upper(),
            t31=self.t[:31],
            p15=self.p[:15],
        )

    @property
    def parents(self) -> tuple[str, str]:
        return self.p, self.p2


def _lettered(new_id: Callable[[], str]) -> str:
    value = new_id()
    while value.isdigit():
        value = new_id()
    return value


@dataclass(frozen=True)
class TraceparentCase:
    """Header fields sent (templates over `Ids`), what the recommendation requires, why."""

    name: str
    fields: tuple[tuple[str, str], ...]
    required: str  # CONTINUE or RESTART
    clause: str
    raw: bool = False  # sent over a plain connection: httpx refuses whitespace around a value

    def render(self, ids: Ids) -> list[tuple[str, str]]:
        return [(name, ids.fill(value)) for name, value in self.fields]


def _tp(name: str, value: str, required: str, clause: str, raw: bool = False) -> TraceparentCase:
    return TraceparentCase(name, ((TP, value),), required, clause, raw)


OWS = "RFC 9110 5.5: whitespace around a field value is not part of it (W3C suite: continued)"
TRACEPARENT_CASES: tuple[TraceparentCase, ...] = (
    _tp("version 00", "00-{t}-{p}-01", CONTINUE, "traceparent = version-format of version 00"),
    TraceparentCase(
        "header name in mixed case",
        (("TraceParent", "00-{t}-{p}-01"),),
        CONTINUE,
        "Vendors MUST expect the header name in any case",
    ),
    _tp("unknown flag bits", "00-{t}-{p}-09", CONTINUE, "trace-flags is a bit field"),
    _tp("future version", "cc-{t}-{p}-01", CONTINUE, "a higher version is parsed as 00"),
    _tp(
        "future version with a further field",
        "cc-{t}-{p}-01-what-the-future-will-be-like",
        CONTINUE,
        "flags at the end of the string or followed by a dash",
    ),
    _tp("leading space", " 00-{t}-{p}-01", CONTINUE, OWS, raw=True),
    _tp("trailing tab", "00-{t}-{p}-01\t", CONTINUE, OWS, raw=True),
    _tp("whitespace both sides", "\t 00-{t}-{p}-01 \t", CONTINUE, OWS, raw=True),
    TraceparentCase(
        "two traceparent fields",
        ((TP, "00-{t}-{p}-01"), (TP, "00-{t2}-{p2}-01")),
        RESTART,
        "traceparent is one field, not a list (RFC 9110 5.3); W3C suite: a new trace",
    ),
    _tp("version ff", "ff-{t}-{p}-01", RESTART, "Version ff is invalid"),
    _tp("version 00, trailing dot", "00-{t}-{p}-01.", RESTART, "version 00 is exactly 55 chars"),
    _tp(
        "version 00 with a further field",
        "00-{t}-{p}-01-what-the-future-will-be-like",
        RESTART,
        "version 00 is exactly 55 chars",
    ),
    _tp(
        "future version, dot after the flags",
        "cc-{t}-{p}-01.what-the-future-will-be-like",
        RESTART,
        "flags MUST be at the end or followed by a dash",
    ),
    _tp("version with a dot", ".0-{t}-{p}-01", RESTART, "version = 2HEXDIGLC"),
    _tp("version of 3 digits", "000-{t}-{p}-01", RESTART, "version = 2HEXDIGLC"),
    _tp("version of 1 digit", "0-{t}-{p}-01", RESTART, "version = 2HEXDIGLC"),
    _tp("upper-case trace-id", "00-{T}-{p}-01", RESTART, "trace-id = 32HEXDIGLC"),
    _tp("upper-case parent-id", "00-{t}-{P}-01", RESTART, "parent-id = 16HEXDIGLC"),
    _tp("all-zero trace-id", "00-" + "0" * 32 + "-{p}-01", RESTART, "All zeroes forbidden"),
    _tp("all-zero parent-id", "00-{t}-" + "0" * 16 + "-01", RESTART, "All zeroes forbidden"),
    _tp("trace-id of 33 digits", "00-{t}0-{p}-01", RESTART, "trace-id = 32HEXDIGLC"),
    _tp("trace-id of 31 digits", "00-{t31}-{p}-01", RESTART, "trace-id = 32HEXDIGLC"),
    _tp("trace-id with a dot", "00-{t31}.-{p}-01", RESTART, "trace-id = 32HEXDIGLC"),
    _tp("parent-id of 17 digits", "00-{t}-{p}0-01", RESTART, "parent-id = 16HEXDIGLC"),
    _tp("parent-id of 15 digits", "00-{t}-{p15}-01", RESTART, "parent-id = 16HEXDIGLC"),
    _tp("parent-id with a dot", "00-{t}-{p15}.-01", RESTART, "parent-id = 16HEXDIGLC"),
    _tp("trace-flags with a dot", "00-{t}-{p}-.1", RESTART, "trace-flags = 2HEXDIGLC"),
    _tp("trace-flags of 3 digits", "00-{t}-{p}-001", RESTART, "trace-flags = 2HEXDIGLC"),
    _tp("trace-flags of 1 digit", "00-{t}-{p}-1", RESTART, "trace-flags = 2HEXDIGLC"),
)


@dataclass(frozen=True)
class TracestateCase:
    """A POST /api/users with these tracestate fields; what its user.created must carry."""

    name: str
    traceparent: str | None  # template over `Ids`; None sends no traceparent
    tracestate: tuple[str, ...]  # the tracestate fields, in order
    required: str  # KEEP, DISCARD or VALID_ONLY
    clause: str

    def render(self, ids: Ids) -> list[tuple[str, str]]:
        parent = [(TP, ids.fill(self.traceparent))] if self.traceparent else []
        return parent + [(TS, value) for value in self.tracestate]

    @property
    def continues(self) -> bool:
        """Whether the traceparent sent is valid (the request's trace must go on)."""
        return self.traceparent == VALID_PARENT

    @property
    def must(self) -> tuple[str, str]:
        """(what is required, the clause) of the MUST rules: an invalid tracestate (whose
        handling is a MAY) must still leave the traceparent continued."""
        if self.required == VALID_ONLY:
            return "traceparent continued", TRACEPARENT_UNAFFECTED
        return self.required, self.clause


VALID_PARENT = "00-{t}-{p}-01"
_KEY = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
_VALUE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
_MEMBERS = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]


def _split(members: list[str], size: int = 10) -> tuple[str, ...]:
    return tuple(",".join(members[i : i + size]) for i in range(0, len(members), size))


TRACEPARENT_UNAFFECTED = "failure to parse tracestate MUST NOT affect the parsing of traceparent"
KEEP_CLAUSE = "Vendors receiving a tracestate request header MUST send it to outgoing requests"
INVALID_CLAUSE = "MAY discard the entire header or invalid entries (W3C suite: discarded)"
TRACESTATE_CASES: tuple[TracestateCase, ...] = (
    TracestateCase("one field", VALID_PARENT, ("congo=t61rcWkgMzE,rojo=00f0",), KEEP, KEEP_CLAUSE),
    TracestateCase(
        "three fields",
        VALID_PARENT,
        ("foo=1,bar=2", "rojo=1,congo=2", "baz=3"),
        KEEP,
        "multiple tracestate fields MUST be combined (RFC 9110 5.3)",
    ),
    TracestateCase(
        "whitespace around members",
        VALID_PARENT,
        ("foo=1 \t , \t bar=2, \t baz=3",),
        KEEP,
        "Spaces and horizontal tabs surrounding list-members are ignored",
    ),
    TracestateCase(
        "32 members in four fields",
        VALID_PARENT,
        _split(_MEMBERS[:32]),
        KEEP,
        "There can be a maximum of 32 list-members",
    ),
    TracestateCase(
        "an empty field", VALID_PARENT, ("foo=1", ""), KEEP, "Vendors MUST accept empty headers"
    ),
    TracestateCase(
        "every allowed character",
        VALID_PARENT,
        (f"{_KEY}={_VALUE}", f"{_KEY}@a-z0-9_-*/=1"),
        KEEP,
        "key: a-z 0-9 _ - * / @; value: printable ASCII but , and =",
    ),
    TracestateCase(
        "no traceparent",
        None,
        ("foo=1,bar=2",),
        DISCARD,
        "a tracestate received without traceparent is invalid and MUST be discarded",
    ),
    TracestateCase(
        "invalid traceparent",
        ".0-{t}-{p}-01",
        ("foo=1,bar=2",),
        DISCARD,
        "failed to parse traceparent: MUST NOT attempt to parse tracestate",
    ),
    TracestateCase("33 members", VALID_PARENT, _split(_MEMBERS), VALID_ONLY, INVALID_CLAUSE),
    TracestateCase("upper-case key", VALID_PARENT, ("FOO=1,bar=2",), VALID_ONLY, INVALID_CLAUSE),
    TracestateCase(
        "key with a dot", VALID_PARENT, ("foo.bar=1,baz=2",), VALID_ONLY, INVALID_CLAUSE
    ),
    TracestateCase(
        "key of 257 characters",
        VALID_PARENT,
        ("foo=1", "z" * 257 + "=1"),
        VALID_ONLY,
        INVALID_CLAUSE,
    ),
    TracestateCase("duplicated key", VALID_PARENT, ("foo=1,foo=2",), VALID_ONLY, INVALID_CLAUSE),
    TracestateCase(
        "duplicated key in two fields", VALID_PARENT, ("foo=1", "foo=2"), VALID_ONLY, INVALID_CLAUSE
    ),
    TracestateCase("value with =", VALID_PARENT, ("foo=bar=baz",), VALID_ONLY, INVALID_CLAUSE),
    TracestateCase("empty value", VALID_PARENT, ("foo=,bar=3",), VALID_ONLY, INVALID_CLAUSE),
)

# --- tracestate as data -------------------------------------------------------------------

Member = tuple[str, str]
KEY = re.compile(r"^[a-z0-9][a-z0-9_\-*/@]{0,255}$")  # Level 2 grammar: Level 1's and more
VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
MAX_MEMBERS = 32


def members(fields: Iterable[str]) -> list[Member]:
    """The list-members of tracestate fields combined in order; whitespace around a member and
    empty members dropped, each split at its first `=`."""
    found = []
    for field in fields:
        for member in field.split(","):
            member = member.strip(" \t")
            if member:
                key, _, value = member.partition("=")
                found.append((key, value))
    return found


def show(found: Sequence[Member]) -> str:
    return ",".join(f"{k}={v}" for k, v in found) or "(none)"


def list_problem(found: Sequence[Member]) -> str | None:
    """Why these members are not a valid tracestate list, or None."""
    if len(found) > MAX_MEMBERS:
        return f"{len(found)} list-members, more than {MAX_MEMBERS}"
    keys = [k for k, _ in found]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        return f"key(s) {', '.join(duplicated)} more than once"
    bad = [f"{k}={v}" for k, v in found if not (KEY.match(k) and VALUE.match(v))]
    return f"invalid member(s) {', '.join(bad)}" if bad else None


def kept_problem(sent: Sequence[Member], out: Sequence[Member]) -> str | None:
    """Why `out` does not pass `sent` on, or None. The service's own members may come first
    (added or updated keys move left) and the right-most members may go to keep 32."""
    own = 0
    while own < len(out) and out[own] not in sent:
        own += 1
    own_keys = {k for k, _ in out[:own]}
    expected = [m for m in sent if m[0] not in own_keys][: MAX_MEMBERS - own]
    if list(out[own:]) == expected:
        return None
    prefix = f"the service's own {show(out[:own])} then " if own else ""
    return f"expected {prefix}{show(expected)}, seen {show(out)}"


def discarded_problem(sent: Sequence[Member], out: Sequence[Member]) -> str | None:
    """Why `out` does not discard `sent` (members of its own are allowed), or None."""
    leaked = [m for m in out if m in sent]
    return f"passed on {show(leaked)}" if leaked else None


# --- traceparent on the wire ------------------------------------------------------------


def traceparent_problem(headers: dict[str, str], flow_traces: Collection[str]) -> str | None:
    """Why a NATS message's headers do not carry a traceparent of a sampled flow, or None.

    NATS header names are case-sensitive: a `Traceparent` is named as such, not as missing."""
    header = headers.get("traceparent")
    if header is None:
        other = next((k for k in headers if k.lower() == "traceparent"), None)
        if other is not None:
            return (
                f"no 'traceparent' header, but a '{other}' header ({headers[other]!r}): NATS "
                "header names are case-sensitive and W3C Trace Context names it 'traceparent'"
            )
        return f"no traceparent header (headers: {sorted(headers)})"
    match = TRACEPARENT_00.match(header)
    if not match:
        return f"traceparent {header!r} is not a valid version-00 traceparent"
    trace_id, flags = match.group(1), int(match.group(3), 16)
    if trace_id not in flow_traces:
        return (
            f"traceparent {header!r} names trace {trace_id}, which is not a trace of the flow "
            f"({', '.join(flow_traces)})"
        )
    if not flags & 1:
        return f"traceparent {header!r} has the sampled flag off, but the flow's trace is sampled"
    return None
