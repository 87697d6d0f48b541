from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webtoon import answers
from webtoon.exceptions import DomainError, InvalidInput
from webtoon.imaging import BackendError
from webtoon.media import media_url, user_file_name

from . import (
    curation,
    drafts,
    generation,
    management,
    photos,
    presenters,
    queries,
    restore,
    training,
    watching,
)
from .enums import CharacterStatus
from .forms import (
    AdditionalForm,
    EditForm,
    PhotoUploadForm,
    PrepareForm,
    RetrainForm,
    StyleForm,
    TestGenerateForm,
)
from .presenters import card_context, character_context, curation_context, style_options

BACKEND_DOWN = "이미지 서비스에 일시적인 문제가 있습니다. 잠시 후 다시 시도해주세요."
SECOND_SET = (
    "이 사진으로 만든 컷이 이미 있습니다. [이어서 하기]를 누르거나, "
    "새로 만들려면 추가 비용 확인란을 체크해주세요."
)


@login_required
def new(request):
    """Step 1: upload the photo; on success go on to the style step."""
    if request.method == "POST":
        form = PhotoUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                photo = photos.upload_photo(
                    owner=request.user,
                    upload=form.cleaned_data["photo"],
                    consent=form.cleaned_data["consent"],
                )
            except photos.PhotoRejected as exc:
                form.add_error("photo", str(exc))
            else:
                return redirect("characters:style", photo_id=photo.public_id)
    else:
        form = PhotoUploadForm()
    max_upload_mb = settings.MAX_UPLOAD_BYTES // 2**20
    return render(request, "characters/new.html", {"form": form, "max_upload_mb": max_upload_mb})


@login_required
def style_select(request, photo_id):
    """Step 2: choose one of the six styles; submitting starts the 24 cuts (step 3)."""
    photo = queries.photo_for(request.user, photo_id)
    form = StyleForm(request.POST or None)
    earlier = list(drafts.unfinished_sessions(request.user, photo)[:3])
    if request.method == "POST" and form.is_valid() and earlier:
        if not form.cleaned_data["confirm_new"]:
            # Never a silent second paid set for the same photo: continue, or confirm.
            form.add_error(None, _(SECOND_SET))
    if request.method == "POST" and form.is_valid():
        try:
            session = generation.start_in_style(
                owner=request.user,
                photo_id=photo.public_id,
                style_id=form.cleaned_data["style_id"],
                custom_prompt=form.cleaned_data["custom_prompt"],
            )
        except DomainError as exc:
            form.add_error("custom_prompt", str(exc))
        else:
            return redirect("characters:session", session_id=session.public_id)
    context = {
        "photo": photo,
        "photo_url": media_url(photo.image.name),
        "form": form,
        "styles": style_options(form),
        "estimated_cost": generation.estimated_generation_cost(
            None, form["style_id"].value() or "original"
        ),
        "estimated_minutes": generation.ESTIMATED_SECONDS // 60,
        "cut_count": settings.GENERATION_CUTS_COUNT,
        "earlier": earlier,
    }
    return render(request, "characters/style_select.html", context)


@login_required
def session_detail(request, session_id):
    """Steps 3–4: the cuts appear as they finish; the user curates them."""
    session = queries.session_for(request.user, session_id)
    template = "characters/session.html"
    if request.htmx:
        template += "#curation"
    context = curation_context(session)
    context["additional_form"] = AdditionalForm()
    return render(request, template, context)


@login_required
def session_poll(request, session_id):
    """htmx polling: only the cells that changed since the browser's last look (out of band),
    so a poll never overwrites a checkbox the user is clicking. The answer is kept by the
    rows it is made of (watching): a poll that finds them unchanged reads nothing more."""
    watched = watching.watch(watching.session_for(request.user, session_id))
    known = request.GET.get("known", "")
    return HttpResponse(
        answers.kept(
            "curation-poll", (watched.parts, known), lambda: _poll_answer(request, watched, known)
        )
    )


def _poll_answer(request, watched: watching.Watched, known: str) -> tuple[str, object]:
    context = curation_context(watched.session, watched.jobs)
    seen = set(known.split(","))
    context["changed"] = [c for c in context["cells"] if c["token"] not in seen]
    html = render_to_string("characters/session.html#poll", context, request)
    if context["changed"]:
        # Made for this poller's `known` cells: kept only in the steady state (the browser
        # knows every cell), so no `known` a client makes up becomes a cache entry.
        return html, timezone.now()
    return html, context["checks_settle_at"]


def _curation_action(request, session_id, action) -> object:
    error = ""
    try:
        action()
    except DomainError as exc:
        error = str(exc)
    session = queries.session_for(request.user, session_id)
    context = curation_context(session)
    context["additional_form"] = AdditionalForm()
    context["action_error"] = error
    return render(request, "characters/session.html#curation", context)


