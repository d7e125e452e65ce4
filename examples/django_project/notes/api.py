"""The API a native client uses (bearer + refresh) and the browser may use (cookie,
CSRF checked): who am I, and my notes. Authentication and permission come from
``REST_FRAMEWORK`` in the settings."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Note


class MeView(APIView):  # type: ignore[misc]
    def get(self, request: Request) -> Response:
        return Response(
            {
                "username": request.user.get_username(),
                "mode": request.auth.mode,  # coatcheck's Identity: how it came in
                "via": request.auth.via,
            }
        )


class NoteSerializer(serializers.ModelSerializer):  # type: ignore[misc]
    class Meta:
        model = Note
        fields = ("id", "text", "created")


class NotesView(generics.ListCreateAPIView):  # type: ignore[misc]
    serializer_class = NoteSerializer

    def get_queryset(self) -> QuerySet[Note]:
        return Note.objects.filter(owner=self.request.user)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(owner=self.request.user)
