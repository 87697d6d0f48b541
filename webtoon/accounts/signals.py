"""API tokens die with a password change or reset, as sessions already do (issue 18)."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from . import services
from .models import ApiToken


@receiver(post_save, sender=get_user_model())
def revoke_tokens_on_password_change(sender, instance, created, **kwargs):
    # `_password` holds the new raw password from set_password() until save() has told the
    # validators: set on every change and reset (form, admin, changepassword), and not on a
    # hash upgrade at login (Django saves that with `_password` cleared first).
    if created or getattr(instance, "_password", None) is None:
        return
    ApiToken.objects.filter(user=instance, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


# Token lookups are cached briefly (services.TOKEN_CACHE_SECONDS): any change to a token or its
# user (revoked, deactivated, password changed, deleted) forgets the cached answer.
@receiver(post_save, sender=ApiToken)
@receiver(post_delete, sender=ApiToken)
def forget_cached_token(sender, instance, **kwargs):
    services.forget_tokens(instance.token_hash)


@receiver(post_save, sender=get_user_model())
def forget_cached_tokens_of_user(sender, instance, created, **kwargs):
    if not created:
        services.forget_tokens(
            *ApiToken.objects.filter(user=instance).values_list("token_hash", flat=True)
        )
