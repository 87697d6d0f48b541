"""django-q2 entry points of the characters app: ids in, domain functions do the work."""

import logging

from . import curation

logger = logging.getLogger(__name__)


def check_cut(cut_id: int) -> None:
    if curation.check_cut(cut_id) is None:
        logger.info("cut %s is gone; nothing to check", cut_id)


def recheck_stale_cuts() -> int:
    return curation.recheck_stale_cuts()


def purge_deleted() -> int:
    from . import management

    return management.purge_deleted()
