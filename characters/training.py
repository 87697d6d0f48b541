"""Steps 5–8 of a new character: package, show the cost, train in the background, test.

- prepare_training_data: a system-unique trigger word, the captioned ZIP in our storage and
  re-hosted where the backend can fetch it;
- start_training: after the cost notice; at most MAX_CONCURRENT_TRAINING per user in flight,
  the rest wait their turn (WAITING jobs) and start when a slot frees;
- the job engine advances trainings from the periodic reconciler (and fal's webhook), never
  holding a worker; on completion the LoRA is already in our storage, 3 test images follow
  and the user is notified.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from decimal import Decimal
from itertools import islice

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict, InvalidInput
from webtoon.jobs import hosting, limits, pricing
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, Job, JobState, RemoteCall
from webtoon.jobs.presenters import wait_message
from webtoon.jobs.progress import estimate_from_elapsed
from webtoon.media import media_url, user_file_name
from webtoon.notifications.services import notify

from . import backup, identity, likeness, photos, reference_sheet, sweep, trigger_words
from .checks import photo_embedding
from .curation import require_trainable
from .enums import CharacterStatus, SessionState
from .generation import estimated_generation_cost
from .models import Character, CharacterVersion, CreationSession, Cut, Sample
from .packaging import TrainingItem, caption_for, write_training_zip
from .prompts import style_prompt
from .queries import character_for, photo_for

logger = logging.getLogger(__name__)

EXPECTED_TRAINING_SECONDS = 1200
# Step logs give the pace only once we have watched the run for a while.
RATE_MIN_SECONDS = 60
TRAINING_ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

TRAINING = register(
    JobKind(
        name="training",
        label="LoRA 학습",
        deadline_setting="TRAINING_TIMEOUT_SECONDS",
        max_attempts_setting="TRAINING_MAX_RETRIES",
        cost_setting="COST_PER_LORA_TRAINING",
        expected_seconds=EXPECTED_TRAINING_SECONDS,
        long_running=True,
        on_job_start="characters.training.prepare_training_job",
        on_job_finished="characters.training.training_finished",
    )
)
SAMPLES = register(
    JobKind(
        name="samples",
        label="테스트 이미지",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_LORA_INFERENCE",
        expected_seconds=20,
        partial_ok=True,
        on_call_finished="characters.training.sample_finished",
        on_call_error="characters.lora_files.recover_expired_lora",
        on_job_finished="characters.training.samples_finished",
    )
)

# SPEC Step 7: front / office / full body.
SAMPLE_PROMPTS = (
    "{trigger}, front view, confident smile, white background",
    "{trigger}, sitting at desk, explaining something, office background",
    "{trigger}, full body, standing, waving hand, simple background",
)
SAMPLE_SCALE = 0.8

FAILED_MESSAGE = "학습에 실패했습니다. 다른 이미지로 다시 시도해주세요."
NOT_CHARGED = "비용이 청구되지 않았습니다"
TIMEOUT_MESSAGE = "학습 시간이 60분을 넘겨 중단했습니다."
# The request may have reached fal (its answer was lost): we cannot say it was not charged.
UNKNOWN_MESSAGE = (
    "학습 요청의 결과를 확인하지 못했습니다. 이중 과금을 막기 위해 자동으로 다시 보내지 "
    "않았습니다. 고객 지원이 확인 후 처리해드립니다."
)


# fal ran the request before it failed (a 422 model error, a cancel while running): fal may
# have billed it, so "not charged" is not said (fal's FAQ: a 422 may be charged).
FAILED_MAYBE_CHARGED = (
    "학습에 실패했습니다. fal에서 실행된 뒤 실패한 요청이라 비용이 청구되었을 수 있습니다. "
    "다른 이미지로 다시 시도해주세요."
)
TIMEOUT_MAYBE_CHARGED = (
    "학습 시간이 60분을 넘겨 중단했습니다. 실행 중이던 요청이라 비용이 청구되었을 수 있습니다."
)
CONTENT_REFUSED_MESSAGE = (
    "fal의 안전 정책에 걸려 학습할 수 없습니다. 비용이 청구되었을 수 있습니다. "
    "다른 이미지로 다시 시도해주세요."
)
NO_CHARGE_CLAIM = (UNKNOWN_MESSAGE, FAILED_MAYBE_CHARGED, TIMEOUT_MAYBE_CHARGED,
                   CONTENT_REFUSED_MESSAGE)


def _failure_text(message: str) -> str:
    """The failure as the user reads it: "not charged" only where that is known to be true
    (fal never ran the request: refused at submit, cancelled while queued)."""
    if message in NO_CHARGE_CLAIM:
        return _(message)
    return f"{_(message or FAILED_MESSAGE)} {_(NOT_CHARGED)}"


def _failure_message(job: Job) -> str:
    if job.error_code == "submit_unknown":
        return UNKNOWN_MESSAGE
    if job.error_code == "content_policy":
        return CONTENT_REFUSED_MESSAGE
    charged = jobs.charge_state(job) != "none"
    if job.error_code == "deadline":
        return TIMEOUT_MAYBE_CHARGED if charged else TIMEOUT_MESSAGE
    return FAILED_MAYBE_CHARGED if charged else FAILED_MESSAGE

BACKUP_FAILED = "로컬 백업에 실패했습니다. 수동으로 다운로드해주세요."
POOR_RESULT_HINT = "학습 결과가 만족스럽지 않으면 재학습을 시도해보세요"


# --- step 5: packaging ------------------------------------------------------------------------
def prepare_training_data(
    *, owner, session_id, character_name: str, trigger_word: str | None = None
) -> Character:
    """Reserve a unique trigger word, build the captioned ZIP, host it for the backend.

    Called again for the same session it rebuilds the package (new selection, new name);
    on any failure nothing new is left behind."""
    name = (character_name or "").strip()
    if not name or len(name) > 60:
        raise InvalidInput(_("캐릭터 이름을 1~60자로 입력해주세요."))
    session = get_object_or_404(
        CreationSession.objects.select_related("photo"), public_id=session_id, owner=owner
    )
    cuts = list(session.cuts.filter(selected=True).exclude(image="").order_by("number"))
    if not cuts:
        raise InvalidInput(_("학습에 쓸 이미지가 없습니다. 컷을 한 장 이상 선택해 주세요."))
    require_trainable(session)
    base = (
        trigger_words.validate_trigger_word(trigger_word)
        if trigger_word
        else trigger_words.base_trigger_word(name)
    )
    existing = _draft_for(session)
    if existing and existing.training_job_id and existing.status != CharacterStatus.DRAFT:
        raise Conflict(_("이미 학습을 시작한 세션입니다."))
    created = existing is None
    character = existing or _reserve(owner, session, name, base)
    # Keep the word only if it is one allocate would give for this base (base, base2, …):
    # a prefix test kept "sks_parksajang" when the user asked for "sks_park".
    candidates = islice(trigger_words.candidates(base), trigger_words.MAX_ATTEMPTS)
    if not created and existing.trigger_word not in candidates:
        character.trigger_word = _reallocate(character, base)
    try:
        _package(character, session, cuts, name)
    except BaseException:
        if created:
            character.delete()
        raise
    CreationSession.objects.filter(pk=session.pk).update(state=SessionState.PACKAGED)
    return character


def _draft_for(session: CreationSession) -> Character | None:
    return (
        Character.objects.filter(session=session)
        .exclude(status=CharacterStatus.DELETED)
        .order_by("-created_at")
        .first()
    )


def _reserve(owner, session: CreationSession, name: str, base: str) -> Character:
    return create_with_trigger_word(
        base,
        owner=owner,
        session=session,
        photo=session.photo,
        name=name,
        style_id=session.style_id,
        custom_prompt=session.custom_prompt,
        lora_scale_default=settings.LORA_SCALE_DEFAULT,
        training_steps=settings.CHARACTER_TRAINING_STEPS,
        learning_rate=settings.CHARACTER_TRAINING_LEARNING_RATE,
        resolution=settings.CHARACTER_TRAINING_RESOLUTION,
    )


def create_with_trigger_word(base: str, **fields) -> Character:
    """Create a Character under the first free word of base, base2, base3, ...: the unique
    constraint decides (a savepoint per try), so two simultaneous requests for the same name
    can never get the same word (SPEC §11.2)."""
    holder: dict[str, Character] = {}

    def reserve(word: str) -> bool:
        try:
            with transaction.atomic():
                holder["c"] = Character.objects.create(trigger_word=word, **fields)
            return True
        except IntegrityError:
            return False

    trigger_words.allocate_trigger_word(base, reserve=reserve)
    return holder["c"]


def _reallocate(character: Character, base: str) -> str:
    def reserve(word: str) -> bool:
        try:
            with transaction.atomic():
                Character.objects.filter(pk=character.pk).update(trigger_word=word)
            return True
        except IntegrityError:
            return False

    return trigger_words.allocate_trigger_word(base, reserve=reserve)


def _package(character: Character, session: CreationSession, cuts: list[Cut], name: str):
    style = style_prompt(session.style_id, session.custom_prompt)
    items = [
        TrainingItem(
            open=lambda cut=cut: cut.image.open("rb"),
            caption=caption_for(character.trigger_word, style, cut.pose_prompt),
        )
        for cut in cuts
    ]
    character.name = name
    character.candidate_images_count = session.cuts.count()
    _store_package(character, items)
    character.save()


def _store_package(character: Character, items: list[TrainingItem]) -> None:
    """Write the ZIP to our storage, host it for the backend, note it on the character
    (not saved). The previous package is kept when a version still uses it."""
    with tempfile.TemporaryFile(prefix="webtoon-zip-") as tmp:
        stats = write_training_zip(items, tmp)
        tmp.seek(0)
        stored = default_storage.save(
            user_file_name(character.owner_id, "training", "zip"), File(tmp)
        )
        try:
            tmp.seek(0)
            backend = settings.WEBTOON_BACKEND
            url = hosting.upload(
                backend,
                tmp.read(),
                content_type="application/zip",
                file_name="training.zip",
                storage_name=stored,
            )
        except BaseException:
            default_storage.delete(stored)
            raise
    old_file = character.training_data.name
    character.training_data = stored
    character.training_data_size = stats.total_bytes
    character.training_data_sha256 = stats.sha256
    character.training_data_url, character.training_data_backend = url, backend
    character.training_images_count = stats.image_count
    in_use = character.pk and character.versions.filter(training_data=old_file).exists()
    if old_file and old_file != stored and not in_use:
        default_storage.delete(old_file)


# --- cost notice (SPEC §4) --------------------------------------------------------------------
def _money(value: Decimal) -> dict:
    usd = value.quantize(Decimal("0.01"))
    krw = int((value * Decimal(str(settings.KRW_PER_USD))).quantize(Decimal("1")))
    return {"usd": float(usd), "krw": krw}


# The size of a one-character scene (scenes.services.ONE_SIZE), for the per-image price.
SCENE_SIZE = "portrait_4_3"


def cost_breakdown(character: Character | None = None) -> dict:
    """The cost notice (SPEC §4), priced call by call like the ledger (FAL_PRICES)."""
    cuts = character.candidate_images_count if character else settings.GENERATION_CUTS_COUNT
    session = character.session if character and character.session_id else None
    generation = estimated_generation_cost(
        cuts or settings.GENERATION_CUTS_COUNT, session.style_id if session else "original"
    )
    training = training_cost(character)
    lora = settings.FAL_ENDPOINTS["lora"]
    tests = pricing.estimate(lora, {"image_size": "square"}, SAMPLES.unit_cost) * len(
        SAMPLE_PROMPTS
    )
    inference = pricing.estimate(lora, {"image_size": SCENE_SIZE}, SAMPLES.unit_cost)
    sweep_total = sweep.cost()
    return {
        "generation": _money(generation),
        "training": _money(training),
        "test_images": _money(tests),
        # issue 16: the scale sweep that picks the default strength after training
        "scale_sweep": {**_money(sweep_total), "images": sweep.image_count()},
        "total": _money(generation + training + tests + sweep_total),
        "per_image": _money(inference),
        "per_episode": _money(inference * 10),
    }


def training_cost(character: Character | None = None) -> Decimal:
    """One training, priced like the ledger prices the trainer call (FAL_PRICES, else
    COST_PER_LORA_TRAINING): the cost notice, the status, the API answers all say this."""
    trainer = settings.FAL_ENDPOINTS["trainer"]
    arguments = trainer_arguments(character) if character else {}
    return pricing.estimate(trainer, arguments, TRAINING.unit_cost)


# --- step 6: training -------------------------------------------------------------------------
def trainer_arguments(character: Character) -> dict:
    """The trainer's own argument names (FAL.md): the portrait trainer says trigger_phrase and
    has no resolution; the fast trainer says trigger_word."""
    endpoint = settings.FAL_ENDPOINTS["trainer"]
    args = {
        "images_data_url": None,  # filled in by the worker with a fresh URL
        "steps": character.training_steps,
        "learning_rate": character.learning_rate,
        "create_masks": settings.CHARACTER_TRAINING_CREATE_MASKS,
    }
    if "portrait-trainer" in endpoint:
        args["trigger_phrase"] = character.trigger_word
    else:
        args["trigger_word"] = character.trigger_word
        args["resolution"] = character.resolution
    return args


def _in_flight(owner) -> int:
    return Job.objects.filter(
        owner=owner, kind=TRAINING.name, state__in=TRAINING_ACTIVE_STATES
    ).count()


def start_training(*, owner, character_id, confirm_cost: bool) -> Job:
    if not confirm_cost:
        raise InvalidInput(_("비용 안내를 확인한 뒤 학습을 시작해주세요. (confirm_cost: true)"))
    with transaction.atomic():
        limits.lock_owner(owner)  # the limit check and the new job are one step
        character = get_object_or_404(
            Character.objects.select_for_update(), public_id=character_id, owner=owner
        )
        if character.status != CharacterStatus.DRAFT or character.training_job_id:
            raise Conflict(_("이미 학습을 시작한 캐릭터입니다."))
        job = _training_job(character, mode="new")
        character.status = (
            CharacterStatus.QUEUED if job.state == JobState.WAITING else CharacterStatus.TRAINING
        )
        character.save()
        if character.session_id:
            CreationSession.objects.filter(pk=character.session_id).update(
                state=SessionState.TRAINING
            )
    return job


def _training_job(character: Character, *, mode: str) -> Job:
    """A training job for the character's packaged data; held (WAITING) when the owner
    already has MAX_CONCURRENT_TRAINING in flight. Call inside the owner's lock."""
    waiting = _in_flight(character.owner) >= settings.MAX_CONCURRENT_TRAINING
    job = jobs.create_job(
        owner=character.owner,
        kind=TRAINING.name,
        calls=[
            jobs.CallSpec(
                settings.FAL_ENDPOINTS["trainer"],
                trainer_arguments(character),
                output_kind="lora",
            )
        ],
        subject={"character": character.pk, "mode": mode},
        waiting=waiting,
        limited=True,  # a held training counts when asked for, not when released
    )
    character.training_job = job
    character.training_started_at = None if waiting else timezone.now()
    character.failure_message = ""
    return job


