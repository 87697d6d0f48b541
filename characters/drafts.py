"""Unfinished work of the wizard ("만들던 캐릭터", issue 15): 24-cut sets not yet trained and
packaged drafts, to resume or discard; and the guard against a silent second paid set."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict
from webtoon.jobs.models import TERMINAL_JOB_STATES, Job
from webtoon.media import media_url

from .enums import CharacterStatus, SessionState
from .generation import CUTS
from .models import Character, CreationSession

UNFINISHED_STATES = (SessionState.GENERATING, SessionState.CURATING, SessionState.PACKAGED)


@dataclass(frozen=True)
class Draft:
    session: CreationSession
    character: Character | None  # a packaged draft, waiting for its cost notice
    selected: int
    total: int

    @property
    def resume_url(self) -> str:
        if self.character is not None:
            return reverse("characters:train", args=[self.character.public_id])
        return reverse("characters:session", args=[self.session.public_id])

    @property
    def title(self) -> str:
        if self.character is not None:
            return self.character.name
        return self.session.get_style_id_display()

    @property
    def state_text(self) -> str:
        if self.character is not None:
            return _("학습 데이터 준비됨 · 학습 이미지 %(n)d장") % {
                "n": self.character.training_images_count
            }
        return _("컷 %(total)d장 중 %(n)d장 선택") % {"total": self.total, "n": self.selected}

    @property
    def photo_url(self) -> str | None:
        return media_url(self.session.photo.image.name) if self.session.photo.image else None


def _trained(session_ref) -> Exists:
    """A character made from the session that went past the draft (training or trained)."""
    return Exists(
        Character.objects.filter(session=session_ref).exclude(
            status__in=(CharacterStatus.DRAFT, CharacterStatus.DELETED)
        )
    )


def unfinished_sessions(owner, photo=None):
    sessions = CreationSession.objects.filter(owner=owner, state__in=UNFINISHED_STATES)
    if photo is not None:
        sessions = sessions.filter(photo=photo)
    return (
        sessions.annotate(trained=_trained(OuterRef("pk")))
        .filter(trained=False)
        .annotate(
            total=Count("cuts", distinct=True),
            selected=Count(
                "cuts", filter=Q(cuts__selected=True) & ~Q(cuts__image=""), distinct=True
            ),
        )
        .select_related("photo")
        .order_by("-created_at")
    )


def drafts_for(owner) -> list[Draft]:
    sessions = list(unfinished_sessions(owner))
    characters = {
        c.session_id: c
        for c in Character.objects.filter(
            session__in=[s.pk for s in sessions], status=CharacterStatus.DRAFT
        )
    }
    return [Draft(s, characters.get(s.pk), s.selected, s.total) for s in sessions]


def _cuts_running(session: CreationSession) -> bool:
    return (
        Job.objects.filter(kind=CUTS.name, subject__session=session.pk)
        .exclude(state__in=TERMINAL_JOB_STATES)
        .exists()
    )


def discard_session(*, owner, session_id) -> str:
    """Throw away an unfinished set: its cuts (rows and files) and any packaged draft. A set
    still being generated is refused (its images are paid for and on their way)."""
    found = get_object_or_404(CreationSession, owner=owner, public_id=session_id)
    if not unfinished_sessions(owner).filter(pk=found.pk).exists():
        raise Conflict(_("학습을 시작한 캐릭터의 컷은 버릴 수 없습니다."))
    with transaction.atomic():
        session = get_object_or_404(CreationSession.objects.select_for_update(), pk=found.pk)
        if _cuts_running(session):
            raise Conflict(_("컷을 아직 만들고 있습니다. 생성이 끝난 뒤 버릴 수 있습니다."))
        label = session.get_style_id_display()
        Character.objects.filter(session=session, status=CharacterStatus.DRAFT).update(
            status=CharacterStatus.DELETED, deleted_at=timezone.now()
        )
        files = [c.image.name for c in session.cuts.exclude(image="")]
        session.delete()
    for name in files:
        default_storage.delete(name)
    return label
