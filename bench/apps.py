from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Registers the ``bench`` stream namespace when Beacon is under benchmark."""

    name = "bench"
    label = "bench"

    def ready(self) -> None:
        from beacon.streams import StreamPolicy, register

        class BenchPolicy(StreamPolicy):
            def can_subscribe(self, user, key):  # type: ignore[no-untyped-def]
                return bool(user.is_authenticated)

        register("bench", BenchPolicy)
