"""The demo's pages: the notifications home, posts with comments, the notify form.

Nothing here pushes anything by hand: the notify form calls ``beacon.notify`` and a
new comment notifies through ``post_save`` (``demo/signals.py``). The live parts of
the pages (bell, badge, connection indicator) are ``demo/static/demo/bell.js`` on
top of Beacon's JavaScript client.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from beacon import notify
from beacon.identity.limits import user_rate_limited
from beacon.metrics import metrics_view

from .forms import CommentForm, NotifyForm, PostForm
from .models import Post

RECENT_POSTS = 20


def _home(request: HttpRequest, *, status: int = 200, **forms: Any) -> HttpResponse:
    posts = (
        Post.objects.select_related("author")
        .annotate(comment_count=Count("comments"))
        .order_by("-created_at", "-pk")[:RECENT_POSTS]
    )
    context = {
        "notify_form": forms.get("notify_form") or NotifyForm(sender=request.user),
        "post_form": forms.get("post_form") or PostForm(),
        "posts": posts,
    }
    return render(request, "demo/home.html", context, status=status)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _home(request)


@login_required
@require_POST
@user_rate_limited
def send_notification(request: HttpRequest) -> HttpResponse:
    form = NotifyForm(request.POST, sender=request.user)
    if not form.is_valid():
        return _home(request, status=400, notify_form=form)
    recipient = form.cleaned_data["recipient"]
    notify(
        recipient,
        form.cleaned_data["message"],
        kind="direct",
        sender=request.user.get_username(),
    )
    messages.success(request, f"Sent to {recipient.get_username()}.")
    return redirect("home")


@login_required
@require_POST
def create_post(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST)
    if not form.is_valid():
        return _home(request, status=400, post_form=form)
    post = form.save(commit=False)
    post.author = request.user
    post.save()
    messages.success(request, "Posted. Comments on it will notify you.")
    return redirect("post-detail", pk=post.pk)


@login_required
def post_detail(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    form = CommentForm()
    if request.method == "POST":
        form = CommentForm(request.POST)
        if form.is_valid():
            comment = form.save(commit=False)
            comment.post = post
            comment.author = request.user
            comment.save()  # post_save notifies the post's author (demo/signals.py)
            if post.author_id == request.user.pk:
                messages.success(request, "Comment posted.")
            else:
                messages.success(
                    request, f"Comment posted: {post.author.get_username()} was notified."
                )
            return redirect(reverse("post-detail", args=[post.pk]) + "#comments")
    comments = post.comments.select_related("author").order_by("created_at", "pk")
    status = 400 if form.is_bound else 200
    return render(
        request,
        "demo/post_detail.html",
        {"post": post, "comments": comments, "form": form},
        status=status,
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """``/metrics`` for staff, or for the addresses in ``METRICS_ALLOWED_ADDRS``.

    ``make demo`` has no Nginx in front to keep it internal; behind Nginx (with the
    server's ``--proxy-headers``) the address is the real client's.
    """
    allowed = request.META.get("REMOTE_ADDR") in settings.METRICS_ALLOWED_ADDRS
    if not (allowed or request.user.is_staff):
        return HttpResponseForbidden("metrics are for staff and the allowed addresses\n")
    return metrics_view(request)


@login_required
def pusher_demo(request: HttpRequest) -> HttpResponse:
    """Laravel Echo (pusher-js underneath), served as is, on Beacon's Pusher door."""
    from django.http import Http404

    from beacon.pusher.core import get_apps

    app = next(iter(get_apps().by_key.values()), None)
    if app is None:
        raise Http404("no Pusher app is configured (BEACON_PUSHER_SECRET)")
    context = {
        "pusher": {"key": app.key, "tls": request.is_secure(), "name": request.user.get_username()}
    }
    return render(request, "demo/pusher.html", context)


@login_required
@require_POST
def pusher_note(request: HttpRequest) -> HttpResponse:
    """A note for ``private-demo.notes``, to the others (Echo's ``X-Socket-Id``): the
    page shows its own note at once. Stored in the log, then sent."""
    from beacon.pusher.server import trigger

    text = request.POST.get("text", "").strip()[:200]
    if not text:
        return HttpResponse("a note needs text", status=400)
    note = {"text": text, "author": request.user.get_username()}
    trigger("private-demo.notes", "note", note, socket_id=request.headers.get("X-Socket-Id"))
    return HttpResponse(status=204)
