"""A note: the data the API serves, each user's own."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Note(models.Model):  # type: ignore[misc]
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return str(self.text)