@login_required
@require_POST
def cut_toggle(request, session_id, number):
    error = ""
    try:
        curation.set_cut_selected(
            owner=request.user,
            session_id=session_id,
            number=number,
            selected=request.POST.get("selected") == "on",
        )
    except DomainError as exc:
        error = str(exc)
    session = queries.session_for(request.user, session_id)
    context = {"summary": curation.summarize(session), "session": session, "action_error": error}
    context["min_selected"] = settings.MIN_SELECTED_CUTS
    context["checks_running"] = curation.checks_running(session)
    context["with_next"] = True  # the "다음 단계" button follows the count (out of band)
    return render(request, "characters/session.html#summary", context)


@login_required
@require_POST
def cuts_select_all(request, session_id, selected):
    return _curation_action(
        request,
        session_id,
        lambda: curation.set_all_selected(
            owner=request.user, session_id=session_id, selected=selected
        ),
    )


@login_required
@require_POST
def cut_regenerate(request, session_id, number):
    return _curation_action(
        request,
        session_id,
        lambda: curation.regenerate_cut(owner=request.user, session_id=session_id, number=number),
    )


@login_required
@require_POST
def cuts_additional(request, session_id):
    form = AdditionalForm(request.POST)
    category = form.cleaned_data["category"] or None if form.is_valid() else None
    return _curation_action(
        request,
        session_id,
        lambda: curation.generate_additional(
            owner=request.user, session_id=session_id, category=category
        ),
    )


