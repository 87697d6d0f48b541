"""Two characters without blending (issue 16).

Stacking two LoRAs in one pass blends the faces (SPEC §6.2). With `separate_identities` a
two-character scene is made in three stages, one remote call each, all in the scene's job:

1. compose: both LoRAs, A placed left and B right in the prompt (scenes.services);
2. the two faces of the composed picture are found with dlib (left = A, right = B), and a
   soft mask (white = repaint) over each face and its hair is uploaded where fal reads it;
3. inpaint A: `fal-ai/flux-lora/inpainting` with only A's LoRA, A's trigger word, the
   composed picture and A's mask; then inpaint B on A's result with only B's LoRA.

Each stage is added to the job by the previous one's on_call_finished hook
(webtoon.jobs.services.add_calls), so the engine runs them like any other call: saved
before it is submitted, retried, never paid twice. Without two faces the composed picture
stands, with a message, and nothing more is paid.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image, ImageDraw, ImageFilter

from characters import identity
from webtoon.imaging import BackendError, get_backend
from webtoon.imaging.safety import flagged_unsafe
from webtoon.jobs import pricing
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import get_kind
from webtoon.jobs.models import CallState, RemoteCall

from .identity import measure_cast
from .models import Scene, SceneCharacter
from .vocabulary import EXPRESSIONS, english

logger = logging.getLogger(__name__)

COMPOSE, INPAINT_A, INPAINT_B = "compose", "inpaint_a", "inpaint_b"
STAGE_SLOTS = {COMPOSE: 0, INPAINT_A: 1, INPAINT_B: 2}
STAGE_LABELS = {
    COMPOSE: gettext_noop("1단계: 두 캐릭터 합성"),
    INPAINT_A: gettext_noop("2단계: A 얼굴 다시 그리기"),
    INPAINT_B: gettext_noop("3단계: B 얼굴 다시 그리기"),
}
RUNNING, DONE, SKIPPED, FAILED = "running", "done", "skipped", "failed"

SKIPPED_NO_FACES = gettext_noop("인물 분리를 건너뛰었습니다 (얼굴 2개를 찾지 못함)")
SKIPPED_UPLOAD = gettext_noop("인물 분리를 건너뛰었습니다 (마스크를 올리지 못함)")
FAILED_INPAINT = gettext_noop(
    "인물 분리 중 얼굴 다시 그리기에 실패했습니다. 합성 이미지를 보여드립니다."
)
# Messages about one run's outcome: a regenerated scene starts without them.
OUTCOME_MESSAGES = {SKIPPED_NO_FACES, SKIPPED_UPLOAD, FAILED_INPAINT}

# fal's default strength (FAL.md §5): enough to redraw a face in the LoRA's likeness while
# the soft edge keeps the lighting and the neck line of the composed picture.
INPAINT_STRENGTH = 0.85
# The mask around a face box (w x h): an ellipse 1.7 w wide and 2.0 h tall, raised by a
# quarter of the face so the hair above it is repainted too; its edge is blurred over
# FEATHER of the face width so the repaint fades into the picture instead of a hard seam.
MASK_WIDTH, MASK_HEIGHT, MASK_RAISE, FEATHER = 1.7, 2.0, 0.25, 0.12


# --- cost ---------------------------------------------------------------------------------------
def unit_costs(image_size: str) -> tuple[Decimal, Decimal]:
    """(compose, one inpaint) in $ for a picture of `image_size`: the endpoints' prices
    (FAL_PRICES, e.g. per megapixel), else COST_PER_LORA_INFERENCE / COST_PER_LORA_INPAINT."""
    sized = {"image_size": image_size, "num_images": 1}
    return (
        pricing.estimate(settings.FAL_ENDPOINTS["lora"], sized,
                         Decimal(str(settings.COST_PER_LORA_INFERENCE))),
        pricing.estimate(settings.FAL_ENDPOINTS["inpaint"], sized,
                         Decimal(str(settings.COST_PER_LORA_INPAINT))),
    )


def estimate(separate: bool, image_size: str = "landscape_16_9") -> dict:
    """What a two-character scene costs, before it is paid: shown on the page and returned
    as `estimate` by the API. An inpaint skipped for want of two faces is not paid."""
    compose, inpaint = unit_costs(image_size)
    inpaints = inpaint * 2 if separate else Decimal("0")
    return {
        "compose": float(compose),
        "inpaint_each": float(inpaint) if separate else 0.0,
        "inpaint_count": 2 if separate else 0,
        "total": float(compose + inpaints),
        "total_krw": int(((compose + inpaints) * Decimal(str(settings.KRW_PER_USD))).quantize(1)),
    }


def total(image_size: str) -> Decimal:
    """The separated scene's whole estimate (compose + two inpaints), for the spend cap."""
    compose, inpaint = unit_costs(image_size)
    return compose + 2 * inpaint