def retrain(
    *,
    owner,
    character_id,
    mode: str,
    confirm_cost: bool,
    photo_ids: list = (),
    cut_ids: list[int] = (),
) -> Job:
    """SPEC §5.3 retrain: the current training images plus new ones (uploaded photos or newly
    generated cuts), as a new version made current or replacing the current one. The
    character stays usable with its current version meanwhile."""
    if not confirm_cost:
        raise InvalidInput(_("비용 안내를 확인한 뒤 학습을 시작해주세요. (confirm_cost: true)"))
    if mode not in ("new", "replace"):
        raise InvalidInput(_("mode는 new(새 버전) 또는 replace(현재 버전 교체)여야 합니다."))
    character = character_for(owner, character_id)
    if character.status != CharacterStatus.ACTIVE or not character.current_version_id:
        raise Conflict(_("학습이 끝난 캐릭터만 재학습할 수 있습니다."))
    if character.training_job and not character.training_job.is_terminal:
        raise Conflict(_("이미 재학습이 진행 중입니다."))
    photos = [photo_for(owner, pid) for pid in photo_ids]
    cuts = _extra_cuts(character, cut_ids)
    if not photos and not cuts:
        raise InvalidInput(_("재학습에 추가할 사진이나 컷을 하나 이상 골라주세요."))
    check_training_limits(owner)  # before the new ZIP is written; the job checks again
    _repackage(character, photos, cuts)
    with transaction.atomic():
        limits.lock_owner(owner)  # the limit check and the new job are one step
        character = Character.objects.select_for_update().get(pk=character.pk)
        job = _training_job(character, mode=mode)
        character.save()
    return job


