from ninja import File, Form, Router, Status, UploadedFile

from webtoon.schemas import IMAGE_UPLOAD_ERRORS, errors

from . import photos
from .schemas import PhotoOut, PhotoUploadIn

router = Router(tags=["character"])

UPLOAD_ERRORS = {**errors(401, 403, 422, 429), **IMAGE_UPLOAD_ERRORS}


@router.post(
    "/upload-photo",
    response={201: PhotoOut, **UPLOAD_ERRORS},
    summary="Step 1: upload the photo (JPG, PNG, WEBP; max 10 MB)",
)
def upload_photo(
    request,
    fields: Form[PhotoUploadIn],
    photo: File[UploadedFile | None] = None,
):
    created = photos.upload_photo(owner=request.auth, upload=photo, consent=fields.consent)
    return Status(201, created)
