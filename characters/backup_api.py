"""API for SPEC §5.3 backup and restore (mounted at /api/character/):
`GET /{character_id}/download-backup` streams the backup ZIP, `POST /restore-from-backup`
turns one back into an active character."""

from urllib.parse import quote
from uuid import UUID

from django.http import StreamingHttpResponse
from ninja import File, Form, Router, Schema, Status, UploadedFile

from webtoon.schemas import API_ERRORS, errors, file_response

from . import queries
from .backup import backup_file_name, stream_backup
from .restore import restore_from_backup as restore

router = Router(tags=["character"])

ERRORS = API_ERRORS


class RestoreOut(Schema):
    character_id: str
    name: str
    trigger_word: str
    status: str
    version: int
    # Set when the character came back under another trigger word (kept both copies).
    warning: str = ""


def attachment(file_name: str) -> str:
    """Content-Disposition with a plain ASCII fallback and the RFC 5987 `filename*` form."""
    fallback = file_name.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"


@router.get(
    "/{uuid:character_id}/download-backup",
    response=ERRORS,
    openapi_extra=file_response("application/zip", "The backup ZIP, streamed"),
    summary="Download the character's backup ZIP (LoRA, reference sheet, samples, metadata)",
)
def download_backup(request, character_id: UUID):
    character = queries.character_for(request.auth, character_id)
    # Built before the response starts, so a character without a stored LoRA is a 409.
    chunks = stream_backup(character)
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = attachment(backup_file_name(character))
    # The user's own face and weights: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@router.post(
    "/restore-from-backup",
    response={201: RestoreOut, **errors(401, 403, 409, 422, 429, 503)},
    summary="Restore a character from its backup ZIP (multipart field `backup`)",
)
def restore_from_backup(
    request, backup: File[UploadedFile], on_conflict: Form[str | None] = None
):
    """`on_conflict`: when a character of yours already uses the backup's trigger word (409),
    `replace` (that character is deleted and the backup takes its word) or `keep_both` (the
    backup comes back under a new word; a LoRA answers best to the word it learned)."""
    character = restore(owner=request.auth, upload=backup, on_conflict=on_conflict)
    return Status(
        201,
        {
            "character_id": str(character.public_id),
            "name": character.name,
            "trigger_word": character.trigger_word,
            "status": character.status,
            "version": character.current_version.number,
            "warning": character.restore_warning,
        },
    )
