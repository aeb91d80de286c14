"""The demo's settings plus two things only tests need in a server process: the
``slow`` stream namespace (``slowpolicy``) and ``/test/flood`` (``floodurls``)."""

from demo.settings import *  # noqa: F403
from demo.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.doors.slowpolicy.SlowPolicyConfig"]
ROOT_URLCONF = "tests.doors.floodurls"
