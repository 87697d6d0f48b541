"""Step 4 of a new character: curate the cuts before training.

The user keeps or drops cuts, asks for more of an under-represented category, regenerates a
single slot; every finished cut gets a quality and identity check that unchecks the bad ones.
The API, the pages and the worker all call these functions.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict, InvalidInput
from webtoon.jobs import limits
from webtoon.jobs.models import Job

from . import generation
from .enums import CutCategory
from .models import CreationSession, Cut
from .prompts import API_CATEGORIES, api_category_of, templates_for
from .queries import session_for

logger = logging.getLogger(__name__)

MAX_ADDITIONAL = 8

# Coverage line: how many selected cuts each group keeps, and below which count the LoRA
# is likely to miss that view of the character (missing angles weaken it the most).
COVERAGE_GROUPS: tuple[tuple[str, str, int], ...] = (
    (CutCategory.EXPRESSION, "표정", 4),
    (CutCategory.ANGLE, "측면", 2),
    (CutCategory.UPPER_BODY, "상반신", 2),
    (CutCategory.FULL_BODY, "전신", 2),
    (CutCategory.SCENE, "장면", 1),
)


# --- the selection summary ------------------------------------------------------------------
@dataclass(frozen=True)
class CoverageRow:
    category: str
    label: str
    count: int
    recommended: int

    @property
    def short(self) -> bool:
        return self.count < self.recommended

    @property
    def text(self) -> str:
        line = _("%(label)s %(count)d장") % {"label": _(self.label), "count": self.count}
        return f"{line} — {_('추가 생성 권장')}" if self.short else line


@dataclass(frozen=True)
class Summary:
    total: int
    selected_count: int
    coverage: list[CoverageRow]

    @property
    def meets_minimum(self) -> bool:
        return self.selected_count >= settings.MIN_SELECTED_CUTS

    @property
    def recommended(self) -> bool:
        return self.selected_count >= settings.RECOMMENDED_SELECTED_CUTS

    @property
    def counter_text(self) -> str:
        return _("선택: %(n)d/%(total)d장 (최소 %(min)d장 이상 필요)") % {
            "n": self.selected_count,
            "total": self.total,
            "min": settings.MIN_SELECTED_CUTS,
        }

    @property
    def counter_mark(self) -> str:
        # ✅ only when the selection can be trained (issue 15: never ✅ below the minimum).
        return "✅" if self.meets_minimum else "⚠️"

    @property
    def warning(self) -> str:
        if self.meets_minimum:
            return ""
        return _(
            "학습하려면 최소 %(min)d장을 선택해야 합니다. %(more)d장 더 선택하거나 "
            "추가 생성으로 컷을 늘려주세요."
        ) % {"min": settings.MIN_SELECTED_CUTS, "more": self.missing}

    @property
    def missing(self) -> int:
        return max(0, settings.MIN_SELECTED_CUTS - self.selected_count)

    def as_api(self) -> dict:
        return {
            "selected_count": self.selected_count,
            "total_cuts": self.total,
            "meets_minimum": self.meets_minimum,
            "warning": self.warning,
            "coverage": [
                {"category": r.category, "label": r.label, "count": r.count, "short": r.short}
                for r in self.coverage
            ],
        }


# A check still running on a cut finished this recently holds "다음 단계" back; an older
# one is a lost check (asked for again by checks.recheck_stale_cuts) and must not block forever.
CHECK_BLOCKS_SECONDS = 600


def checks_running(session: CreationSession, now=None) -> int:
    """Cuts whose quality check has not answered yet: the selection may still shrink."""
    since = (now or timezone.now()) - timedelta(seconds=CHECK_BLOCKS_SECONDS)
    return (
        session.cuts.exclude(image="")
        .filter(quality_ok__isnull=True, call__isnull=False, call__finished_at__gte=since)
        .count()
    )


def require_trainable(session: CreationSession) -> None:
    """The rule of SPEC §4 step 4 (issue 15): at least MIN_SELECTED_CUTS selected, and no
    quality check still running, so the cost notice never counts more than the grid."""
    if running := checks_running(session):
        raise Conflict(
            _("품질 검사가 아직 %(n)d장 남았습니다. 검사가 끝난 뒤 다시 시도해주세요.")
            % {"n": running}
        )
    summary = summarize(session)
    if not summary.meets_minimum:
        raise InvalidInput(
            _("학습하려면 최소 %(min)d장을 선택해야 합니다 (지금 %(n)d장).")
            % {"min": settings.MIN_SELECTED_CUTS, "n": summary.selected_count}
        )


def summarize(session: CreationSession) -> Summary:
    cuts = list(session.cuts.values_list("category", "selected", "image"))
    selected = Counter(cat for cat, sel, image in cuts if sel and image)
    coverage = [CoverageRow(cat, label, selected[cat], rec) for cat, label, rec in COVERAGE_GROUPS]
    return Summary(total=len(cuts), selected_count=sum(selected.values()), coverage=coverage)


# --- selecting --------------------------------------------------------------------------------
def select_cuts(*, owner, session_id, numbers: list[int]) -> Summary:
    """Replace the selection with exactly these cut numbers (the API's select-cuts)."""
    with transaction.atomic():
        session = _locked_session(owner, session_id)
        wanted = set(numbers)
        usable = set(session.cuts.exclude(image="").values_list("number", flat=True))
        known = set(session.cuts.values_list("number", flat=True))
        if unknown := sorted(wanted - known):
            raise InvalidInput(
                _("이 세션의 컷이 아닙니다: %(ids)s") % {"ids": ", ".join(map(str, unknown))}
            )
        if empty := sorted(wanted - usable):
            raise InvalidInput(
                _("아직 이미지가 없는 컷은 선택할 수 없습니다: %(ids)s")
                % {"ids": ", ".join(map(str, empty))}
            )
        session.cuts.update(selected=False)
        session.cuts.filter(number__in=wanted).update(selected=True)
    return summarize(session)


def set_cut_selected(*, owner, session_id, number: int, selected: bool) -> Cut:
    session = session_for(owner, session_id)
    cut = get_object_or_404(session.cuts, number=number)
    if selected and not cut.image:
        message = _("아직 이미지가 없는 컷은 선택할 수 없습니다: %(ids)s") % {"ids": number}
        raise InvalidInput(message)
    cut.selected = selected
    cut.save(update_fields=["selected"])
    return cut


def set_all_selected(*, owner, session_id, selected: bool) -> CreationSession:
    """[전체 선택] / [전체 해제]: every cut that has an image."""
    session = session_for(owner, session_id)
    session.cuts.exclude(image="").update(selected=selected)
    return session


# --- more cuts ----------------------------------------------------------------------------
def additional_cost(count: int, style_id: str = "original") -> Decimal:
    return generation.estimated_generation_cost(count, style_id)


def weakest_category(session: CreationSession) -> str:
    """The API category with the fewest selected cuts (ties: the order of API_CATEGORIES)."""
    selected = Counter(
        api_category_of(cat)
        for cat in session.cuts.filter(selected=True)
        .exclude(image="")
        .values_list("category", flat=True)
    )
    return min(API_CATEGORIES, key=lambda api: selected[api])


def generate_additional(
    *, owner, session_id, count: int | None = None, category: str | None = None
) -> tuple[Job, list[Cut]]:
    """Generate `count` new cuts of one category, with prompts the session has not used."""
    count = settings.GENERATION_ADDITIONAL_COUNT if count is None else count
    if not 1 <= count <= MAX_ADDITIONAL:
        raise InvalidInput(_("추가 생성은 1~%(max)d장까지 가능합니다.") % {"max": MAX_ADDITIONAL})
    if category is not None and category not in API_CATEGORIES:
        raise InvalidInput(_("알 수 없는 분류입니다."))
    with transaction.atomic():
        session = _locked_session(owner, session_id, costly=True)
        if not session.cuts.exists():
            raise Conflict(_("먼저 24컷을 생성해주세요."))
        category = category or weakest_category(session)
        used = set(session.cuts.values_list("template_id", flat=True))
        fresh = [t for t in templates_for(category) if t.id not in used][:count]
        if not fresh:
            raise Conflict(_("이 분류에서는 더 만들 수 있는 새로운 컷이 없습니다."))
        start = (session.cuts.order_by("-number").values_list("number", flat=True).first()) or 0
        cuts = Cut.objects.bulk_create(
            Cut(
                session=session,
                number=start + i,
                template_id=t.id,
                category=t.category,
                pose_prompt=t.prompt,
                label_ko=t.label_ko,
            )
            for i, t in enumerate(fresh, start=1)
        )
        job = generation.start_cut_job(session, cuts)
    return job, cuts


def regenerate_cut(*, owner, session_id, number: int) -> Job:
    """[다시 생성]: a fresh image for one slot, same prompt, new seed."""
    with transaction.atomic():
        session = _locked_session(owner, session_id, costly=True)
        cut = get_object_or_404(session.cuts.select_related("call"), number=number)
        if cut.call and not cut.call.is_terminal:
            raise Conflict(_("이 컷은 아직 생성 중입니다."))
        cut.image = ""
        cut.error = ""
        cut.selected = True
        cut.similarity = None
        cut.quality_ok = None
        cut.quality_reasons = []
        cut.fingerprint = ""
        cut.save()
        job = generation.start_cut_job(session, [cut])
    return job


def _locked_session(owner, session_id, *, costly: bool = False) -> CreationSession:
    if costly:
        # The owner before the session: the new job locks the owner too, and a training
        # locks the owner first; one order everywhere keeps PostgreSQL free of deadlocks.
        limits.lock_owner(owner)
    return get_object_or_404(
        CreationSession.objects.select_for_update(), public_id=session_id, owner=owner
    )
