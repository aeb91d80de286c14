"""A ``slow`` stream namespace for server processes under test: its policy blocks.

``can_subscribe`` runs in a database thread, as every policy method does. It connects
to the test at ``127.0.0.1:$SLOW_POLICY_PORT``, says ``in``, and waits for the test's
answer: a query that takes as long as the test wants, with no sleep on either side.

Used through ``tests.doors.slowsettings`` (the demo's settings plus this app).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from django.apps import AppConfig


class SlowPolicyConfig(AppConfig):
    name = "tests.doors"
    label = "slowpolicy"

    def ready(self) -> None:
        from beacon.streams import StreamPolicy, register

        class SlowPolicy(StreamPolicy):
            def can_subscribe(self, user: Any, key: str) -> bool:
                port = int(os.environ["SLOW_POLICY_PORT"])
                with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                    sock.sendall(b"in")
                    sock.recv(2)  # blocks until the test lets the policy go on
                return bool(user.is_authenticated)

        register("slow", SlowPolicy)
