"""API authentication: a per-user Bearer token for scripts, the session (+CSRF) for browsers."""

from django.utils.translation import gettext as _
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.security.session import SessionAuth
from ninja.utils import check_csrf

from webtoon.accounts.services import user_for_token


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class SessionCsrfAuth(SessionAuth):
    """Django's session, with CSRF enforced on unsafe methods.

    ninja's stock SessionAuth checks CSRF before it knows whether anyone is logged in, so an
    anonymous request would get 403 instead of 401; here an anonymous request is simply
    unauthenticated, and a logged-in one must carry the CSRF token.
    """

    def _get_key(self, request):
        if not request.user.is_authenticated:
            return None
        if check_csrf(request):
            raise HttpError(
                403, _("CSRF 검증에 실패했습니다. 페이지를 새로고침한 뒤 다시 시도해주세요.")
            )
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request, key):
        return request.user if request.user.is_authenticated else None


api_auth = [BearerToken(), SessionCsrfAuth()]
