"""Schemas every API router shares."""

from ninja import Schema


class Detail(Schema):
    """The one error shape of the API: {"detail": "<readable message>"}."""

    detail: str


def errors(*codes: int) -> dict[int, type[Detail]]:
    """A `response=` mapping that documents these error statuses with the Detail shape."""
    return dict.fromkeys(codes, Detail)


# What any operation for a logged-in user can answer: not logged in (401), CSRF refused (403),
# an id that is not the user's (404), a state that does not allow it (409), input that is
# invalid or cannot be read (422).
API_ERRORS = errors(401, 403, 404, 409, 422)
# Operations that start paid work: also the per-user rate limit or daily spend cap (429), and
# fal unreachable while the request waits on it (503).
PAID_ERRORS = {**API_ERRORS, **errors(429, 503)}
# An uploaded picture (photo, panel): empty or damaged (400), too large (413), not a JPG, PNG
# or WEBP (415). Other problems with it are 422.
IMAGE_UPLOAD_ERRORS = errors(400, 413, 415)


def file_response(media_type: str, description: str) -> dict:
    """`openapi_extra` documenting a 200 that streams a file (ninja only describes JSON)."""
    content = {media_type: {"schema": {"type": "string", "format": "binary"}}}
    return {"responses": {200: {"description": description, "content": content}}}