# --- stages -------------------------------------------------------------------------------------
def stage_finished(scene: Scene, call: RemoteCall) -> None:
    """on_call_finished for a separated scene: record the stage, start the next one."""
    stage = {0: COMPOSE, 1: INPAINT_A, 2: INPAINT_B}.get(call.slot)
    if stage is None:
        return
    if call.state != CallState.SUCCEEDED or not call.output_file or flagged_unsafe(call.result):
        # A repaint the safety checker blacked out is no picture to go on from either.
        _stage_failed(scene, stage, call)
        return
    if stage != COMPOSE:
        _charge_inpaint(call)
    record = {
        "stage": stage,
        "call": call.pk,
        "image": call.output_file.name,
        "arguments": call.arguments,
        "cost": float(call.cost),
    }
    if stage == COMPOSE:
        scene.seed = (call.result or {}).get("seed", scene.seed)
        _composed(scene, call, record)
    elif stage == INPAINT_A:
        scene.stages = [*scene.stages, record]
        roles = _roles(scene)
        masks = scene.stages[0].get("masks") or {}
        _add_inpaint(scene, call, roles["B"], INPAINT_B, call.output_url, masks.get("B"))
        scene.save(update_fields=["stages", "seed"])
    else:
        scene.stages = [*scene.stages, record]
        _finish(scene, call.output_file.name, DONE)


def _composed(scene: Scene, call: RemoteCall, record: dict) -> None:
    with call.output_file.open("rb") as fh, Image.open(fh) as im:
        picture = im.convert("RGB")
    faces = two_faces(picture)
    if faces is None:
        scene.stages = [record]
        _finish(scene, call.output_file.name, SKIPPED, _(SKIPPED_NO_FACES), picture=picture)
        return
    left, right = faces
    record["faces"] = {"A": _box(left), "B": _box(right)}
    try:
        record["masks"] = _upload_masks(get_backend(call.backend), picture.size, left, right)
    except BackendError as exc:
        logger.warning("mask upload for scene %s failed: %s", scene.pk, exc)
        scene.stages = [record]
        _finish(scene, call.output_file.name, SKIPPED, _(SKIPPED_UPLOAD), picture=picture)
        return
    scene.stages = [record]
    scene.separation = RUNNING
    roles = _roles(scene)
    _add_inpaint(scene, call, roles["A"], INPAINT_A, call.output_url, record["masks"]["A"])
    scene.save(update_fields=["stages", "separation", "seed"])


def _upload_masks(backend, size, left, right) -> dict[str, str]:
    """Both masks at once (two round trips to fal's storage side by side, not in a row)."""
    masks = {"A": mask_png(size, left), "B": mask_png(size, right)}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mask") as pool:
        urls = pool.map(
            lambda item: backend.upload(item[1], "image/png", f"mask_{item[0]}.png"),
            masks.items(),
        )
        return dict(zip(masks, urls, strict=True))


def _stage_failed(scene: Scene, stage: str, call: RemoteCall) -> None:
    if stage == COMPOSE or not scene.stages:
        scene.error = call.error_message or _("생성에 실패했습니다.")
        scene.separation = FAILED
        scene.save(update_fields=["error", "separation"])
        return
    # A repaint failed for good: the last good picture stands, with a message.
    last = scene.stages[-1]["image"]
    _finish(scene, last, FAILED, _(FAILED_INPAINT))


