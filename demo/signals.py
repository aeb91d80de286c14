"""The guide's pattern — notify from ``post_save`` — made safe: ``notify`` joins the
transaction that saves the comment, so a rollback notifies nobody."""

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from beacon import notify

from .models import Comment


@receiver(post_save, sender=Comment)
def notify_post_author(sender: Any, instance: Comment, created: bool, **kwargs: Any) -> None:
    if created and instance.author_id != instance.post.author_id:
        notify(
            instance.post.author,
            f"{instance.author} commented on “{instance.post.title}”",
            url=f"/posts/{instance.post_id}/",
            kind="comment",
        )
