"""The core's browser fixtures (Chromium via Playwright, a Daphne server), reused."""

from ...browser.conftest import *  # noqa: F403
