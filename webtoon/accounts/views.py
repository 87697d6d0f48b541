import math

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webtoon.exceptions import TooManyRequests

from . import services, throttle
from .forms import SignupForm, TokenForm
from .models import ApiToken, PendingEmailVerification


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    verify = settings.SIGNUP_REQUIRE_EMAIL_VERIFICATION
    form = SignupForm(request.POST or None, require_email=verify)
    if request.method == "POST" and form.is_valid():
        try:
            throttle.check_signup(request)
        except TooManyRequests as exc:
            response = render(
                request, "registration/signup.html", {"form": form, "error": str(exc)}, status=429
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
        with transaction.atomic():
            user = form.save()
            if verify:
                services.require_verification(user, form.cleaned_data["email"])
        # Sessions go through the model backend (AUTHENTICATION_BACKENDS starts with axes).
        login(request, user, backend="webtoon.accounts.backends.ModelBackend")
        if verify:
            messages.info(
                request,
                _("가입을 환영합니다! %(email)s(으)로 보낸 메일의 링크를 눌러 주소를 확인해주세요. "
                  "확인 전에는 비용이 드는 작업을 시작할 수 없습니다.")
                % {"email": form.cleaned_data["email"]},
            )
        else:
            messages.success(request, _("가입을 환영합니다!"))
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request, token: str):
    user = services.verify_email(token)
    if user is None:
        messages.error(request, _("확인 링크가 올바르지 않거나 만료되었습니다."))
    else:
        messages.success(request, _("이메일 주소를 확인했습니다. 이제 모든 기능을 쓸 수 있습니다."))
    return redirect("home" if request.user.is_authenticated else "login")


def locked_out(request, original_response=None, credentials=None):
    """django-axes: too many failed logins for this account or from this address. The login
    page again (the admin's on /admin/login/), with a Korean message and the time to wait."""
    wait = max(1, math.ceil(login_wait_seconds(request, credentials) / 60))
    message = _(
        "로그인 시도가 너무 많습니다. %(n)d분 후에 다시 시도해주세요."
    ) % {"n": wait}
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    elif request.path.startswith("/admin/"):
        messages.error(request, message)  # the admin's login page shows messages
        context = {
            **admin.site.each_context(request),
            "form": AdminAuthenticationForm(request),
            "app_path": request.get_full_path(),
            "lockout_message": message,
        }
        response = render(request, "admin/login.html", context, status=429)
    else:
        context = {"form": AuthenticationForm(request), "lockout_message": message}
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(wait * 60)
    return response


def login_wait_seconds(request, credentials) -> float:
    """Seconds until the newest failure that counts (by account or by address) ages out."""
    from axes.helpers import get_client_username, get_cool_off
    from axes.models import AccessAttempt

    username = get_client_username(request, credentials)
    ip = throttle.client_ip(request)
    last = (
        AccessAttempt.objects.filter(Q(username=username) | Q(ip_address=ip))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    cool_off = get_cool_off(request)
    if last is None or cool_off is None:
        return cool_off.total_seconds() if cool_off else 60
    return (last + cool_off - timezone.now()).total_seconds()


@login_required
def profile(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _token, new_token = services.create_api_token(
            user=request.user, name=form.cleaned_data["name"]
        )
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    pending = PendingEmailVerification.objects.filter(user=request.user).first()
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "tokens": tokens, "new_token": new_token, "pending_verification": pending},
    )


@login_required
@require_POST
def verify_email_resend(request):
    """The verification link again (at most once a minute: RateEvent)."""
    pending = get_object_or_404(PendingEmailVerification, user=request.user)
    try:
        throttle.hit(f"verify-resend:u{request.user.pk}", "1/1m")
    except TooManyRequests as exc:
        messages.error(request, str(exc))
    else:
        services.require_verification(request.user, pending.email)
        messages.info(request, _("확인 메일을 다시 보냈습니다."))
    return redirect("profile")


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.revoke_api_token(token)
    messages.info(request, _("토큰을 폐기했습니다."))
    return redirect("profile")
