"""Episode API (mounted at /api/episode/): episodes, panels, bubbles, exports.

Every id is the owner's own: anyone else's episode, panel, bubble or export is a 404.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, File, Router, Schema, Status, UploadedFile

from characters.schemas import IdentityOut
from scenes import services as scenes
from webtoon.schemas import API_ERRORS, IMAGE_UPLOAD_ERRORS, PAID_ERRORS, errors

from . import presenters, queries, services

router = Router(tags=["episode"])

# 503: the Korean font is missing (bubbles are measured with it, exports drawn with it).
ERRORS = {**API_ERRORS, **errors(503)}
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)
Kind = Literal["speech", "shout", "thought", "whisper", "narration", "caption"]
Preset = Literal["original", "webtoon_canvas", "naver", "tapas"]
Fraction = Field(None, ge=0, le=1, description="fraction of the panel (0..1)")


class PresetOut(Schema):
    id: str
    name: str
    keywords: str
    description: str


class FitOut(Schema):
    font_size: int = Field(description="px used at 800 px width (shrunk to fit)")
    lines: list[str]
    fits: bool = Field(description="false: cut at the minimum size (18 px)")
    note: str
    warning: bool = Field(description="true: near or at the 18 px minimum, or cut")


class BubbleOut(Schema):
    bubble_id: str
    kind: str
    text: str
    x: float
    y: float
    w: float
    h: float
    tail_x: float | None
    tail_y: float | None
    font_size: int
    fit: FitOut


class PanelIdentityOut(Schema):
    role: str
    trigger_word: str
    identity: IdentityOut | None
    words: str


class PanelOut(Schema):
    panel_id: str
    number: int
    position: int
    status: str = Field(description="ready | generating | failed | missing")
    source: str
    scene_id: str | None
    prompt: str
    error: str
    image_url: str | None
    height: int | None = Field(description="chosen height in px at 800; null: automatic")
    display_height: int
    bubbles: list[BubbleOut]
    identity: list[PanelIdentityOut] = Field(
        default_factory=list, description="the scene's characters against their photos"
    )


class EpisodeOut(Schema):
    episode_id: str
    title: str
    preset: PresetOut | None
    panel_count: int
    panels: list[PanelOut] | None = None
    created_at: datetime
    updated_at: datetime


class EpisodeIn(Schema):
    title: str = Field(max_length=services.TITLE_MAX)
    preset_id: str | None = Field(None, description="a preset id from /presets; null: none")


class EpisodePatch(Schema):
    title: str | None = Field(None, max_length=services.TITLE_MAX)
    preset_id: str | None = None


class PanelGenerateIn(Schema):
    character_ids: list[UUID] = Field(
        default_factory=list, description="0: prompt mode, 1 or 2 characters; 3+: 422"
    )
    expression: str = Field("", max_length=200, description="A's expression/action")
    b_expression: str = Field("", max_length=200, description="B's expression/action")
    location: str = Field("", max_length=200)
    situation: str = Field("", max_length=500)
    lora_scale: float | None = Field(None, description="one character; default: its own")
    lora_scale_a: float = scenes.TWO_SCALES[0]
    lora_scale_b: float = scenes.TWO_SCALES[1]
    image_size: str = Field(scenes.ONE_SIZE, description="0-1 character; 2: landscape_16_9")
    count: int = Field(1, ge=1, le=services.MAX_BATCH)
    method: Literal["lora", "reference"] | None = Field(
        None, description="lora | reference (the characters' best cuts, usable before "
        "training); default: lora when every character has an active LoRA",
    )


class FromSceneIn(Schema):
    scene_id: UUID


class OrderIn(Schema):
    panel_ids: list[UUID]


class PanelPatch(Schema):
    height: int | None = Field(None, description="px at 800 wide; null: the picture's ratio")


class MoveIn(Schema):
    offset: Literal[-1, 1]


class BubbleGeometry(Schema):
    """Where a text element sits, as fractions of its panel (and its font size)."""

    x: float | None = Fraction
    y: float | None = Fraction
    w: float | None = Fraction
    h: float | None = Fraction
    tail_x: float | None = Fraction
    tail_y: float | None = Fraction
    font_size: int | None = None


class BubbleIn(BubbleGeometry):
    kind: Kind
    text: str = Field("", max_length=services.TEXT_MAX)


class BubblePatch(BubbleGeometry):
    kind: Kind | None = None
    text: str | None = Field(None, max_length=services.TEXT_MAX)


class ExportIn(Schema):
    format: Literal["png", "jpeg"] = "png"
    preset: Preset = Field(
        "original",
        description="platform: webtoon_canvas (800 px, <=1280 px and <=2 MB a file, <=20 MB), "
        "naver (690 px, <=1280 px, <=50 MB, JPEG), tapas (940 px, <=4000 px and <=2 MB a "
        "file), original (800 px, as configured)",
    )
    preview: bool = Field(
        False, description="true: no files, a scaled-down strip with the cuts and file sizes"
    )


class ImageOut(Schema):
    number: int
    url: str | None = Field(description="null in a preview")
    filename: str = Field(description="suggested name, e.g. 에피소드1_01.jpg")
    width: int
    height: int
    top: int | None = Field(description="px from the top of the strip")
    size: int | None = Field(description="bytes")


class ExportOut(Schema):
    export_id: str
    episode_id: str
    state: str = Field(description="queued | running | succeeded | failed")
    preview: bool
    preset: str
    format: str
    quality: int | None = Field(description="JPEG quality chosen to meet the limits")
    summary: str = Field(description="what the exporter did, e.g. '… 품질 85로 저장, 14장 …'")
    width: int
    max_height: int
    total_height: int | None
    images: list[ImageOut]
    total_size: int = Field(description="bytes, all images")
    preview_url: str | None
    zip_url: str | None
    pdf_url: str | None
    warnings: list[str]
    error: str
    created_at: datetime
    finished_at: datetime | None


def _episode(episode) -> dict:
    return presenters.episode_dict(episode, list(queries.panels_of(episode)))


def _panel(panel) -> dict:
    panel = queries.panels_of(panel.episode).get(pk=panel.pk)
    return presenters.panel_dict(panel)


# --- episodes ------------------------------------------------------------------------------------
@router.get("/presets", response={200: list[PresetOut], **ERRORS})
def presets(request):
    return [presenters.preset_dict(p) for p in queries.presets()]


@router.get("/", response={200: list[EpisodeOut], **ERRORS})
def episode_list(request):
    return [presenters.episode_dict(e) for e in queries.episodes_for(request.auth)]


@router.post("/", response={201: EpisodeOut, **ERRORS})
def episode_create(request, payload: EpisodeIn):
    episode = services.create_episode(
        owner=request.auth, title=payload.title, preset_id=payload.preset_id
    )
    return Status(201, _episode(episode))


@router.get("/{uuid:episode_id}", response={200: EpisodeOut, **ERRORS})
def episode_detail(request, episode_id: UUID):
    return _episode(queries.episode_for(request.auth, episode_id))


@router.patch("/{uuid:episode_id}", response={200: EpisodeOut, **ERRORS})
def episode_update(request, episode_id: UUID, payload: EpisodePatch):
    changes = payload.dict(exclude_unset=True)
    episode = services.update_episode(
        owner=request.auth,
        episode_id=episode_id,
        title=changes.get("title"),
        preset_id=changes.get("preset_id", services.UNSET),
    )
    return _episode(episode)


@router.delete("/{uuid:episode_id}", response={204: None, **ERRORS})
def episode_delete(request, episode_id: UUID):
    services.delete_episode(owner=request.auth, episode_id=episode_id)
    return Status(204, None)


# --- panels --------------------------------------------------------------------------------------
@router.post("/{uuid:episode_id}/panels/generate", response={202: list[PanelOut], **COSTLY})
def panel_generate(request, episode_id: UUID, payload: PanelGenerateIn):
    panels = services.generate_panels(
        owner=request.auth,
        episode_id=episode_id,
        character_ids=payload.character_ids,
        expression=payload.expression,
        b_expression=payload.b_expression,
        location=payload.location,
        situation=payload.situation,
        scale=payload.lora_scale,
        scale_a=payload.lora_scale_a,
        scale_b=payload.lora_scale_b,
        image_size=payload.image_size,
        count=payload.count,
        method=payload.method,
    )
    return Status(202, [_panel(p) for p in panels])


@router.post(
    "/{uuid:episode_id}/panels/upload",
    response={201: PanelOut, **ERRORS, **IMAGE_UPLOAD_ERRORS, **errors(429)},
)
def panel_upload(request, episode_id: UUID, image: File[UploadedFile | None] = None):
    panel = services.upload_panel(owner=request.auth, episode_id=episode_id, upload=image)
    return Status(201, _panel(panel))


@router.post("/{uuid:episode_id}/panels/from-scene", response={201: PanelOut, **ERRORS})
def panel_from_scene(request, episode_id: UUID, payload: FromSceneIn):
    panel = services.add_scene_panel(
        owner=request.auth, episode_id=episode_id, scene_id=payload.scene_id
    )
    return Status(201, _panel(panel))


@router.put("/{uuid:episode_id}/panels/order", response={200: list[PanelOut], **ERRORS})
def panel_order(request, episode_id: UUID, payload: OrderIn):
    panels = services.reorder_panels(
        owner=request.auth, episode_id=episode_id, panel_ids=payload.panel_ids
    )
    return [presenters.panel_dict(p, i) for i, p in enumerate(panels, 1)]


@router.get("/panel/{uuid:panel_id}", response={200: PanelOut, **ERRORS})
def panel_detail(request, panel_id: UUID):
    return _panel(services.watch_panel(owner=request.auth, panel_id=panel_id))


@router.patch("/panel/{uuid:panel_id}", response={200: PanelOut, **ERRORS})
def panel_update(request, panel_id: UUID, payload: PanelPatch):
    panel = services.set_panel_height(owner=request.auth, panel_id=panel_id,
                                      height=payload.height)
    return _panel(panel)


@router.post("/panel/{uuid:panel_id}/move", response={200: PanelOut, **ERRORS})
def panel_move(request, panel_id: UUID, payload: MoveIn):
    return _panel(services.move_panel(owner=request.auth, panel_id=panel_id,
                                      offset=payload.offset))


@router.delete("/panel/{uuid:panel_id}", response={204: None, **ERRORS})
def panel_delete(request, panel_id: UUID):
    services.delete_panel(owner=request.auth, panel_id=panel_id)
    return Status(204, None)


# --- bubbles -------------------------------------------------------------------------------------
@router.post("/panel/{uuid:panel_id}/bubbles", response={201: BubbleOut, **ERRORS})
def bubble_create(request, panel_id: UUID, payload: BubbleIn):
    bubble = services.add_bubble(owner=request.auth, panel_id=panel_id, **payload.dict())
    return Status(201, presenters.bubble_dict(bubble))


@router.patch("/bubble/{uuid:bubble_id}", response={200: BubbleOut, **ERRORS})
def bubble_update(request, bubble_id: UUID, payload: BubblePatch):
    bubble = services.update_bubble(
        owner=request.auth, bubble_id=bubble_id, **payload.dict(exclude_unset=True)
    )
    return presenters.bubble_dict(bubble)


@router.delete("/bubble/{uuid:bubble_id}", response={204: None, **ERRORS})
def bubble_delete(request, bubble_id: UUID):
    services.delete_bubble(owner=request.auth, bubble_id=bubble_id)
    return Status(204, None)


# --- exports -------------------------------------------------------------------------------------
@router.post("/{uuid:episode_id}/export", response={202: ExportOut, **ERRORS, **errors(429)})
def export_create(request, episode_id: UUID, payload: ExportIn):
    export = services.request_export(owner=request.auth, episode_id=episode_id,
                                     fmt=payload.format, preset=payload.preset,
                                     preview=payload.preview)
    export.refresh_from_db()  # an inline queue (tests, sync) has already run it
    return Status(202, presenters.export_dict(export))


@router.get("/export/{uuid:export_id}", response={200: ExportOut, **ERRORS})
def export_detail(request, export_id: UUID):
    return presenters.export_dict(queries.export_for(request.auth, export_id))