def retrain_with_uploads(
    *, owner, character_id, mode: str, uploads: list, cut_ids: list[int]
) -> Job:
    """The retrain page's button: the owner's limits first, then the new photos stored (each
    validated like step 1), then the retrain, so a refused retrain stores no photo."""
    check_training_limits(owner)
    photo_ids = [
        photos.upload_photo(owner=owner, upload=f, consent=True).public_id for f in uploads
    ]
    return retrain(
        owner=owner,
        character_id=character_id,
        mode=mode,
        confirm_cost=True,
        photo_ids=photo_ids,
        cut_ids=cut_ids,
    )


def check_training_limits(owner) -> None:
    """Refuse early (TooManyRequests) a training the owner's limits would refuse anyway,
    before work that leaves files behind (photos uploaded, a ZIP packaged)."""
    limits.check_costly(owner, TRAINING.unit_cost, lock=False)


def _extra_cuts(character: Character, numbers: list[int]) -> list[Cut]:
    if not numbers:
        return []
    if character.session_id is None:
        raise InvalidInput(_("이 캐릭터에는 생성된 컷이 없습니다. 사진을 올려 추가해주세요."))
    cuts = list(
        Cut.objects.filter(session_id=character.session_id, number__in=set(numbers))
        .exclude(image="")
        .order_by("number")
    )
    if missing := sorted(set(numbers) - {c.number for c in cuts}):
        raise InvalidInput(
            _("이 캐릭터의 컷이 아니거나 이미지가 없습니다: %(ids)s")
            % {"ids": ", ".join(map(str, missing))}
        )
    return cuts


