from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "beacon-demo"


class Command(BaseCommand):
    help = f"Create the demo users {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD!r})."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        for name in DEMO_USERS:
            user, created = User.objects.get_or_create(username=name)
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save()
        self.stdout.write(f"demo users: {', '.join(DEMO_USERS)} / password: {DEMO_PASSWORD}")
