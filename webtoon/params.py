"""Parsing of request values that pages post by hand (not through a Form)."""

from uuid import UUID


def uuid_or_none(value) -> UUID | None:
    """A posted id; None when empty or not an id (e.g. the "__new__" option of a select)."""
    try:
        return UUID(value) if value else None
    except (TypeError, ValueError):
        return None


def float_or(value, default=None):
    """A posted number; `default` when empty or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def int_or(value, default=None):
    """A posted whole number; `default` when empty or not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
