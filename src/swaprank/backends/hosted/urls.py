"""From the ``base_url`` a user writes to the URL an API is served at.

Users write a server's address in whichever form its docs show (``http://host:8000``, ``.../v1``,
the full route), and an SDK wants its base URL in one form; these accept all of them alike.
"""

from __future__ import annotations


def route_url(base_url: str, route: str, *, also: tuple[str, ...] = ()) -> str:
    """``http://host:8000``, ``.../v1`` or the full ``.../v1<route>`` (or one ending in ``also``) -> the route."""
    url = base_url.rstrip("/")
    if url.endswith((route, *also)):
        return url
    return url + (route if url.endswith("/v1") else "/v1" + route)


def with_suffix(url: str, suffix: str) -> str:
    """``url`` ending in ``suffix`` (``/v1`` for an SDK that appends its routes to it), given with or without."""
    url = url.rstrip("/")
    return url if url.endswith(suffix) else url + suffix
