"""Stream names and who may do what with them.

A stream name is ``namespace:key`` — ``user:7``, ``room:42``. The namespace picks the
:class:`StreamPolicy` that authorizes every subscribe (and resume), client publish
and mark-read on streams of that namespace; a name whose namespace has no policy is
an unknown stream. Policies are declared once, in code, with :func:`register`::

    from beacon.streams import StreamPolicy, register

    @register("project")
    class ProjectPolicy(StreamPolicy):
        def can_subscribe(self, user, key):
            return Project.objects.filter(pk=key, members=user).exists()

Beacon registers ``user`` (a user's own notifications, ``notifications.UserStreamPolicy``)
when its app is ready; this module registers nothing itself. Policy methods are plain
synchronous functions; the consumer runs them off the event loop, so they may query
the database.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .exceptions import ProtocolError, StreamError
from .protocol import ErrorCode

if TYPE_CHECKING:
    from .eventlog import Appended, Position
    from .protocol import Publish

_NAMESPACE = re.compile(r"[a-z][a-z0-9_-]{0,23}")
_NAME = re.compile(rf"(?P<namespace>{_NAMESPACE.pattern}):(?P<key>[A-Za-z0-9_.-]{{1,64}})")


def parse_stream(name: str) -> tuple[str, str]:
    """Split ``namespace:key``, or raise ``StreamError`` for a malformed name."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise StreamError(f"malformed stream name {str(name)[:80]!r}")
    return match["namespace"], match["key"]


def group_name(stream: str) -> str:
    """The channel-layer group for a stream (channel layers forbid ':' in names).

    Namespaces hold no '.', so the first '.' after the prefix separates the two parts
    and the mapping is one-to-one.
    """
    namespace, key = parse_stream(stream)
    return f"beacon.{namespace}.{key}"


def user_stream(user_or_id: Any) -> str:
    """The notification stream of a user (or of a user id)."""
    pk = getattr(user_or_id, "pk", user_or_id)
    return f"user:{pk}"


class StreamPolicy:
    """What a user may do with the streams of one namespace. Deny by default."""

    def is_canonical(self, key: str) -> bool:
        """Is ``key`` the one spelling of a stream of this namespace? No queries here.

        Others are ``invalid_stream`` on a socket or over HTTP, and ``publish()`` raises
        ``PublishError`` for them. A namespace whose keys are numbers says no to ``abc``
        (no stream anyone could receive) and to ``02`` (``room:2`` is the room), so that
        one stream never has two names, two permission checks or two rows.
        """
        return True

    def can_subscribe(self, user: Any, key: str) -> bool:
        return False

    def can_publish(self, user: Any, key: str) -> bool:
        """May the user publish to the stream from a socket (a chat message, say)?"""
        return False

    def can_read(self, user: Any, key: str) -> bool:
        """May the user mark events of the stream read? Subscribers may, by default."""
        return self.can_subscribe(user, key)

    def subscribe_state(self, user: Any, key: str) -> dict[str, Any] | None:
        """Extra state sent in the ``subscribed`` frame (e.g. an unread count)."""
        return None

    def subscribe_state_at(self, user: Any, key: str, position: Position) -> dict[str, Any] | None:
        """What the doors call for the ``subscribed`` frame's state, with the stream's
        position they just read: :meth:`subscribe_state`, unless a policy can answer from
        the position without another query (the user stream's unread count)."""
        return self.subscribe_state(user, key)

    def mark_read(self, user: Any, key: str, *, seq: int | None, up_to: int | None) -> None:
        """Record that the user read events of the stream (see ``beacon.notifications``)."""
        raise ProtocolError(ErrorCode.UNSUPPORTED, "this stream keeps no read state")

    def publish(self, user: Any, key: str, frame: Publish) -> Appended:
        """Store and deliver a client's publish; called only if ``can_publish`` allowed it."""
        raise ProtocolError(ErrorCode.UNSUPPORTED, "this stream takes no client publishes")

    # Async hooks, run on the event loop by the socket's consumer.

    async def joined(self, consumer: Any, key: str) -> None:
        """A socket finished subscribing (e.g. to record presence)."""

    async def left(self, consumer: Any, key: str) -> None:
        """A socket unsubscribed or closed."""

    async def typing(self, consumer: Any, key: str) -> None:
        """A subscribed socket said its user is typing."""
        raise ProtocolError(ErrorCode.UNSUPPORTED, "this stream takes no typing events")


def is_canonical_pk(model: Any, key: str) -> bool:
    """Whether ``key`` is a primary key of ``model`` as it is written (``7``; not ``07``,
    not ``abc``)."""
    try:
        return str(model._meta.pk.to_python(key)) == key
    except Exception:  # ValidationError and the like: no key of this model
        return False


_policies: dict[str, StreamPolicy] = {}


def register(namespace: str, policy: StreamPolicy | type[StreamPolicy] | None = None) -> Any:
    """Register the policy of a namespace; usable as a class decorator."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise StreamError(f"malformed stream namespace {namespace!r}")

    def add(item: StreamPolicy | type[StreamPolicy]) -> Any:
        _policies[namespace] = item() if isinstance(item, type) else item
        return item

    return add if policy is None else add(policy)


def policy_for(stream: str) -> tuple[StreamPolicy, str]:
    """The policy and key of a stream, or ``StreamError`` if its namespace is unknown."""
    namespace, key = parse_stream(stream)
    try:
        return _policies[namespace], key
    except KeyError:
        raise StreamError(f"no stream namespace {namespace!r}") from None

