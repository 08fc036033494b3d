"""Errors every backend client raises, naming the URL and the query."""

from __future__ import annotations

import httpx


class BackendError(RuntimeError):
    """A backend answered, but not with what was asked (bad query, server error)."""


class BackendUnreachable(BackendError):
    """Nothing answered at the backend URL."""


def get_json(client: httpx.Client, url: str, what: str, **kwargs: object) -> object:
    """GET/POST helper: JSON body, or an error saying which URL and which query failed."""
    method = "POST" if "data" in kwargs else "GET"
    try:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError as error:
        raise BackendUnreachable(f"{what}: cannot reach {url}: {error}") from error
    if response.status_code >= 400:
        raise BackendError(f"{what}: {url} answered {response.status_code}: {response.text[:500]}")
    return response.json()
