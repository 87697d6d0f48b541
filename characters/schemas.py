from typing import Annotated
from uuid import UUID

from ninja import Field, Schema
from pydantic import BeforeValidator

from webtoon.media import media_url

from .models import Photo


def _blank_is_false(value):
    # An unticked box sent as "consent=" means "no", not "that is not a boolean".
    return False if value in ("", None) else value


class PhotoUploadIn(Schema):
    """The form fields sent beside the file."""

    consent: Annotated[bool, BeforeValidator(_blank_is_false)] = False


class PhotoOut(Schema):
    photo_id: UUID
    photo_url: str
    resolution: str
    face_detected: bool
    warnings: list[str]

    @staticmethod
    def resolve_photo_id(photo: Photo) -> UUID:
        return photo.public_id

    @staticmethod
    def resolve_photo_url(photo: Photo) -> str:
        return media_url(photo.image.name)


class IdentityOut(Schema):
    """An image against the character's photo (characters.likeness, issue 16)."""

    distance: float | None = Field(description="dlib descriptor distance; null: no face")
    verdict: str = Field(description="same | unsure | different | no_face")
    near_copy: bool = Field(description="almost the photo itself (a copy teaches one pose)")
