from django.apps import AppConfig


class BeaconConfig(AppConfig):
    name = "beacon"
    verbose_name = "Beacon"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .notifications import UserStreamPolicy
        from .streams import register

        register("user", UserStreamPolicy)

        from .identity import signals

        signals.connect()

        from .pusher import checks as _  # noqa: F401  (Pusher checks, policy)
