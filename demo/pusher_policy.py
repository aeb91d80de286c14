"""The demo's Pusher channels: anyone signed in may join ``private-demo…`` and
``presence-demo…`` channels (``docs/pusher.md``). Chat rooms need no policy here:
``presence-room.{id}`` is the room's own stream, authorized by the room's policy."""

from typing import Any

from beacon.pusher.policy import PusherChannelPolicy
from beacon.streams import register


@register("pusher")
class DemoChannels(PusherChannelPolicy):
    def can_join(self, user: Any, channel: str) -> bool:
        return channel.startswith(("private-demo", "presence-demo"))
