"""``python -m beacon.client tail URL STREAM…``: see :mod:`beacon.client.tail`."""

from __future__ import annotations

import sys

from .tail import main

sys.exit(main())
