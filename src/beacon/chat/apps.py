from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "beacon.chat"
    label = "beacon_chat"
    verbose_name = "Beacon chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import policy, signals  # noqa: F401  (registers the room streams, receivers)
