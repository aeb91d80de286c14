"""The demo's Content-Security-Policy, for Django versions without their own.

Django 6.0 has ``SECURE_CSP`` and ``ContentSecurityPolicyMiddleware``; the demo uses
them where they exist (``demo/settings.py``) and this small equivalent otherwise. The
policy is the same: scripts, styles, images and sockets from the site itself only, the
page's one inline script (the import map) allowed by a per-response nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

NONCE = "<nonce>"  # stands for "'nonce-…'" in DEMO_CSP, as Django 6's CSP.NONCE does


def header_value(policy: dict[str, list[str]], nonce: str) -> str:
    """``policy`` as a header, the nonce placeholder replaced."""
    parts = []
    for directive, sources in policy.items():
        values = [f"'nonce-{nonce}'" if source == NONCE else source for source in sources]
        parts.append(" ".join([directive, *values]))
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` from ``settings.DEMO_CSP`` to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.headers.setdefault(
            "Content-Security-Policy", header_value(settings.DEMO_CSP, request.csp_nonce)
        )
        return response


def nonce(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``csp_nonce``, as Django 6's ``context_processors.csp``."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
