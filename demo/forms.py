"""Forms of the demo pages: send a notification, write a post, comment on one."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from .models import Comment, Post


class RecipientField(forms.ModelChoiceField):
    """A user picker that marks the signed-in user as "(you)"."""

    def __init__(self, *args: Any, sender: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sender = sender

    def label_from_instance(self, obj: Any) -> str:
        name = obj.get_username()
        return f"{name} (you)" if self.sender is not None and obj.pk == self.sender.pk else name


class NotifyForm(forms.Form):
    """Send a notification to a user (yourself included: handy with two tabs)."""

    recipient = RecipientField(queryset=get_user_model().objects.none(), empty_label=None)
    message = forms.CharField(
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Lunch at noon?", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, sender: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["recipient"]
        assert isinstance(field, RecipientField)
        field.sender = sender
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        field.queryset = users
        # Preselect someone else: notifying another person is the usual case.
        other = users.exclude(pk=sender.pk).first()
        if other is not None and not self.is_bound:
            self.initial.setdefault("recipient", other.pk)


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title"]
        widgets = {
            "title": forms.TextInput(
                attrs={"placeholder": "What's on your mind?", "autocomplete": "off"}
            )
        }


class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["text"]
        labels = {"text": "Your comment"}
        widgets = {"text": forms.Textarea(attrs={"rows": 3, "placeholder": "Say something nice"})}
