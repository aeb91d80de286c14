"""Chat rooms on Beacon's durable streams: ``INSTALLED_APPS += ["beacon.chat"]``.

A room is the stream ``room:{id}``, so its messages inherit ordering, resume and gap
filling. Presence, typing and read receipts travel as ephemeral events on the same
stream; each user's room list (``rooms:{user_id}``) hears unread counts change. The
wire format and a how-to are in ``docs/chat.md``.
"""
