"""The browser side: the greeting (the demo's), a name kept in ``request.session``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

MAX_NAME = 40


@require_http_methods(["GET", "HEAD"])  # type: ignore[untyped-decorator]
def home(request: HttpRequest) -> HttpResponse:
    # request.session is coatcheck's session engine: a guest has one too, once it
    # stores something (the name), and logout() ends it.
    name = request.session.get("name")
    return render(request, "notes/home.html", {"name": name})


@require_POST  # type: ignore[untyped-decorator]
def set_name(request: HttpRequest) -> HttpResponse:
    # CsrfViewMiddleware has checked the token: this form changes state.
    name = " ".join(request.POST.get("name", "").split())[:MAX_NAME]
    if name:
        request.session["name"] = name
    else:
        request.session.pop("name", None)
    return redirect("home")
