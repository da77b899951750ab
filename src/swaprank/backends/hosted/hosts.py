"""Where a credential from the environment may be sent: the one check, for every hosted backend.

A config string decides ``base_url`` (or a self-hosted server's address); the environment holds the
keys (``JINA_API_KEY``, ``VLLM_API_KEY``, the AWS credential chain). Whoever writes the string must
not thereby decide where those keys go, so a key the backend read from the environment is sent only
to an approved host:

- the vendor's own hosts (``HostedBackend.vendor_hosts()``: where it sends without ``base_url``);
- loopback (``localhost``, ``127.0.0.0/8``, ``::1``): a server on this machine (or this pod) is
  run by whoever runs swaprank, and Ollama, vLLM or a test fake on it should just work;
- the hosts listed in ``SWAPRANK_ALLOWED_HOSTS`` (comma or space separated; ``*.corp.example``
  allows every subdomain of ``corp.example``, not the domain itself; a port or scheme is ignored).

A key passed in code (``api_key=``) goes wherever the same code's config string says: that pairing
is the caller's decision. Failing that check raises ``UnapprovedHostError`` when the backend is
built, before any client exists, so nothing is ever sent to the host.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from swaprank.redaction import redact_config
from swaprank.types import UnapprovedHostError

ENV_ALLOWED_HOSTS = "SWAPRANK_ALLOWED_HOSTS"
_SPLIT = re.compile(r"[,\s]+")
# An http(s) URL whose authority every HTTP stack reads alike: no backslash, space or control
# character, which parsers split differently (urllib3 reads "http://evil\\@127.0.0.1" as host
# "evil", Python and httpx as "127.0.0.1").
_PLAIN_URL = re.compile(r"(?i)https?://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]*(?:[/?#][^\\\s]*)?")


def host_of(url: str) -> str | None:
    """The host of an http(s) URL, lower-cased, without userinfo, port, brackets or a trailing dot;
    None for anything else (refused: a URL read two ways is never approved)."""
    if not _PLAIN_URL.fullmatch(url):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def _entry_host(entry: str) -> str:
    entry = entry.strip().lower()
    if "://" in entry:
        return host_of(entry) or ""
    if entry.startswith("["):  # [::1]:8000
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        entry = entry.partition(":")[0]
    return entry.rstrip(".")


def allowed_hosts() -> tuple[str, ...]:
    """The hosts ``SWAPRANK_ALLOWED_HOSTS`` approves (read on every check: no stale cache)."""
    raw = os.environ.get(ENV_ALLOWED_HOSTS, "")
    return tuple(host for host in (_entry_host(e) for e in _SPLIT.split(raw)) if host)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listed(host: str, entries: Iterable[str]) -> bool:
    for entry in entries:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def approved(host: str, vendor_hosts: Iterable[str]) -> bool:
    """Whether a credential from the environment may go to ``host`` (see the module docstring)."""
    return host in set(vendor_hosts) or is_loopback(host) or _listed(host, allowed_hosts())


def check_destination(vendor: str, url: str, vendor_hosts: Iterable[str], credential: str, *,
                      in_code: str = "pass the key in code (api_key=...)") -> None:
    """Raise ``UnapprovedHostError`` unless ``credential`` (how the error names it, e.g. "the key in
    $JINA_API_KEY") may be sent to ``url``'s host; ``in_code`` is the other fix the error offers."""
    host = host_of(url)
    other = f", or {in_code}" if in_code else ""
    if host is None:
        raise UnapprovedHostError(
            f"{vendor}: {credential} would be sent to {redact_config(url)!r}, which names no host; write the "
            f"address as http(s)://host[:port]{other}", host="", backend=vendor)
    if not approved(host, vendor_hosts):
        raise UnapprovedHostError(
            f"{vendor}: {credential} would be sent to {host!r}, a host nobody approved; approve it with "
            f"{ENV_ALLOWED_HOSTS}={host} (comma-separated hosts; *.domain for its subdomains){other}",
            host=host, backend=vendor)
