"""URLs: the greeting, Django's login and logout, the admin, the API and its tokens."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from notes import api, views

from coatcheck.adapters.django import drf_views

urlpatterns = [
    path("", views.home, name="home"),
    path("name", views.set_name, name="set-name"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST, CSRF checked
    path("admin/", admin.site.urls),
    # The native client: a password for a pair, a refresh for the next pair, log out.
    path("api/token/", drf_views.TokenObtainView.as_view(), name="token"),
    path("api/token/refresh/", drf_views.TokenRefreshView.as_view(), name="token-refresh"),
    path("api/token/revoke/", drf_views.TokenRevokeView.as_view(), name="token-revoke"),
    path("api/me", api.MeView.as_view(), name="api-me"),
    path("api/notes", api.NotesView.as_view(), name="api-notes"),
]
