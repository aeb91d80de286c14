"""``manage.py demo_users``: the demo's users and a few posts to comment on. Idempotent."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.models import Post

DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "beacon-demo"
DEMO_POSTS = {
    "alice": ("Launch checklist for Friday", "What we learned from Tuesday's outage"),
    "bob": ("Notes from the design review",),
    "carol": ("Ideas for the team offsite", "Reading list: distributed systems"),
}


class Command(BaseCommand):
    help = f"Create the demo users {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD!r})."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        for name in DEMO_USERS:
            user, created = User.objects.get_or_create(username=name)
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save()
            for title in DEMO_POSTS.get(name, ()):
                Post.objects.get_or_create(author=user, title=title)
        self.stdout.write(f"demo users: {', '.join(DEMO_USERS)} / password: {DEMO_PASSWORD}")
