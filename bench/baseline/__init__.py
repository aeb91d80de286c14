"""THE BASELINE: the guide's plain Django Channels setup, copied for comparison.

``consumers.py``, ``routing.py`` and ``asgi.py`` are the code of
``django-channels-realtime-guide.txt`` (its ``NotificationConsumer``, its routes, its
``asgi.py``), changed only where marked ``BENCH ADDITION``: a subclass that also joins
one broadcast group (so a ``group_send`` reaches every socket), and a publish view.
This is not Beacon; it is what Beacon is measured against.
"""