@login_required
def prepare(request, session_id):
    """Step 5: name the character (trigger word made from it) and package the cuts."""
    session = queries.session_for(request.user, session_id)
    form = PrepareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            character = training.prepare_training_data(
                owner=request.user,
                session_id=session.public_id,
                character_name=form.cleaned_data["name"],
                trigger_word=form.cleaned_data["trigger_word"] or None,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        except BackendError:
            form.add_error(None, _(BACKEND_DOWN))
        else:
            return redirect("characters:train", character_id=character.public_id)
    context = {"session": session, "form": form, "summary": curation.summarize(session)}
    context["checks_running"] = curation.checks_running(session)
    return render(request, "characters/prepare.html", context)


@login_required
def train(request, character_id):
    """The cost notice (SPEC §4); training starts only on [학습 시작 →]."""
    character = queries.character_for(request.user, character_id)
    if request.method == "POST":
        try:
            training.start_training(
                owner=request.user, character_id=character.public_id, confirm_cost=True
            )
        except DomainError as exc:
            messages.error(request, str(exc))
        return redirect(character)
    context = {"character": character, "cost": training.cost_breakdown(character)}
    return render(request, "characters/train.html", context)


@login_required
def detail(request, character_id):
    """Training progress, failure with retry, or the completion page (steps 6–8)."""
    character = queries.character_for(request.user, character_id)
    training.refresh(character)
    template = "characters/detail.html"
    if request.htmx:
        template += "#training-panel"
    return render(request, template, character_context(character))


@login_required
@require_POST
def retry(request, character_id):
    try:
        training.retry_training(owner=request.user, character_id=character_id)
    except DomainError as exc:
        messages.error(request, str(exc))
    return redirect("characters:detail", character_id=character_id)


# --- My Characters ---------------------------------------------------------------------------
CARDS_PER_PAGE = 24


@login_required
def character_cards(request):
    # Packaged drafts are listed with the other unfinished work ("만들던 캐릭터").
    trained = queries.characters_for(request.user).exclude(status=CharacterStatus.DRAFT)
    page = Paginator(trained, CARDS_PER_PAGE).get_page(request.GET.get("page"))
    cards = [card_context(c) for c in page.object_list]
    context = {"page": page, "cards": cards, "drafts": drafts.drafts_for(request.user)}
    return render(request, "characters/list.html", context)


def _flash(message: str, level: str = "success") -> str:
    return render_to_string("characters/list.html#flash", {"flash": message, "flash_level": level})


@login_required
@require_POST
def draft_discard(request, session_id):
    """[버리기] on an unfinished set: the row goes and the page says what happened."""
    try:
        label = drafts.discard_session(owner=request.user, session_id=session_id)
    except DomainError as exc:
        return HttpResponse(_flash(str(exc), "error"), headers={"HX-Reswap": "none"})
    message = _("만들던 캐릭터(%(label)s)를 버렸습니다.") % {"label": label}
    return HttpResponse(_flash(message))


@login_required
def card(request, character_id):
    """One card, for htmx: live progress while training (issue 19: three reads written once
    as SQL, watching.card_rows)."""
    character, samples = watching.card_rows(request.user, character_id)
    training.refresh(character)
    context = {"card": card_context(character, samples)}
    return render(request, "characters/list.html#card", context)


@login_required
def delete_confirm(request, character_id, step):
    """Deleting asks twice (SPEC §5.3); each step is a fragment inside the card."""
    character = queries.character_for(request.user, character_id)
    context = {"card": card_context(character), "step": step}
    return render(request, "characters/list.html#delete-confirm", context)


@login_required
@require_POST
def delete(request, character_id):
    try:
        character = management.delete_character(owner=request.user, character_id=character_id)
    except DomainError as exc:
        if request.htmx:
            return HttpResponse(_flash(str(exc), "error"), headers={"HX-Reswap": "none"})
        messages.error(request, str(exc))
        return redirect("characters:list")
    message = _("'%(name)s' 캐릭터를 삭제했습니다.") % {"name": character.name}
    if request.htmx:
        return HttpResponse(_flash(message))  # the card disappears, the page says so
    messages.success(request, message)
    return redirect("characters:list")


@login_required
@require_POST
def edit(request, character_id):
    form = EditForm(request.POST)
    if form.is_valid():
        try:
            character = management.update_character(
                owner=request.user,
                character_id=character_id,
                name=form.cleaned_data["name"],
                lora_scale_default=form.cleaned_data["lora_scale_default"],
            )
            saved = _("'%(name)s' 설정을 저장했습니다 (기본 캐릭터 반영 강도 %(scale)s).")
            messages.success(
                request, saved % {"name": character.name, "scale": character.lora_scale_default}
            )
        except DomainError as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("characters:detail", character_id=character_id)


@login_required
@require_POST
def test_generate(request, character_id):
    form = TestGenerateForm(request.POST)
    context = {"character": queries.character_for(request.user, character_id)}
    if not form.is_valid():
        context["test_error"] = " ".join(e for errs in form.errors.values() for e in errs)
        return render(request, "characters/detail.html#test-result", context)
    try:
        _job, image = management.test_generate(
            owner=request.user, character_id=character_id, **form.cleaned_data
        )
    except DomainError as exc:
        context["test_error"] = str(exc)
        return render(request, "characters/detail.html#test-result", context)
    image.refresh_from_db()
    context["item"] = presenters.gallery_items([image])[0]
    return render(request, "characters/detail.html#test-result", context)


@login_required
def gallery_item(request, character_id, image_id):
    character = queries.character_for(request.user, character_id)
    image = get_object_or_404(character.gallery, pk=image_id)
    if image.call:
        generation.jobs.request_refresh(image.call.job)
    context = {"character": character, "item": presenters.gallery_items([image])[0]}
    return render(request, "characters/detail.html#gallery-item", context)


@login_required
def retrain_page(request, character_id):
    """Retrain: the current images + new cuts or photos, as v(N+1) or replacing the current
    version; the cost notice comes first, as for the first training."""
    character = queries.character_for(request.user, character_id)
    form = RetrainForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            training.retrain_with_uploads(
                owner=request.user,
                character_id=character.public_id,
                mode=form.cleaned_data["mode"],
                uploads=request.FILES.getlist("photos"),
                cut_ids=[int(n) for n in request.POST.getlist("cuts")],
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        except BackendError:
            form.add_error(None, _(BACKEND_DOWN))
        else:
            messages.success(request, _("재학습을 시작했습니다."))
            return redirect(character)
    context = {
        "character": character,
        "form": form,
        "cuts": presenters.retrain_cuts(character),
        "cost": training.cost_breakdown(character),
    }
    return render(request, "characters/retrain.html", context)


PENDING_RESTORE = "restore_pending"


def _pending_upload(request):
    """The backup kept while the user chooses replace / keep both (the file input cannot be
    filled again by the page)."""
    name = request.session.get(PENDING_RESTORE)
    if not name or not name.startswith(f"u/{request.user.pk}/restore/"):
        return None
    return name if default_storage.exists(name) else None


@login_required
def restore_page(request):
    error, conflict = "", None
    if request.method == "POST":
        pending = _pending_upload(request) if request.POST.get("pending") else None
        choice = request.POST.get("on_conflict") or None
        try:
            if pending is not None:
                with default_storage.open(pending, "rb") as upload:
                    character = restore.restore_from_backup(
                        owner=request.user, upload=upload, on_conflict=choice
                    )
            else:
                upload = request.FILES.get("backup")
                if upload is None:
                    raise InvalidInput(_("백업 ZIP 파일을 선택해주세요."))
                character = restore.restore_from_backup(owner=request.user, upload=upload)
        except restore.TriggerWordInUse as exc:
            conflict = exc
            if pending is None:
                upload.seek(0)
                name = user_file_name(request.user.pk, "restore", "zip")
                request.session[PENDING_RESTORE] = default_storage.save(name, upload)
        except DomainError as exc:
            error = str(exc)
        else:
            if pending is not None:
                default_storage.delete(pending)
                request.session.pop(PENDING_RESTORE, None)
            messages.success(request, _(RESTORED) % _restored_facts(character))
            if character.restore_warning:
                messages.warning(request, character.restore_warning)
            return redirect(character)
    context = {"error": error, "conflict": conflict}
    return render(request, "characters/restore.html", context, status=409 if conflict else 200)


RESTORED = (
    "'%(name)s'을(를) 복원했습니다: 트리거 워드 %(word)s, 학습 이미지 %(count)d장"
    "%(time)s. 바로 씬에 쓸 수 있습니다."
)


def _restored_facts(character) -> dict:
    took = presenters.duration_ko(character.training_seconds)
    return {
        "name": character.name,
        "word": character.trigger_word,
        "count": character.training_images_count,
        "time": _(", 학습 시간 %(t)s") % {"t": took} if took else "",
    }
