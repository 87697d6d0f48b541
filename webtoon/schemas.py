"""Schemas every API router shares."""

from ninja import Schema


class Detail(Schema):
    """The one error shape of the API: {"detail": "<readable message>"}."""

    detail: str


def errors(*codes: int) -> dict[int, type[Detail]]:
    """A `response=` mapping that documents these error statuses with the Detail shape."""
    return dict.fromkeys(codes, Detail)
