"""Django's ModelBackend, with the user read of every signed-in request written once as SQL.

Every page and poll of a signed-in user reads the user row; through `.get()` that read
cost 0.17 ms, nearly all of it compiling the same query again (issue 19).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.core.exceptions import PermissionDenied

from webtoon.answers import column, instances, param


class ModelBackend(DjangoModelBackend):
    """Listed before Django's own, which stays for the sessions signed in before this one
    existed (settings.AUTHENTICATION_BACKENDS)."""

    def get_user(self, user_id):
        model = get_user_model()
        pk = model._meta.pk
        found = instances(model, f"{column(model, pk.name)} = %s", [param(model, pk.name, user_id)])
        return found[0] if found and self.user_can_authenticate(found[0]) else None

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and password is not None:
            # Django's backend, listed next, would only check the same password again (a
            # second hash per failed login). The failure is still a failure for axes.
            raise PermissionDenied
        return user