def _repackage(character: Character, photos: list, cuts: list[Cut]) -> None:
    """A new training ZIP: every image of the current one (with its caption) + the new ones."""
    style = style_prompt(character.style_id, character.custom_prompt)
    with character.current_version.training_data.open("rb") as old, zipfile.ZipFile(old) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
        items = [
            TrainingItem(
                open=lambda n=n: zf.open(n),
                caption=_old_caption(zf, n) or caption_for(character.trigger_word, style, ""),
            )
            for n in names
        ]
        items += [
            TrainingItem(
                open=lambda c=c: c.image.open("rb"),
                caption=caption_for(character.trigger_word, style, c.pose_prompt),
            )
            for c in cuts
        ]
        items += [
            TrainingItem(
                open=lambda p=p: p.image.open("rb"),
                caption=caption_for(character.trigger_word, style, "photo, front view"),
            )
            for p in photos
        ]
        _store_package(character, items)
    Character.objects.filter(pk=character.pk).update(
        training_images_count=character.training_images_count,
        training_data=character.training_data.name,
        training_data_size=character.training_data_size,
        training_data_sha256=character.training_data_sha256,
        training_data_url=character.training_data_url,
        training_data_backend=character.training_data_backend,
    )


def _old_caption(zf, image_name: str) -> str:
    stem = image_name.rsplit(".", 1)[0]
    try:
        return zf.read(f"{stem}.txt").decode("utf-8").strip()
    except KeyError:
        return ""


