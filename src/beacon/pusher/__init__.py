"""The Pusher protocol (version 7) on Beacon's streams: pusher-js, Laravel Echo and the
Pusher server SDKs talk to a Django deployment unchanged.

Layout, pure first:

* ``protocol`` — frames in and out, close and error codes, channel names and types;
* ``signing`` — channel/user auth signatures, signed HTTP API requests, webhook bodies;
* ``mapping`` — which Beacon stream a Pusher channel is, and how a stored Beacon frame
  reads as a Pusher event;
* ``apps`` — the apps of ``BEACON["PUSHER_APPS"]``;
* ``consumer`` (the ``/app/{key}`` WebSocket door), ``routing``, ``views`` (auth
  endpoints, HTTP API), ``server`` (``trigger`` from Django code), ``webhooks``,
  ``policy``, ``checks`` — the Django/asyncio side.

Only ``core.py`` imports Beacon's core modules, so a move of the core re-points one
file. See ``docs/pusher.md``.
"""
