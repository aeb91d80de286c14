# BASELINE: the guide's myapp/consumers.py, verbatim (see bench/baseline/__init__.py).
import json

from channels.generic.websocket import AsyncWebsocketConsumer


class NotificationConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user_id = self.scope["user"].id
        self.group_name = f"notifications_{self.user_id}"
        # Join the user's notification group
        await self.channel_layer.group_add(
            self.group_name,
            self.channel_name,
        )
        await self.accept()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(
            self.group_name,
            self.channel_name,
        )

    async def receive(self, text_data):
        # Handle incoming messages from the client (optional)
        data = json.loads(text_data)  # noqa: F841
        # Process or echo

    async def notification_message(self, event):
        # Called when a message is sent to the group
        await self.send(
            text_data=json.dumps(
                {
                    "type": "notification",
                    "message": event["message"],
                }
            )
        )


# BENCH ADDITION: every socket also joins one group, so that one group_send is a
# broadcast (the guide's way to reach everyone).
BROADCAST_GROUP = "bench_all"


class BroadcastNotificationConsumer(NotificationConsumer):
    async def connect(self):
        await self.channel_layer.group_add(BROADCAST_GROUP, self.channel_name)
        await super().connect()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(BROADCAST_GROUP, self.channel_name)
        await super().disconnect(close_code)
