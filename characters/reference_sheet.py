"""A real reference sheet (issue 16): the character's training images as one labelled PNG grid.

Each cell is a training image with its cut number, Korean label and category; the header
carries the character's name and trigger word. It is kept with the character
(`Character.reference_sheet`), shown on the character page, returned as `reference_sheet_url`
and written into the backup ZIP as `reference_sheet.png` next to the SPEC §5.3 folder.

The images come from the current version's training ZIP (what the LoRA really learned from),
labelled from the creation session's cuts by their caption; images added by a retrain or a
restore that no cut describes are labelled with their caption.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _
from django_q.tasks import async_task
from PIL import Image, ImageDraw, ImageFont, ImageOps

from webtoon.media import user_file_name

from .enums import CutCategory
from .models import Character

logger = logging.getLogger(__name__)

BUILD_TASK = "characters.tasks.build_reference_sheet"
FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf"
COLUMNS = 5
THUMB = 240
LABEL_HEIGHT = 54
GAP = 12
HEADER = 96
BACKGROUND = (250, 250, 247)
INK = (30, 30, 30)
MUTED = (110, 110, 110)
MAX_IMAGES = 60  # a retrained character can carry many; the sheet stays a sheet


@dataclass(frozen=True)
class SheetItem:
    data: bytes
    number: int
    label: str
    category: str


def request_build(character: Character) -> None:
    """Build (again) after the transaction commits, in a worker: decoding 20+ images is CPU."""
    character_id = character.pk
    transaction.on_commit(lambda: async_task(BUILD_TASK, character_id))


def request_build_once(character: Character) -> None:
    """request_build for a page that shows a character without a sheet: once per 5 minutes,
    however often the page is read (it polls)."""
    if cache.add(f"reference-sheet:{character.pk}", 1, 300):
        request_build(character)


def build_and_store(character: Character) -> str:
    """Render the sheet and keep it with the character; returns the stored name ('' when
    there is nothing to show)."""
    data = render_for(character)
    if data is None:
        return ""
    old = character.reference_sheet.name
    name = default_storage.save(
        user_file_name(character.owner_id, "sheets", "png"), ContentFile(data)
    )
    Character.objects.filter(pk=character.pk).update(reference_sheet=name)
    character.reference_sheet.name = name
    if old and old != name:
        default_storage.delete(old)
    return name


def render_for(character: Character) -> bytes | None:
    items = sheet_items(character)
    if not items:
        return None
    return render(items, name=character.name, trigger_word=character.trigger_word)


def sheet_items(character: Character) -> list[SheetItem]:
    source = character.current_version or character
    training_data = source.training_data.name if source.training_data else ""
    labels = _cut_labels(character)
    items = []
    for number, (member, data, caption) in enumerate(_training_images(training_data), start=1):
        cut = _match(caption, labels)
        if cut is not None:
            items.append(SheetItem(data, cut[0], cut[1], cut[2]))
        else:
            items.append(SheetItem(data, number, _short(caption) or member, ""))
    if not items and character.session_id:  # no ZIP (yet): the selected cuts themselves
        for cut in character.session.cuts.filter(selected=True).exclude(image="").order_by(
            "number"
        ):
            with cut.image.open("rb") as fh:
                items.append(SheetItem(fh.read(), cut.number, cut.label_ko, _category(cut)))
    return items[:MAX_IMAGES]


def _training_images(training_data: str):
    if not training_data or not default_storage.exists(training_data):
        return []
    from .backup import _reference_sheet  # lazy: backup imports this module (its ZIP's sheet)

    try:
        with default_storage.open(training_data, "rb") as fh, zipfile.ZipFile(fh) as archive:
            names = set(archive.namelist())
            out = []
            for member, _caption in _reference_sheet(training_data, ""):
                txt = member.rsplit(".", 1)[0] + ".txt"
                caption = archive.read(txt).decode("utf-8", "replace") if txt in names else ""
                out.append((member, archive.read(member), caption.strip()))
            return out
    except (OSError, zipfile.BadZipFile) as exc:
        logger.warning("training data %s unreadable for the reference sheet: %r", training_data,
                       exc)
        return []


def _cut_labels(character: Character) -> dict[str, tuple[int, str, str]]:
    if not character.session_id:
        return {}
    return {
        " ".join(cut.pose_prompt.strip(" ,").lower().split()): (
            cut.number, cut.label_ko, _category(cut)
        )
        for cut in character.session.cuts.all()
    }


def _category(cut) -> str:
    return str(CutCategory(cut.category).label) if cut.category in CutCategory.values else ""


def _match(caption: str, labels: dict[str, tuple[int, str, str]]):
    """The cut whose pose ends the caption `{trigger}, {style}, {pose}` (the style may hold
    commas of its own, so the pose is found from the end; the longest match wins)."""
    text = " ".join(caption.lower().split())
    found = [pose for pose in labels if pose and text.endswith(pose)]
    return labels[max(found, key=len)] if found else None


def _short(caption: str) -> str:
    return caption.split(",")[-1].strip()[:24]


# --- drawing ----------------------------------------------------------------------------------
def _font(size: int, bold: bool = False):
    try:
        return ImageFont.truetype(FONT_BOLD if bold else FONT, size)
    except OSError:  # fonts-nanum missing: Pillow's own font still draws Latin text
        return ImageFont.load_default(size=size)


def render(items: list[SheetItem], *, name: str, trigger_word: str) -> bytes:
    rows = (len(items) + COLUMNS - 1) // COLUMNS
    width = COLUMNS * THUMB + (COLUMNS + 1) * GAP
    height = HEADER + rows * (THUMB + LABEL_HEIGHT + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 14), name, fill=INK, font=_font(34, bold=True))
    subtitle = _("트리거 워드 %(t)s · 학습 이미지 %(n)d장") % {"t": trigger_word, "n": len(items)}
    draw.text((GAP, 58), subtitle, fill=MUTED, font=_font(20))
    label_font, small = _font(18, bold=True), _font(15)
    for index, item in enumerate(items):
        col, row = index % COLUMNS, index // COLUMNS
        x = GAP + col * (THUMB + GAP)
        y = HEADER + row * (THUMB + LABEL_HEIGHT + GAP)
        try:
            with Image.open(io.BytesIO(item.data)) as im:
                thumb = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), (THUMB, THUMB))
        except OSError:
            thumb = Image.new("RGB", (THUMB, THUMB), (220, 220, 220))
        sheet.paste(thumb, (x, y))
        draw.rectangle((x, y + THUMB, x + THUMB, y + THUMB + LABEL_HEIGHT - 6), fill="white")
        draw.text((x + 8, y + THUMB + 4), f"#{item.number:02d} {item.label}"[:20], fill=INK,
                  font=label_font)
        if item.category:
            draw.text((x + 8, y + THUMB + 28), item.category, fill=MUTED, font=small)
    buf = io.BytesIO()
    sheet.save(buf, "PNG", optimize=True)
    return buf.getvalue()