def job_finished(job) -> None:
    """on_job_finished: a separated scene left without a picture (its job ended between two
    stages: cancelled, or a worker gone after a stage) shows the last stage it has."""
    scene = Scene.objects.filter(job=job, separate_identities=True, image="", error="").first()
    if scene is None:
        return
    if scene.stages:
        _finish(scene, scene.stages[-1]["image"], FAILED, _(FAILED_INPAINT))
    else:
        scene.error = job.error_message or _("생성에 실패했습니다.")
        scene.separation = FAILED
        scene.save(update_fields=["error", "separation"])


def _finish(scene: Scene, image: str, outcome: str, message: str = "", picture=None) -> None:
    scene.image = image
    scene.separation = outcome
    scene.error = ""
    if message and message not in scene.warnings:
        scene.warnings = [*scene.warnings, message]
    scene.save(update_fields=["image", "separation", "error", "warnings", "stages", "seed"])
    measure_cast(scene, picture)


def _charge_inpaint(call: RemoteCall) -> None:
    """An inpaint costs COST_PER_LORA_INPAINT where the engine charged the kind's flat
    price (the job kind is "scene", priced as one LoRA inference)."""
    flat = get_kind(call.job.kind).unit_cost
    price = unit_costs(call.arguments.get("image_size") or "landscape_16_9")[1]
    if call.cost == flat and price != flat:
        RemoteCall.objects.filter(pk=call.pk).update(cost=price)
        call.cost = price


def _roles(scene: Scene) -> dict[str, SceneCharacter]:
    return {role.role: role for role in scene.cast.all()}


def _add_inpaint(scene, call, role: SceneCharacter, stage, image_url, mask_url) -> None:
    arguments = inpaint_arguments(scene, role, image_url, mask_url)
    spec = jobs.CallSpec(settings.FAL_ENDPOINTS["inpaint"], arguments, slot=STAGE_SLOTS[stage])
    jobs.add_calls(call.job, [spec])


def inpaint_arguments(scene: Scene, role: SceneCharacter, image_url: str, mask_url: str) -> dict:
    """One character's repaint: only its own LoRA, its trigger word, its own action."""
    action = english(scene.inputs.get("a_action" if role.role == "A" else "b_action", ""),
                     EXPRESSIONS)
    words = [role.trigger_word, "one person, face and hair", action]
    if scene.inputs.get("style"):
        words.append(scene.inputs["style"])
    return {
        "prompt": ", ".join(w for w in words if w),
        "image_url": image_url,
        "mask_url": mask_url,
        "loras": [{"path": role.lora_url, "scale": role.scale}],
        "image_size": scene.image_size,  # the composed picture's own size
        "strength": INPAINT_STRENGTH,
        "num_inference_steps": settings.INFERENCE_STEPS,
        "seed": scene.seed,
        "num_images": 1,
        "enable_safety_checker": True,
    }


# --- faces and masks ----------------------------------------------------------------------------
def two_faces(picture: Image.Image) -> tuple[identity.FoundFace, identity.FoundFace] | None:
    """The two largest clear faces, left one first; None when there are fewer than two."""
    faces = [f for f in identity.find_faces(picture) if f.score >= identity.CONFIDENT_SCORE]
    if len(faces) < 2:
        return None
    largest = sorted(faces, key=lambda f: f.width * f.height, reverse=True)[:2]
    left, right = sorted(largest, key=lambda f: f.center_x)
    return left, right


def _box(face: identity.FoundFace) -> list[int]:
    return [face.left, face.top, face.right, face.bottom]


def mask_png(size: tuple[int, int], face: identity.FoundFace) -> bytes:
    """A greyscale PNG the size of the picture: white over the face and its hair, black
    elsewhere, with a blurred edge (fal: white = repaint)."""
    mask = Image.new("L", size, 0)
    cx = face.center_x
    cy = (face.top + face.bottom) / 2 - MASK_RAISE * face.height
    rx, ry = MASK_WIDTH * face.width / 2, MASK_HEIGHT * face.height / 2
    ImageDraw.Draw(mask).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, FEATHER * face.width)))
    buf = io.BytesIO()
    mask.save(buf, "PNG", optimize=False)
    return buf.getvalue()