def retry_training(*, owner, character_id, limited: bool = True) -> Job:
    """A failed training again, on the same packaged data (no new packaging, no new cuts).

    `limited`: the owner's retry (rate limit, spend cap); support's retry passes False."""
    with transaction.atomic():
        limits.lock_owner(owner)  # the limit check and the new job are one step
        character = get_object_or_404(
            Character.objects.select_for_update(), public_id=character_id, owner=owner
        )
        job = character.training_job
        if job is None or job.state != JobState.FAILED:
            raise Conflict(_("실패한 학습만 다시 시도할 수 있습니다."))
        waiting = _in_flight(owner) >= settings.MAX_CONCURRENT_TRAINING
        job = jobs.retry_job(job, waiting=waiting, limited=limited)
        if character.status != CharacterStatus.ACTIVE:  # a retrain keeps the current version
            character.status = CharacterStatus.QUEUED if waiting else CharacterStatus.TRAINING
        character.training_started_at = None if waiting else timezone.now()
        character.failure_message = ""
        character.save()
    return job


def dispatch_waiting(owner) -> list[Job]:
    """Start held trainings, oldest first, while the owner has free slots."""
    started = []
    with transaction.atomic():
        limits.lock_owner(owner)  # the limit check and the new job are one step
        free = settings.MAX_CONCURRENT_TRAINING - _in_flight(owner)
        waiting = Job.objects.filter(
            owner=owner, kind=TRAINING.name, state=JobState.WAITING
        ).order_by("created_at")
        for job in waiting[: max(0, free)]:
            if jobs.release_waiting(job):
                mine = Character.objects.filter(pk=job.subject.get("character"))
                mine.update(training_started_at=timezone.now())
                mine.filter(status=CharacterStatus.QUEUED).update(status=CharacterStatus.TRAINING)
                started.append(job)
    return started


