"""The Loki adapter's own behaviour beyond the shared contract, on answers shaped as Loki's HTTP
API reference describes them ("Query logs within a range of time": `values` pairs of
[ns-string, line], at most `limit` entries per answer, `direction=forward` oldest first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obsconf.conformance.clients import loki
from tests.replay import Replay


def _answer(*entries: tuple[int, str]) -> dict:
    values = [[str(ns), line] for ns, line in entries]
    result = [{"stream": {"service_name": "svc"}, "values": values}] if values else []
    return {"status": "success", "data": {"resultType": "streams", "result": result}}


def test_lines_beyond_one_answer_are_read_in_forward_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loki, "PAGE", 2)
    start = 1764158400_000000000
    first = [(start + 1, '{"msg": "a"}'), (start + 2, '{"msg": "b"}')]

    def page(begin: int, *entries: tuple[int, str]) -> dict:
        request = {"path": "/loki/api/v1/query_range", "params": {"start": str(begin)}}
        return {"request": request, "response": {"body": _answer(*entries)}}

    recording = tmp_path / "paged.json"
    recording.write_text(
        json.dumps(
            {
                "formats": {"limit": "2", "direction": "forward"},
                "exchanges": [
                    page(start, *first),
                    page(start + 3, (start + 5, '{"msg": "c"}')),
                ],
            }
        )
    )
    with Replay(recording) as replay:
        store = loki.Loki(replay.url)
        lines = store.lines("svc", since=start / 1e9, until=start / 1e9 + 1)
        store.close()
    assert [line.get("msg") for line in lines] == ["a", "b", "c"]
    assert not replay.unmatched, replay.unmatched


def test_a_failed_query_names_the_logql_and_the_answer(tmp_path: Path) -> None:
    recording = tmp_path / "bad.json"
    recording.write_text(json.dumps({"exchanges": []}))
    with Replay(recording) as replay:
        store = loki.Loki(replay.url, service_label="app")
        with pytest.raises(loki.BackendError, match=r'LogQL .*\{app=\\?"svc\\?"\}.* 400'):
            store.lines("svc")
        store.close()
