"""A tiny HTTP server replaying recorded response bodies, so an adapter for a backend that cannot
run here (Loki, Tempo) is exercised over real HTTP: its own requests, its own parsing.

A recording is a JSON file: `{"documentation": "…", "formats": {param: regex},
"exchanges": [{"request": {"path", "params", "headers"}, "response": {"status", "body"}}]}`.
A request is answered by the first exchange whose path is equal and whose recorded params and
headers it carries with the same values; every param named in `formats` must match its regex
(the formats the documentation prescribes). Anything else is answered 400, saying why, and
kept in `unmatched` so a test can show what the adapter asked.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class Replay:
    def __init__(self, recording: Path) -> None:
        data = json.loads(recording.read_text())
        self.exchanges: list[dict[str, Any]] = data["exchanges"]
        self.formats = {k: re.compile(v) for k, v in data.get("formats", {}).items()}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.unmatched: list[str] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = replay.answer(self.path, dict(self.headers))
                payload = body if isinstance(body, str) else json.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, target: str, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.seen.append((parts.path, params))
        for name, pattern in self.formats.items():
            if name in params and not pattern.fullmatch(params[name]):
                return self._refuse(f"{name}={params[name]!r} is not of the documented format")
        lower = {k.lower(): v for k, v in headers.items()}
        for exchange in self.exchanges:
            request = exchange["request"]
            if request["path"] != parts.path:
                continue
            if any(params.get(k) != v for k, v in request.get("params", {}).items()):
                continue
            if any(lower.get(k.lower()) != v for k, v in request.get("headers", {}).items()):
                continue
            response = exchange["response"]
            return response.get("status", 200), response.get("body", "")
        return self._refuse(f"no recorded exchange for {parts.path} {params}")

    def _refuse(self, why: str) -> tuple[int, str]:
        self.unmatched.append(why)
        return 400, why

    def __enter__(self) -> Replay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
