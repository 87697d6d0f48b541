"""django-q2 entry points of the characters app: ids in, domain functions do the work."""

import logging

from . import checks, management, reference_sheet
from .models import Character

logger = logging.getLogger(__name__)


def check_cut(cut_id: int) -> None:
    if checks.check_cut(cut_id) is None:
        logger.info("cut %s is gone; nothing to check", cut_id)


def recheck_stale_cuts() -> int:
    return checks.recheck_stale_cuts()


def purge_deleted() -> int:
    return management.purge_deleted()


def build_reference_sheet(character_id: int) -> None:
    character = Character.objects.filter(pk=character_id).first()
    if character is None:
        logger.info("character %s is gone; no reference sheet", character_id)
        return
    reference_sheet.build_and_store(character)
