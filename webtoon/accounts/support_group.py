"""The "support" staff group: sees the whole back office, runs the safe actions only.

Safe actions retry or refund work, re-host a LoRA, bring a deleted character back, re-run
test images or revoke a token: none loses data. Purging (deleting) and editing raw fields
need the default add/change/delete permissions, which only superusers have.

Plain data (no model imports), so the accounts data migration and tests share it.
"""

from __future__ import annotations

from django.apps import apps as global_apps

SUPPORT_GROUP = "support"

# Every model of the back office: support gets view_<model> on each.
VIEW_MODELS = (
    ("accounts", "apitoken"),
    ("admin", "logentry"),
    ("auth", "user"),
    ("characters", "character"),
    ("characters", "characterimage"),
    ("characters", "characterversion"),
    ("characters", "creationsession"),
    ("characters", "cut"),
    ("characters", "photo"),
    ("characters", "sample"),
    ("jobs", "callattempt"),
    ("jobs", "job"),
    ("jobs", "remotecall"),
    ("notifications", "notification"),
    ("scenes", "scene"),
    ("scenes", "scenecharacter"),
)

# (app label, model, codename, name): one permission per admin action that is not a
# plain change or delete. The admin actions check these (has_<action>_permission).
ACTION_PERMISSIONS = (
    ("jobs", "job", "retry_job", "Can retry failed jobs"),
    ("jobs", "job", "refund_job", "Can mark jobs refunded"),
    ("characters", "character", "reupload_lora", "Can re-upload a character's LoRA"),
    ("characters", "character", "undelete_character", "Can undelete characters"),
    ("characters", "character", "rerun_samples", "Can re-run a character's test images"),
    ("accounts", "apitoken", "revoke_apitoken", "Can revoke API tokens"),
    # Open another user's stored files (/media/u/<id>/...): support looking at a failed job.
    # is_staff alone is not enough (webtoon/media.py).
    ("accounts", "apitoken", "view_user_media", "Can view other users' media files"),
)


def ensure_support_group(apps=global_apps):
    """Create the action permissions and the support group (idempotent; adds, never
    removes, so permissions granted by hand stay). `apps`: a migration's app registry."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")

    def permission(app_label: str, model: str, codename: str, name: str):
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        perm, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        return perm

    perms = [permission(a, m, f"view_{m}", f"Can view {m}") for a, m in VIEW_MODELS]
    perms += [permission(*spec) for spec in ACTION_PERMISSIONS]
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    group.permissions.add(*perms)
    return group
