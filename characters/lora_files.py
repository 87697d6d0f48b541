"""fal file URLs expire (SPEC §11.3): a LoRA URL that fal can no longer fetch is replaced
by a fresh upload of our own stored copy, and the request is tried again, once."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _

from webtoon.imaging import BackendError
from webtoon.jobs import hosting
from webtoon.jobs.models import RemoteCall

from .models import Character, CharacterVersion

logger = logging.getLogger(__name__)

EXPIRED_MESSAGE = "LoRA 파일이 만료되었습니다. 백업에서 복원해주세요."
# How fal reports a weights file it could not fetch: the URL plus a 404/403 in the message.
GONE = re.compile(r"\b(404|403)\b|not found|forbidden|expired|access denied", re.IGNORECASE)


def _expired_paths(call: RemoteCall, error: BackendError) -> list[str]:
    text = str(error)
    status = getattr(error, "status_code", None)
    paths = [lora.get("path", "") for lora in call.arguments.get("loras") or []]
    named = [p for p in paths if p and p in text]
    if named and (GONE.search(text) or status in (403, 404)):
        return named
    return []


def recover_expired_lora(call: RemoteCall, error: BackendError) -> str | None:
    """Job hook (on_call_error): "retry" after re-hosting the expired LoRA(s) from our
    storage, "fail" with the restore-from-backup message when we have no copy."""
    expired = _expired_paths(call, error)
    if not expired:
        return None
    fresh = {}
    for url in expired:
        new_url = refresh_lora_url(url, owner_id=call.job.owner_id, backend_name=call.backend)
        if new_url is None:
            call.error_code, call.error_message = "lora_expired", _(EXPIRED_MESSAGE)
            return "fail"
        fresh[url] = new_url
    for lora in call.arguments["loras"]:
        lora["path"] = fresh.get(lora.get("path"), lora.get("path"))
    logger.info("re-hosted %d expired LoRA file(s) for call %s", len(fresh), call.pk)
    return "retry"


def refresh_lora_url(url: str, *, owner_id: int, backend_name: str | None = None) -> str | None:
    """Upload our copy of the LoRA behind `url` again and point every row at the new URL.
    None when no stored copy exists."""
    versions = list(
        CharacterVersion.objects.filter(lora_url=url, character__owner_id=owner_id)
        .exclude(lora_file="")
        .select_related("character")
    )
    source = versions[0].lora_file if versions else None
    if source is None:
        character = (
            Character.objects.filter(lora_url=url, owner_id=owner_id).exclude(lora_file="").first()
        )
        source = character.lora_file if character else None
    if source is None:
        return None
    new_url = upload_lora(source, backend_name or settings.WEBTOON_BACKEND)
    CharacterVersion.objects.filter(lora_url=url, character__owner_id=owner_id).update(
        lora_url=new_url
    )
    Character.objects.filter(Q(lora_url=url), owner_id=owner_id).update(lora_url=new_url)
    return new_url


def upload_lora(file_field, backend_name: str) -> str:
    with file_field.open("rb") as fh:
        data = fh.read()
    return hosting.upload(
        backend_name,
        data,
        content_type="application/octet-stream",
        file_name="lora_weights.safetensors",
        storage_name=file_field.name,
    )


def reupload_current(character: Character) -> str:
    """Support action and restore: host the current version's stored LoRA again."""
    if not character.lora_file:
        raise ValueError("no stored LoRA")
    new_url = upload_lora(character.lora_file, settings.WEBTOON_BACKEND)
    old = character.lora_url
    CharacterVersion.objects.filter(character=character, lora_url=old).update(lora_url=new_url)
    character.lora_url = new_url
    character.save(update_fields=["lora_url"])
    return new_url