def prepare_training_job(job: Job) -> None:
    """Worker, before the first submit: the ZIP hosted where this backend can fetch it."""
    character = Character.objects.get(pk=job.subject["character"])
    for call in job.calls.filter(state=CallState.PENDING):
        call.arguments["images_data_url"] = training_data_url(character, call.backend)
        call.save(update_fields=["arguments"])


def training_data_url(character: Character, backend_name: str) -> str:
    if character.training_data_url and character.training_data_backend == backend_name:
        return character.training_data_url
    with character.training_data.open("rb") as fh:
        url = hosting.upload(
            backend_name,
            fh.read(),
            content_type="application/zip",
            file_name="training.zip",
            storage_name=character.training_data.name,
        )
    Character.objects.filter(pk=character.pk).update(
        training_data_url=url, training_data_backend=backend_name
    )
    return url


def training_finished(job: Job) -> None:
    character = Character.objects.select_related("owner").get(pk=job.subject["character"])
    call = job.calls.order_by("-pk").first()
    if job.state == JobState.SUCCEEDED and call is not None:
        _activate(character, call, job)
    else:
        if not character.current_version_id:  # a failed retrain keeps the version it had
            character.status = CharacterStatus.FAILED
        character.failure_message = _failure_message(job)
        character.save(update_fields=["status", "failure_message"])
        notify(
            character.owner,
            kind="training_failed",
            message=_("%(name)s: %(msg)s")
            % {"name": character.name, "msg": _failure_text(character.failure_message)},
            link=character.get_absolute_url(),
        )
    dispatch_waiting(character.owner)


def _activate(character: Character, call: RemoteCall, job: Job) -> None:
    """The LoRA is in: record the version (a new one, or the current one replaced on a
    retrain that asked for it), make it current and start the test images."""
    with transaction.atomic():
        character = Character.objects.select_for_update().get(pk=character.pk)
        now = timezone.now()
        replace = job.subject.get("mode") == "replace" and character.current_version_id
        if replace:
            version = character.current_version
            version.samples.all().delete()
        else:
            last = character.versions.order_by("-number").values_list("number", flat=True).first()
            version = CharacterVersion(character=character, number=(last or 0) + 1)
        version.lora_url = call.output_url
        version.lora_file = call.output_file.name if call.output_file else ""
        version.lora_file_backed_up = bool(call.output_file)
        version.training_data = character.training_data.name
        version.training_images_count = character.training_images_count
        version.training_steps = character.training_steps
        version.learning_rate = character.learning_rate
        version.resolution = character.resolution
        version.training_job = job
        version.trained_at = now
        version.save()
        character.current_version = version
        character.lora_url = version.lora_url
        character.lora_file = version.lora_file.name
        character.lora_file_backed_up = version.lora_file_backed_up
        character.status = CharacterStatus.ACTIVE
        character.trained_at = now
        character.save()
        if character.session_id:
            CreationSession.objects.filter(pk=character.session_id).update(state=SessionState.DONE)
        start_samples(character)
        sweep.start_sweep(character)  # issue 16: the default strength, measured
        reference_sheet.request_build(character)


