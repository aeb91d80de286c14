"""The stream policy of Pusher channels that no rule maps onto an app's stream.

Such a channel is the stream ``pusher:{channel name}`` (see ``mapping``). Public
channels are public, as on Pusher: anyone may subscribe, signed in or not. Private and
presence channels are refused unless a project registers its own policy for the
namespace, the one place authorization lives::

    from beacon.pusher.policy import PusherChannelPolicy
    from beacon.streams import register

    @register("pusher")
    class Channels(PusherChannelPolicy):
        def can_join(self, user, channel):      # channel: "private-orders", …
            return user.is_authenticated and channel == "private-orders"
"""

from __future__ import annotations

from typing import Any

from .core import StreamPolicy, register
from .mapping import fallback_kind
from .protocol import Kind


class PusherChannelPolicy(StreamPolicy):
    def can_subscribe(self, user: Any, key: str) -> bool:
        if fallback_kind(key) is Kind.PUBLIC:
            return True
        return bool(getattr(user, "is_authenticated", False)) and self.can_join(user, key)

    def can_join(self, user: Any, channel: str) -> bool:
        """May a signed-in user join this private or presence channel? No, by default.

        ``channel`` is the channel's name, or for a name that is no stream key its type
        prefix and a hash (``private-_3fa…``): map such channels with a rule instead.
        """
        return False


register("pusher", PusherChannelPolicy)


class ControlPolicy(StreamPolicy):
    """``pusher-ctl:{app}.{user}``: the door's own orders to a user's sockets
    (``terminate_connections``), published by the server, subscribed by no client."""


register("pusher-ctl", ControlPolicy)
