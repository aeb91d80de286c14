"""The demo's chat pages (see issue: chat rooms)."""

urlpatterns: list = []