# --- step 7: test images ------------------------------------------------------------------------
def sample_arguments(character: Character, prompt: str) -> dict:
    return {
        "prompt": prompt.format(trigger=character.trigger_word),
        "loras": [{"path": character.lora_url, "scale": SAMPLE_SCALE}],
        "image_size": "square",
        "num_inference_steps": settings.INFERENCE_STEPS,
        "num_images": 1,
        "enable_safety_checker": True,
    }


def start_samples(character: Character) -> Job:
    """The 3 SPEC test images for the character's current version (again: replaced)."""
    version = character.current_version
    with transaction.atomic():
        Sample.objects.filter(character=character, version=version).delete()
        specs = [
            jobs.CallSpec(settings.FAL_ENDPOINTS["lora"], sample_arguments(character, p), slot=i)
            for i, p in enumerate(SAMPLE_PROMPTS, start=1)
        ]
        job = jobs.create_job(
            owner=character.owner,
            kind=SAMPLES.name,
            calls=specs,
            subject={"character": character.pk},
        )
        for call in job.calls.all():
            Sample.objects.create(
                character=character,
                version=version,
                number=call.slot,
                prompt=call.arguments["prompt"],
                call=call,
            )
        Character.objects.filter(pk=character.pk).update(samples_job=job)
    return job


def sample_finished(call: RemoteCall) -> None:
    sample = Sample.objects.select_related("character__photo").filter(call=call).first()
    if sample is None or call.state != CallState.SUCCEEDED or not call.output_file:
        return
    sample.image = call.output_file.name
    sample.seed = (call.result or {}).get("seed")
    sample.identity = _identity_of(sample)
    sample.similarity = (sample.identity or {}).get("distance")
    sample.save(update_fields=["image", "seed", "similarity", "identity"])


def _identity_of(sample: Sample) -> dict | None:
    photo = sample.character.photo
    return likeness.judge_file(sample.image, photo_embedding(photo) if photo else None)


def samples_finished(job: Job) -> None:
    character = Character.objects.select_related("owner").get(pk=job.subject["character"])
    backup.sync_local_copy(character)
    notify(
        character.owner,
        kind="training_completed",
        message=_("✅ 캐릭터 학습 완료! — %(name)s") % {"name": character.name},
        link=character.get_absolute_url(),
    )


def current_samples(character: Character, samples: list[Sample] | None = None) -> list[Sample]:
    """The test images of the character's current version, from `samples` (all of the
    character's, read already) or from the character's (prefetched) samples."""
    every = character.samples.all() if samples is None else samples
    return [s for s in every if s.version_id == character.current_version_id]


def consistency(character: Character) -> dict:
    """How many test images show the photo's person (the product's promise: consistency)."""
    measured = [s.similarity for s in current_samples(character) if s.similarity is not None]
    if not measured:
        return {"measured": 0, "same": 0, "percent": None, "mean_distance": None}
    same = sum(d <= identity.SAME_PERSON_MAX_DISTANCE for d in measured)
    return {
        "measured": len(measured),
        "same": same,
        "percent": round(100 * same / len(measured)),
        "mean_distance": sum(measured) / len(measured),
    }


# --- status -------------------------------------------------------------------------------------
def refresh(character: Character) -> None:
    """Someone is watching: ask for a (debounced) pass over the character's open jobs."""
    for job in (character.training_job, character.samples_job):
        if job is not None:
            jobs.request_refresh(job)


def training_status(*, owner, task_id) -> dict:
    job, call, character = _status_rows(owner, task_id)
    return status_of(character, job, call) | {"test_images": test_images(character)}


