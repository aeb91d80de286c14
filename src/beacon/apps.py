from django.apps import AppConfig


class BeaconConfig(AppConfig):
    name = "beacon"
    verbose_name = "Beacon"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .identity import signals
        from .notifications import UserStreamPolicy
        from .streams import register

        register("user", UserStreamPolicy)
        signals.connect()
