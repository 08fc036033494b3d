"""Text an implementation wrote, made safe for every output: control characters made visible
(never interpreted by a terminal, never invalid in XML), lone surrogates spelled out (never an
encoding error that leaves a report empty)."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; lone surrogates; XML's non-characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _spell(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character (but tab and newline), lone surrogate and XML
    non-character written as its escape (`\\x1b`, `\\udc80`): printable, valid UTF-8 and XML."""
    return _UNSAFE.sub(_spell, text)


def has_unsafe(text: str) -> bool:
    return _UNSAFE.search(text) is not None
