"""``POST /beacon/tickets/``: a one-time ticket for a WebSocket handshake.

Asked with the session cookie (CSRF-checked, like any form) or with an
``Authorization: Bearer`` token (no CSRF: a browser never sends one on its own).
Answers ``{"ticket": "...", "expires_in": N}``; the ticket is good for one handshake
(``?ticket=...``) within ``TICKET_SECONDS``. Nothing here logs it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..conf import get_config
from ..views import json_error
from .authenticators import issue_ticket, token_user, verify_token
from .core import Handshake, Refused, authenticators
from .limits import rate_limit_response


@csrf_exempt  # checked below when the session is the credential
@require_POST
def tickets(request: HttpRequest) -> HttpResponse:
    authorization = {"authorization": request.headers.get("Authorization", "")}
    token = Handshake(headers=authorization, query={}, cookies={}).bearer_token()
    expires: float | None = None
    session_key: str | None = None
    if token is not None:
        if not any(getattr(a, "method", None) == "bearer" for a in authenticators()):
            return json_error("unauthenticated", "bearer tokens are not enabled", 401)
        try:
            claims = verify_token(token)
            user: Any = token_user(claims)
        except Refused as exc:
            return json_error("unauthenticated", exc.reason, 401)
        expires = claims["exp"]
    else:
        user = request.user
        if not user.is_authenticated:
            return json_error("unauthenticated", "sign in first", 401)
        refused = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(
            request, None, (), {}  # type: ignore[arg-type]
        )
        if refused is not None:
            return json_error("csrf", "CSRF check failed", 403)
        session_key = request.session.session_key
    limited = rate_limit_response(user)
    if limited is not None:
        return limited
    ticket = issue_ticket(user, session_key=session_key, credential_expires=expires)
    response = JsonResponse({"ticket": ticket, "expires_in": get_config()["TICKET_SECONDS"]})
    response["Cache-Control"] = "no-store"
    return response