def _status_rows(owner, task_id) -> tuple[Job, RemoteCall | None, Character]:
    """The rows a status read shows. A script or several tabs polling one training read them
    at most once per STATUS_CACHE_SECONDS (issue 19: the three reads and their ORM work were
    most of a poll); the document itself (elapsed time, estimates) is still made per read."""
    key = f"training-status:{task_id}"
    seconds = settings.STATUS_CACHE_SECONDS
    rows = cache.get(key) if seconds else None
    if rows is not None and rows[0].owner_id == owner.pk:
        return rows
    job = get_object_or_404(Job, public_id=task_id, owner=owner, kind=TRAINING.name)
    claimed = jobs.request_refresh(job)
    # Call, then job, then character (the order the runner saves them), and after a pass the
    # refresh ran inline (sync queue): a finished training never reads as "preparing".
    call = job.calls.order_by("-pk").first()
    if claimed:
        job.refresh_from_db()
    character = Character.objects.get(pk=job.subject["character"])
    if seconds:
        cache.set(key, (job, call, character), seconds)
    return job, call, character


def test_images(character: Character) -> list[dict]:
    """The 3 test images after training (issue 15): url once ready, else where they stand."""
    if character.status != CharacterStatus.ACTIVE:
        return []
    samples_job = character.samples_job
    rows = []
    for sample in sorted(current_samples(character), key=lambda s: s.number):
        if sample.image:
            rows.append({"url": media_url(sample.image.name), "status": "ready"})
        elif samples_job is not None and samples_job.is_terminal:
            rows.append({"url": None, "status": "failed"})
        else:
            rows.append({"url": None, "status": "generating"})
    return rows


def status_of(character: Character, job: Job, call: RemoteCall | None) -> dict:
    now = timezone.now()
    started = call.started_at if call else None
    elapsed = int((now - job.started_at).total_seconds()) if job.started_at else 0
    if job.state == JobState.SUCCEEDED:
        status, percent = "completed", 100
    elif job.state in (JobState.FAILED, JobState.CANCELLED):
        status, percent = "failed", int(job.progress * 100)
    elif call is not None and call.state in (CallState.RUNNING, CallState.SUCCEEDED):
        # SUCCEEDED while the job is not: the runner is between saving the two.
        status, percent = "training", int(min(call.progress, 0.99) * 100)
        if not call.current_step and started:
            # No step in the logs: the elapsed-time estimate as of now, so a watching page's
            # bar moves on every read, not only when a pass ran (issue 15).
            ran = (now - started).total_seconds()
            percent = max(percent, int(estimate_from_elapsed(ran, EXPECTED_TRAINING_SECONDS) * 100))
    else:
        status, percent = "preparing", 0
    total = call.total_steps if call and call.total_steps else character.training_steps
    current = call.current_step if call and call.current_step else int(total * percent / 100)
    remaining = _remaining(status, call, started, now)
    return {
        "task_id": str(job.public_id),
        "character_id": str(character.public_id),
        "status": status,
        "queued": job.state == JobState.WAITING,
        "progress_percent": percent,
        # Training, yet the logs carried no step: the figure comes from elapsed time.
        "progress_is_estimate": status == "training" and not (call and call.current_step),
        "estimated_remaining_seconds": remaining,
        "current_step": current,
        "total_steps": total,
        "elapsed_seconds": elapsed,
        "cost": float(training_cost(character)),
        "message": _status_message(character, job),
        "wait_message": wait_message(job, [call] if call else []),
    }


def _remaining(status: str, call: RemoteCall | None, started, now) -> int:
    if status in ("completed", "failed"):
        return 0
    if call is None or started is None or status != "training":
        return EXPECTED_TRAINING_SECONDS
    ran = (now - started).total_seconds()
    if call.current_step and call.total_steps and call.current_step > 0:
        left = call.total_steps - call.current_step
        if ran < RATE_MIN_SECONDS:
            # Too little watched to know the pace (the first reading had ran == 0 and said
            # "0 seconds left" at 20%): the expected duration, scaled by what is left.
            return int(EXPECTED_TRAINING_SECONDS * left / call.total_steps)
        return int(ran / call.current_step * left)
    return int(max(60.0, EXPECTED_TRAINING_SECONDS - ran))


def _status_message(character: Character, job: Job) -> str:
    if job.state == JobState.WAITING:
        return _(
            "동시에 %(n)d개까지 학습할 수 있습니다. 앞선 학습이 끝나면 자동으로 시작합니다."
        ) % {"n": settings.MAX_CONCURRENT_TRAINING}
    if character.status == CharacterStatus.FAILED:
        return _failure_text(character.failure_message)
    return ""
