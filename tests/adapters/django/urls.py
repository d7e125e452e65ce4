"""Views for the Django adapter's tests: the shapes a project has (a login form, an API,
a password change, sync and async views, the admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from coatcheck.adapters.django.shortcuts import api_login_required, json_body
from coatcheck.adapters.django.signals import LOGIN_ATTR


def _who(user: Any) -> str | None:
    return user.get_username() if user.is_authenticated else None


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _who(request.user)})


async def awhoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _who(await request.auser())})


def login_view(request: HttpRequest) -> JsonResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"error": "invalid_login"}, status=400)
    login(request, user)
    result = getattr(request, LOGIN_ATTR, None)
    return JsonResponse(
        {
            "user": user.get_username(),
            "token": None if result is None else result.token,
            "refresh_token": None if result is None else result.refresh_token,
        }
    )


async def alogin_view(request: HttpRequest) -> JsonResponse:
    from asgiref.sync import sync_to_async

    data = json_body(request)
    user = await sync_to_async(authenticate)(
        request, username=data.get("username"), password=data.get("password")
    )
    if user is None:
        return JsonResponse({"error": "invalid_login"}, status=400)
    try:
        from django.contrib.auth import alogin  # Django 5
    except ImportError:  # Django 4.2
        await sync_to_async(login)(request, user)
    else:
        await alogin(request, user)
    return JsonResponse({"user": user.get_username()})


def logout_view(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({"user": None})


def change_password(request: HttpRequest) -> JsonResponse:
    user = request.user
    user.set_password(request.POST["password"])
    user.save()
    update_session_auth_hash(request, user)
    return JsonResponse({"changed": True})


@login_required
def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse("private")


@api_login_required
def api_me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _who(request.user)})


@api_login_required
async def aapi_me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _who(await request.auser())})


def api_echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"got": json_body(request)})


def unsafe(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _who(request.user), "done": True})


def session_counter(request: HttpRequest) -> JsonResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return JsonResponse({"n": request.session["n"]})


urlpatterns = [
    path("whoami", whoami),
    path("awhoami", awhoami),
    path("login", csrf_exempt(login_view)),
    path("alogin", csrf_exempt(alogin_view)),
    path("logout", logout_view),
    path("change-password", change_password),
    path("private", private),
    path("api/me", api_me),
    path("api/ame", aapi_me),
    path("api/echo", csrf_exempt(api_echo)),
    path("unsafe", unsafe),
    path("counter", session_counter),
    path("admin/", admin.site.urls),
]


def csrf_view(request: HttpRequest) -> JsonResponse:
    from django.middleware.csrf import get_token

    return JsonResponse({"csrf": get_token(request)})


urlpatterns.append(path("csrf", csrf_view))
