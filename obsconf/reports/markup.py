"""What every HTML page of the reports builds on: escaping, truncation and Grafana links.

Every string a page shows goes through `esc` (quotes included, so it is safe in attributes);
the only links off a page are `explore_url`'s, and only when a Grafana URL is given.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote


def esc(value: object) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a `… N more chars` note."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit} more chars"


def truncate_label(text: str, chars: float) -> str:
    """`text` cut to `chars` characters with an ellipsis."""
    limit = max(int(chars), 4)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explore_url(grafana_url: str, trace_id: str, datasource: str = "traces") -> str:
    """A Grafana Explore link that opens `trace_id` in the trace data source `datasource`.

    Format (Grafana ≥ 10 `panes` URLs):
    `{grafana_url}/explore?schemaVersion=1&orgId=1&panes=<url-encoded JSON>` where the JSON is
    `{"trace": {"datasource": DS, "queries": [{"refId": "A", "datasource": {"uid": DS},
    "query": TRACE_ID}], "range": {"from": "now-6h", "to": "now"}}}` — a bare trace id as the
    query is a trace-id lookup in the Tempo and Jaeger data sources.
    """
    pane = {
        "trace": {
            "datasource": datasource,
            "queries": [{"refId": "A", "datasource": {"uid": datasource}, "query": trace_id}],
            "range": {"from": "now-6h", "to": "now"},
        }
    }
    panes = quote(json.dumps(pane, separators=(",", ":")), safe="")
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={panes}"


def trace_link(trace_id: str, grafana_url: str | None) -> str:
    """The trace id, linked to Grafana Explore when there is a Grafana."""
    if grafana_url and trace_id:
        href = esc(explore_url(grafana_url, trace_id))
        return f'<a href="{href}" target="_blank">{esc(trace_id)}</a>'
    return f"<code>{esc(trace_id)}</code>"
