"""SPEC §5.3 / §7 "restore from backup": a backup ZIP (ours, or one made by hand in the same
layout) becomes an active character again, with a fresh LoRA URL.

The upload is untrusted. Everything is checked before anything is written (RELIABILITY §2):
the ZIP's directory (names from an allow-list, no paths out, no links, no encryption, size and
ratio caps), then each entry copied under a name of our own into a private temp folder with a
byte counter, then metadata.json against its schema, the safetensors header by our own parser
and then by `safetensors.safe_open`, and every image decoded in full. Only then are files
stored, the LoRA re-uploaded and the rows created; if that part fails, what was stored is
deleted again. Images are always re-encoded: no byte the user sent is served back as-is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from PIL import Image
from safetensors import safe_open

from webtoon.accounts.throttle import check_action
from webtoon.exceptions import Conflict, DomainError, InvalidInput
from webtoon.imaging import BackendError
from webtoon.jobs import hosting
from webtoon.media import user_file_name
from webtoon.text import clean_data, contains_control

from . import reference_sheet, trigger_words
from .backup import sync_local_copy
from .enums import CharacterStatus, StyleId
from .faces import detect_face
from .models import Character, CharacterVersion, Photo, Sample
from .packaging import TrainingItem, caption_for, write_training_zip
from .photos import ACCEPTED_FORMATS, PhotoRejected, decode_photo, photo_warnings
from .prompts import style_prompt
from .training import SAMPLE_PROMPTS, create_with_trigger_word

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_ENTRIES = 200
MAX_METADATA_BYTES = 64 * 1024
MAX_RATIO = 200
# Below this size a high ratio cannot hurt (the per-entry caps bound it) and small text-like
# files compress well for honest reasons.
RATIO_FLOOR = 1 << 20
MAX_SAFETENSORS_HEADER = 1 << 20
# What each element of a tensor costs, for the dtypes a FLUX LoRA is saved in.
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4}
JPEG_QUALITY = 95
MAX_NAME_LENGTH = 60
MAX_CUSTOM_PROMPT = 200
MAX_CAPTION = 1000
MAX_VERSION = 32767

_IMAGE = r"(jpg|jpeg|png|webp)"
_PHOTO = re.compile(rf"^original_photo\.{_IMAGE}$", re.IGNORECASE)
_REFERENCE = re.compile(rf"^reference_sheet/(\d{{2,3}})\.{_IMAGE}$", re.IGNORECASE)
_SAMPLE = re.compile(rf"^samples/test_(\d{{2}})\.{_IMAGE}$", re.IGNORECASE)
_FOLDERS = {"reference_sheet/", "samples/"}
# What Finder's "Compress" and Explorer leave in a ZIP made by hand: skipped, never read.
_JUNK_FOLDER = "__MACOSX"
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")


def max_backup_bytes() -> int:
    """The largest upload (and the largest total unpacked size): a LoRA plus 200 MB."""
    return settings.MAX_LORA_BYTES + 200 * 1024 * 1024


def max_image_bytes() -> int:
    return settings.MAX_UPLOAD_BYTES


# --- what a valid backup holds ----------------------------------------------------------------
@dataclass(frozen=True)
class BackupMetadata:
    character_name: str
    trigger_word: str
    style_id: str
    custom_prompt: str
    lora_scale_default: float
    training_images_count: int
    training_steps: int
    learning_rate: float
    resolution: int
    version: int
    lora_sha256: str | None
    created_at: datetime | None
    trained_at: datetime | None
    reference_captions: list[str]
    training_started_at: datetime | None = None
    total_cost_usd: Decimal | None = None


@dataclass
class _Image:
    path: Path  # our re-encoded JPEG
    width: int
    height: int
    source_format: str
    face_box: dict | None = None


@dataclass
class ValidBackup:
    metadata: BackupMetadata
    lora_path: Path
    lora_sha256: str
    references: list[_Image] = field(default_factory=list)
    samples: list[_Image] = field(default_factory=list)
    photo: _Image | None = None


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message)


# --- the trigger word comes back (issue 15) ------------------------------------------------------
REPLACE, KEEP_BOTH = "replace", "keep_both"
TRAINING_HOLDER = "학습 중인 캐릭터는 바꿀 수 없습니다. 학습이 끝난 뒤 다시 시도해주세요."
ON_CONFLICT = (REPLACE, KEEP_BOTH)
KEEP_BOTH_WARNING = (
    "'%(name)s'은(는) 트리거 워드 %(new)s(으)로 복원했습니다. 이 캐릭터는 %(old)s로 학습되어, "
    "새 단어로는 닮음이 약해질 수 있습니다 (LoRA는 학습한 단어에 가장 잘 반응합니다)."
)


class TriggerWordInUse(Conflict):
    """The backup's word belongs to a live character of the same owner: the backup is a
    copy. The user chooses: replace that character, or keep both (the copy gets a new word)."""

    def __init__(self, word: str, holder: Character) -> None:
        super().__init__(
            _(
                "트리거 워드 %(word)s를 쓰는 캐릭터 '%(name)s'이(가) 이미 있습니다. "
                "그 캐릭터를 백업으로 바꿀지, 둘 다 둘지 골라주세요 (on_conflict: "
                "replace 또는 keep_both)."
            )
            % {"word": word, "name": holder.name}
        )
        self.word = word
        self.holder = holder


def _holder(word: str) -> Character | None:
    return Character.objects.filter(trigger_word=word).first()


def check_word(owner, word: str, on_conflict: str | None) -> None:
    """Before any file is stored: a live character of the owner's holding the word needs
    the user's choice."""
    if on_conflict is not None and on_conflict not in ON_CONFLICT:
        raise InvalidInput(_("on_conflict는 replace 또는 keep_both여야 합니다."))
    holder = _holder(word)
    if holder is None or holder.status == CharacterStatus.DELETED:
        return
    if holder.owner_id == owner.pk and on_conflict is None:
        raise TriggerWordInUse(word, holder)
    if on_conflict == REPLACE and holder.owner_id == owner.pk:
        job = holder.training_job
        if job is not None and job.state in ("waiting", "queued", "running"):
            raise Conflict(_(TRAINING_HOLDER))


def _free_word(owner, word: str, on_conflict: str | None) -> None:
    """Give the word back to the backup: a deleted character's row (kept until purged) lets go
    of it; so does the owner's live copy when the user chose to replace it (soft-deleted)."""
    holder = Character.objects.select_for_update().filter(trigger_word=word).first()
    if holder is None:
        return
    replace = on_conflict == REPLACE and holder.owner_id == owner.pk
    if holder.status != CharacterStatus.DELETED and not replace:
        return
    if holder.status != CharacterStatus.DELETED:
        holder.status = CharacterStatus.DELETED
        holder.deleted_at = timezone.now()
    # A unique placeholder: the row is purged later, the word is the LoRA's.
    holder.trigger_word = f"~{holder.pk}~{word}"[:40]
    holder.save(update_fields=["status", "deleted_at", "trigger_word"])


# --- entry point ------------------------------------------------------------------------------
def restore_from_backup(*, owner, upload: BinaryIO, on_conflict: str | None = None) -> Character:
    """Validate the backup ZIP `upload`, then register it as a new active character of
    `owner`, under the trigger word its LoRA was trained on (issue 15). Raises InvalidInput
    (nothing created) for anything wrong with the file, TriggerWordInUse when the owner
    must choose between replacing a live character with that word and keeping both.

    The returned character carries `requested_trigger_word` (the backup's word) and
    `restore_warning` ("" unless it came back under another word)."""
    check_action(owner, "restore")  # unpacking up to a GB: RATE_LIMIT_RESTORE
    with tempfile.TemporaryDirectory(prefix="webtoon-restore-") as tmp:
        backup = validate_backup(upload, Path(tmp))
        check_word(owner, backup.metadata.trigger_word, on_conflict)
        character = _register(owner, backup, on_conflict)
    word = backup.metadata.trigger_word
    character.requested_trigger_word = word
    character.restore_warning = (
        _(KEEP_BOTH_WARNING) % {"name": character.name, "new": character.trigger_word, "old": word}
        if character.trigger_word != word
        else ""
    )
    reference_sheet.request_build(character)
    sync_local_copy(character)
    return character


def validate_backup(upload: BinaryIO, workdir: Path) -> ValidBackup:
    """Every check, reading the upload only; the entries end up under `workdir` by our names."""
    _check_upload_size(upload)
    upload.seek(0)
    _check_directory_size(upload)
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise _not_a_zip() from exc
    with archive:
        plan = _plan(archive.infolist())
        metadata = _read_metadata(archive, plan.metadata)
        lora_path = workdir / "lora.safetensors"
        lora_sha256 = _copy_entry(archive, plan.lora, lora_path, settings.MAX_LORA_BYTES)
        check_safetensors(lora_path)
        if metadata.lora_sha256 and metadata.lora_sha256 != lora_sha256:
            raise _bad(
                _(
                    "lora_weights.safetensors의 sha256이 metadata.json의 lora_sha256과 "
                    "다릅니다. 파일이 손상되었습니다."
                )
            )
        backup = ValidBackup(metadata=metadata, lora_path=lora_path, lora_sha256=lora_sha256)
        for number, info in enumerate(plan.references, start=1):
            backup.references.append(_image_entry(archive, info, workdir / f"ref-{number}.jpg"))
        for number, info in enumerate(plan.samples, start=1):
            backup.samples.append(_image_entry(archive, info, workdir / f"sample-{number}.jpg"))
        if plan.photo is not None:
            backup.photo = _image_entry(archive, plan.photo, workdir / "photo.jpg", face=True)
    return backup


def _not_a_zip() -> InvalidInput:
    return _bad(
        _("백업 파일이 ZIP 형식이 아니거나 손상되었습니다. 내려받은 백업 ZIP을 올려주세요.")
    )


def _check_upload_size(upload: BinaryIO) -> None:
    size = getattr(upload, "size", None)
    if not isinstance(size, int):
        size = upload.seek(0, os.SEEK_END)
    if not size:
        raise _bad(_("빈 파일입니다. 백업 ZIP 파일을 선택해주세요."))
    if size > max_backup_bytes():
        raise _bad(
            _("백업 파일이 너무 큽니다. 최대 %(mb)dMB까지 올릴 수 있습니다.")
            % {"mb": max_backup_bytes() // 2**20}
        )


def _check_directory_size(upload: BinaryIO) -> None:
    """The entry count from the end record, before zipfile builds an object per entry: a
    small file can declare millions of entries."""
    # zipfile's own end-record reader (private, but unchanged since Python 2; it also
    # follows ZIP64 records). It returns None when there is no end record: not a ZIP.
    try:
        end = zipfile._EndRecData(upload)
    except (OSError, ValueError, struct.error) as exc:
        raise _not_a_zip() from exc
    if end is None:
        raise _not_a_zip()
    count = end[zipfile._ECD_ENTRIES_TOTAL]
    if count > MAX_ENTRIES:
        raise _too_many(count)
    upload.seek(0)


def _too_many(count: int) -> InvalidInput:
    return _bad(
        _("ZIP 안의 파일이 너무 많습니다 (%(count)d개, 최대 %(max)d개).")
        % {"count": count, "max": MAX_ENTRIES}
    )


# --- the ZIP's directory ----------------------------------------------------------------------
@dataclass
class _Plan:
    metadata: zipfile.ZipInfo | None = None
    lora: zipfile.ZipInfo | None = None
    photo: zipfile.ZipInfo | None = None
    references: list[zipfile.ZipInfo] = field(default_factory=list)
    samples: list[zipfile.ZipInfo] = field(default_factory=list)


def _plan(infos: list[zipfile.ZipInfo]) -> _Plan:
    """Which entry is what, from the directory alone; refuses anything not in the layout."""
    if len(infos) > MAX_ENTRIES:
        raise _too_many(len(infos))
    for info in infos:
        _check_entry(info)
    prefix = _common_prefix([i.filename for i in infos if not _is_junk(i.filename)])
    plan = _Plan()
    seen: set[str] = set()
    references: dict[int, zipfile.ZipInfo] = {}
    samples: dict[int, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        if _is_junk(info.filename):
            continue
        name = info.filename[len(prefix) :]
        key = name.lower()
        if key in seen:
            raise _duplicate(info.filename)
        seen.add(key)
        if info.is_dir():
            if name not in ("", *_FOLDERS) or info.file_size:
                raise _not_allowed(info.filename)
            continue
        total += info.file_size
        if total > max_backup_bytes():
            raise _bad(
                _("압축을 푼 전체 크기가 너무 큽니다 (최대 %(mb)dMB).")
                % {"mb": max_backup_bytes() // 2**20}
            )
        if name == "metadata.json":
            _check_size(info, MAX_METADATA_BYTES)
            plan.metadata = info
        elif name == "lora_weights.safetensors":
            _check_size(info, settings.MAX_LORA_BYTES)
            plan.lora = info
        elif _PHOTO.match(name):
            if plan.photo is not None:
                raise _duplicate(info.filename)
            _check_size(info, max_image_bytes())
            plan.photo = info
        elif name.lower() == "reference_sheet.png":
            # Our composed grid (issue 16): drawn again from the restored images, never read.
            _check_size(info, max_image_bytes())
        elif m := _REFERENCE.match(name):
            _numbered(references, int(m.group(1)), info)
        elif m := _SAMPLE.match(name):
            _numbered(samples, int(m.group(1)), info)
        else:
            raise _not_allowed(info.filename)
    if plan.metadata is None:
        raise _bad(_("metadata.json이 없습니다. 이 앱에서 내려받은 백업 ZIP을 올려주세요."))
    if plan.lora is None:
        raise _bad(_("lora_weights.safetensors가 없습니다. LoRA 파일이 없으면 복원할 수 없습니다."))
    plan.references = [references[n] for n in sorted(references)]
    plan.samples = [samples[n] for n in sorted(samples)]
    return plan


def _numbered(found: dict[int, zipfile.ZipInfo], number: int, info: zipfile.ZipInfo) -> None:
    if number in found:  # 01.jpg and 01.png
        raise _duplicate(info.filename)
    _check_size(info, max_image_bytes())
    found[number] = info


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Path safety and entry flags; the same for every entry, junk included."""
    name = info.filename
    # zipfile cuts a name at a NUL byte; the raw name must be the name we check.
    if info.orig_filename != name or not name or any(ord(c) < 32 for c in name):
        raise _unsafe(info.orig_filename)
    if "\\" in name:
        raise _bad(_("ZIP 안의 경로에 역슬래시(\\)를 쓸 수 없습니다: %(name)s") % {"name": name})
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or _DRIVE.match(name) or any(p in ("", ".", "..") for p in parts):
        raise _unsafe(name)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _bad(_("ZIP 안에 심볼릭 링크가 있습니다: %(name)s") % {"name": name})
    if info.flag_bits & 0x1:
        raise _bad(_("암호가 걸린 파일은 복원할 수 없습니다: %(name)s") % {"name": name})
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _bad(_("지원하지 않는 압축 방식입니다: %(name)s") % {"name": name})
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _corrupt(name)
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _bad(
            _("압축률이 비정상적으로 높은 파일이 있습니다 (압축 폭탄 의심): %(name)s")
            % {"name": name}
        )


def _is_junk(name: str) -> bool:
    parts = name.rstrip("/").split("/")
    return parts[0] == _JUNK_FOLDER or parts[-1] in _JUNK_FILES


def _common_prefix(names: list[str]) -> str:
    """`parkboss_backup/` when every entry sits in that one folder (a re-zipped download)."""
    if not names or any("/" not in n for n in names):
        return ""
    first = {n.split("/", 1)[0] for n in names}
    if len(first) != 1:
        return ""
    prefix = first.pop() + "/"
    return "" if prefix in _FOLDERS else prefix


def _check_size(info: zipfile.ZipInfo, limit: int) -> None:
    if info.file_size > limit:
        raise _too_big(info.filename, limit)


def _too_big(name: str, limit: int) -> InvalidInput:
    mb = limit / 2**20
    return _bad(
        _("%(name)s 파일이 너무 큽니다 (최대 %(mb)sMB).")
        % {"name": name, "mb": f"{mb:.0f}" if mb >= 1 else f"{mb:.2f}"}
    )


def _unsafe(name: str) -> InvalidInput:
    return _bad(
        _("ZIP 안에 허용되지 않는 경로가 있습니다: %(name)s (절대 경로나 '..'는 쓸 수 없습니다)")
        % {"name": name}
    )


def _not_allowed(name: str) -> InvalidInput:
    return _bad(_("백업 형식에 없는 파일입니다: %(name)s") % {"name": name})


def _duplicate(name: str) -> InvalidInput:
    return _bad(_("같은 파일이 두 번 들어 있습니다: %(name)s") % {"name": name})


def _corrupt(name: str) -> InvalidInput:
    return _bad(_("%(name)s 파일이 손상되었습니다.") % {"name": name})


# --- reading entries --------------------------------------------------------------------------
def _copy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limit: int) -> str:
    """Copy one entry to `dest` counting bytes (the declared size is not trusted: the copy
    stops at the cap whatever the header said); returns the data's sha256."""
    digest = hashlib.sha256()
    count = 0
    try:
        with archive.open(info) as src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                count += len(chunk)
                if count > limit:
                    raise _too_big(info.filename, limit)
                if count > info.file_size:
                    raise _corrupt(info.filename)
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        # A bad CRC, a truncated or overlapping entry, a broken deflate stream.
        raise _corrupt(info.filename) from exc
    if count != info.file_size:
        raise _corrupt(info.filename)
    return digest.hexdigest()


def _read_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    buf = io.BytesIO()
    try:
        with archive.open(info) as src:
            while chunk := src.read(min(CHUNK, limit + 1)):
                buf.write(chunk)
                if buf.tell() > limit:
                    raise _too_big(info.filename, limit)
                if buf.tell() > info.file_size:
                    raise _corrupt(info.filename)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        raise _corrupt(info.filename) from exc
    return buf.getvalue()


# --- metadata.json ----------------------------------------------------------------------------
def _read_metadata(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> BackupMetadata:
    raw = _read_bytes(archive, info, MAX_METADATA_BYTES)
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(_("metadata.json을 읽을 수 없습니다 (JSON 형식 오류).")) from exc
    return parse_metadata(data)


def _field_error(name: str, rule: str) -> InvalidInput:
    return _bad(
        _("metadata.json의 %(field)s 값이 올바르지 않습니다: %(rule)s")
        % {"field": name, "rule": rule}
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _cost_field(data: dict, name: str) -> Decimal | None:
    """An optional $ amount (older backups have none): a finite number from 0 to 100,000."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(_("metadata.json의 %(name)s 값이 올바르지 않습니다.") % {"name": name})
    if not math.isfinite(value) or not 0 <= value <= 100_000:
        raise _bad(_("metadata.json의 %(name)s 값이 올바르지 않습니다.") % {"name": name})
    return Decimal(str(value)).quantize(Decimal("0.001"))


def _int_field(data: dict, name: str, default: int, low: int, high: int) -> int:
    value = data.get(name)
    if value is None:
        return default
    if not _is_int(value) or not low <= value <= high:
        raise _field_error(name, _("%(low)d~%(high)d 사이의 정수") % {"low": low, "high": high})
    return value


def _str_field(data: dict, name: str, default: str, max_length: int) -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > max_length:
        raise _field_error(name, _("%(n)d자 이하의 문자열") % {"n": max_length})
    return value


def _date_field(data: dict, name: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise _field_error(name, _("ISO 8601 날짜와 시각"))
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def parse_metadata(data: Any) -> BackupMetadata:
    """metadata.json's object checked field by field; unknown fields are ignored."""
    if not isinstance(data, dict):
        raise _bad(_("metadata.json의 형식이 올바르지 않습니다 (JSON 객체가 아닙니다)."))
    if contains_control(data):  # NUL, BEL, ESC ...: refused like in any other input
        raise _bad(_("metadata.json에 허용되지 않는 제어 문자(NUL 등)가 있습니다."))
    data = clean_data(data)  # the same cleaning as every form and API body (webtoon/text.py)
    name = data.get("character_name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        raise _field_error("character_name", _("1~60자의 문자열"))
    word = data.get("trigger_word")
    if not isinstance(word, str):
        raise _field_error("trigger_word", _("문자열"))
    try:
        word = trigger_words.validate_trigger_word(word)
    except InvalidInput as exc:
        raise _field_error("trigger_word", str(exc)) from exc
    style_id = data.get("style_id")
    if style_id not in StyleId.values:
        raise _field_error("style_id", ", ".join(StyleId.values))
    scale = data.get("lora_scale_default", settings.LORA_SCALE_DEFAULT)
    low, high = settings.LORA_SCALE_MIN, settings.LORA_SCALE_MAX
    if not _is_number(scale) or not low <= scale <= high:
        raise _field_error(
            "lora_scale_default", _("%(low)s~%(high)s 사이의 숫자") % {"low": low, "high": high}
        )
    rate = data.get("learning_rate", settings.CHARACTER_TRAINING_LEARNING_RATE)
    if not _is_number(rate) or not 0 <= rate < 1:
        raise _field_error("learning_rate", _("0 이상 1 미만의 숫자"))
    sha = data.get("lora_sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.match(sha)):
        raise _field_error("lora_sha256", _("64자리 16진수"))
    captions = data.get("reference_captions", [])
    if (
        not isinstance(captions, list)
        or len(captions) > MAX_ENTRIES
        or not all(isinstance(c, str) and len(c) <= MAX_CAPTION for c in captions)
    ):
        raise _field_error("reference_captions", _("문자열 목록"))
    return BackupMetadata(
        character_name=name.strip(),
        trigger_word=word,
        style_id=style_id,
        custom_prompt=_str_field(data, "custom_prompt", "", MAX_CUSTOM_PROMPT),
        lora_scale_default=float(scale),
        training_images_count=_int_field(data, "training_images_count", 0, 0, 10_000),
        training_steps=_int_field(
            data, "training_steps", settings.CHARACTER_TRAINING_STEPS, 0, 1_000_000
        ),
        learning_rate=float(rate),
        resolution=_int_field(
            data, "resolution", settings.CHARACTER_TRAINING_RESOLUTION, 0, 16_384
        ),
        version=_int_field(data, "version", 1, 1, MAX_VERSION),
        lora_sha256=sha,
        created_at=_date_field(data, "created_at"),
        trained_at=_date_field(data, "trained_at"),
        reference_captions=captions,
        training_started_at=_date_field(data, "training_started_at"),
        total_cost_usd=_cost_field(data, "total_cost_usd"),
    )


# --- safetensors ------------------------------------------------------------------------------
def _bad_lora(why: str) -> InvalidInput:
    return _bad(
        _("lora_weights.safetensors가 올바른 safetensors 파일이 아닙니다: %(why)s") % {"why": why}
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _v in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def check_safetensors(path: Path) -> None:
    """Our own header checks first (cheap, and with messages that say what is wrong), then
    the library's: it must open the file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _bad_lora(_("파일이 너무 짧습니다 (잘린 파일)"))
        (n,) = struct.unpack("<Q", head)
        if n > MAX_SAFETENSORS_HEADER or n + 8 > size:
            raise _bad_lora(_("헤더 길이(%(n)d바이트)가 올바르지 않습니다") % {"n": n})
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad_lora(_("헤더가 JSON이 아닙니다")) from exc
    if not isinstance(header, dict):
        raise _bad_lora(_("헤더가 JSON 객체가 아닙니다"))
    _check_tensors(header, data_size=size - 8 - n)
    try:
        with safe_open(str(path), framework="numpy") as opened:
            opened.keys()
    except Exception as exc:  # SafetensorError and whatever the Rust side raises
        logger.info("safe_open refused a restored LoRA: %r", exc)
        raise _bad_lora(_("safetensors 라이브러리가 파일을 열 수 없습니다")) from exc


def _check_tensors(header: dict, *, data_size: int) -> None:
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise _bad_lora(_("__metadata__는 문자열→문자열 목록이어야 합니다"))
    if not header:
        raise _bad_lora(_("텐서가 하나도 없습니다"))
    spans = []
    for name, spec in header.items():
        spans.append(_tensor_span(name, spec, data_size))
    # The data buffer must be covered exactly: no holes, no overlaps, nothing after the end.
    expected = 0
    for start, end in sorted(spans):
        if start != expected:
            raise _bad_lora(_("텐서 데이터 사이에 빈 곳이나 겹치는 곳이 있습니다"))
        expected = end
    if expected != data_size:
        raise _bad_lora(_("파일 길이가 헤더와 맞지 않습니다 (잘렸거나 뒤에 데이터가 더 있음)"))


def _tensor_span(name: str, spec: Any, data_size: int) -> tuple[int, int]:
    label = name[:80]
    if not isinstance(spec, dict):
        raise _bad_lora(_("텐서 %(t)s의 정보가 객체가 아닙니다") % {"t": label})
    dtype = spec.get("dtype")
    if dtype not in DTYPE_BYTES:
        raise _bad_lora(
            _("텐서 %(t)s의 dtype %(d)s는 지원하지 않습니다 (F16, BF16, F32만)")
            % {"t": label, "d": str(dtype)[:20]}
        )
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _bad_lora(_("텐서 %(t)s의 shape가 정수 목록이 아닙니다") % {"t": label})
    offsets = spec.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise _bad_lora(_("텐서 %(t)s의 data_offsets가 올바르지 않습니다") % {"t": label})
    start, end = offsets
    if not 0 <= start <= end:
        raise _bad_lora(_("텐서 %(t)s의 data_offsets가 올바르지 않습니다") % {"t": label})
    if end > data_size:
        # Either the header lies or the file was cut short; the user cannot tell which.
        raise _bad_lora(
            _("텐서 %(t)s의 데이터 위치가 파일 범위를 벗어납니다 (잘렸거나 손상된 파일)")
            % {"t": label}
        )
    if math.prod(shape) * DTYPE_BYTES[dtype] != end - start:
        raise _bad_lora(_("텐서 %(t)s의 크기가 shape와 맞지 않습니다") % {"t": label})
    return start, end


# --- images -----------------------------------------------------------------------------------
def _image_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, *, face: bool = False
) -> _Image:
    """Copy, verify, decode in full and re-encode one image entry as our own JPEG at `dest`."""
    raw = dest.with_suffix(".upload")
    _copy_entry(archive, info, raw, max_image_bytes())
    try:
        _verify(raw, info.filename)
        with open(raw, "rb") as fh:
            try:
                rgb, source_format = decode_photo(File(fh))
            except PhotoRejected as exc:
                raise _bad(f"{info.filename}: {exc}") from exc
        with rgb:
            rgb.info = {}
            rgb.save(dest, "JPEG", quality=JPEG_QUALITY)
            return _Image(
                path=dest,
                width=rgb.width,
                height=rgb.height,
                source_format=source_format,
                face_box=detect_face(rgb) if face else None,
            )
    finally:
        raw.unlink(missing_ok=True)


def _verify(path: Path, name: str) -> None:
    # verify() checks the structure without decoding; decode_photo then decodes every pixel.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=ACCEPTED_FORMATS) as im:
                im.verify()
    except Exception as exc:  # Pillow reports bad data through many exception types
        raise _bad(
            _("%(name)s: 이미지가 아니거나 손상되었습니다 (JPG, PNG, WEBP만 지원합니다).")
            % {"name": name}
        ) from exc


# --- registering --------------------------------------------------------------------------------
def _register(owner, backup: ValidBackup, on_conflict: str | None = None) -> Character:
    """Files first (our storage, then the LoRA re-uploaded for a fresh URL: network, so before
    any row is written), then every row in one transaction; on failure, the files go again."""
    stored: list[str] = []
    try:
        lora_name = _store(stored, owner, "loras", "safetensors", backup.lora_path)
        photo_name = (
            _store(stored, owner, "photos", "jpg", backup.photo.path) if backup.photo else ""
        )
        sample_names = [_store(stored, owner, "samples", "jpg", s.path) for s in backup.samples]
        lora_url = _upload_lora(backup.lora_path, lora_name)
        with transaction.atomic():
            photo = _create_photo(owner, backup.photo, photo_name) if backup.photo else None
            _free_word(owner, backup.metadata.trigger_word, on_conflict)
            character = _reserve(owner, backup.metadata, photo)
            _store_training_zip(stored, character, backup)
            version = CharacterVersion.objects.create(
                character=character,
                number=backup.metadata.version,
                lora_url=lora_url,
                lora_file=lora_name,
                lora_file_backed_up=True,
                training_data=character.training_data.name,
                training_images_count=character.training_images_count,
                training_steps=character.training_steps,
                learning_rate=character.learning_rate,
                resolution=character.resolution,
                trained_at=character.trained_at,
            )
            _create_samples(character, version, sample_names)
            character.current_version = version
            character.lora_url = lora_url
            character.lora_file = lora_name
            character.lora_file_backed_up = True
            character.status = CharacterStatus.ACTIVE
            character.save()
    except BaseException:
        for name in stored:
            with contextlib.suppress(Exception):
                default_storage.delete(name)
        raise
    return character


def _store(stored: list[str], owner, folder: str, ext: str, path: Path) -> str:
    with open(path, "rb") as fh:
        name = default_storage.save(user_file_name(owner.pk, folder, ext), File(fh))
    stored.append(name)
    return name


def _upload_lora(path: Path, storage_name: str) -> str:
    """SPEC §7: the safetensors re-uploaded to the backend (fal, or offline) for a new URL."""
    # The backend interface takes bytes: a 1 GB LoRA is read into memory once, here.
    data = path.read_bytes()
    try:
        return hosting.upload(
            settings.WEBTOON_BACKEND,
            data,
            content_type="application/octet-stream",
            file_name="lora_weights.safetensors",
            storage_name=storage_name,
        )
    except BackendError as exc:
        logger.warning("LoRA re-upload for a restore failed: %r", exc)
        raise DomainError(
            _("LoRA 파일을 다시 올리지 못했습니다. 잠시 후 다시 시도해주세요."), status_code=503
        ) from exc


def _create_photo(owner, image: _Image, name: str) -> Photo:
    return Photo.objects.create(
        owner=owner,
        image=name,
        width=image.width,
        height=image.height,
        source_format=image.source_format,
        face_detected=image.face_box is not None,
        face_box=image.face_box,
        warnings=photo_warnings((image.width, image.height), image.face_box),
        # The user agreed to the photo's use when they first uploaded it (the backup carries
        # that earlier consent); restoring their own backup renews it now.
        consent_at=timezone.now(),
    )


def _reserve(owner, metadata: BackupMetadata, photo: Photo | None) -> Character:
    """The character with its own trigger word if free, else the first free suffix
    (`sks_parkboss2`)."""
    now = timezone.now()
    return create_with_trigger_word(
        metadata.trigger_word,
        owner=owner,
        photo=photo,
        name=metadata.character_name,
        style_id=metadata.style_id,
        custom_prompt=metadata.custom_prompt,
        status=CharacterStatus.DRAFT,
        lora_scale_default=metadata.lora_scale_default,
        training_images_count=metadata.training_images_count,
        training_steps=metadata.training_steps,
        learning_rate=metadata.learning_rate,
        resolution=metadata.resolution,
        created_at=metadata.created_at or now,
        trained_at=metadata.trained_at or now,
        training_started_at=metadata.training_started_at,
        restored_cost=metadata.total_cost_usd,
    )


def _store_training_zip(stored: list[str], character: Character, backup: ValidBackup) -> None:
    """The reference sheet as a captioned training ZIP again, so a retrain can use it."""
    if not backup.references:
        return
    captions = backup.metadata.reference_captions
    if len(captions) != len(backup.references):
        captions = [style_prompt(character.style_id, character.custom_prompt)] * len(
            backup.references
        )
    items = [
        TrainingItem(
            open=lambda p=image.path: open(p, "rb"),
            caption=caption_for(character.trigger_word, caption, ""),
        )
        for image, caption in zip(backup.references, captions, strict=True)
    ]
    with tempfile.TemporaryFile(prefix="webtoon-zip-") as tmp:
        stats = write_training_zip(items, tmp)
        tmp.seek(0)
        name = default_storage.save(
            user_file_name(character.owner_id, "training", "zip"), File(tmp)
        )
    stored.append(name)
    character.training_data = name
    character.training_data_size = stats.total_bytes
    character.training_data_sha256 = stats.sha256
    character.training_images_count = stats.image_count
    character.candidate_images_count = stats.image_count


def _create_samples(character: Character, version: CharacterVersion, names: list[str]) -> None:
    for number, name in enumerate(names, start=1):
        template = SAMPLE_PROMPTS[number - 1] if number <= len(SAMPLE_PROMPTS) else "{trigger}"
        Sample.objects.create(
            character=character,
            version=version,
            number=number,
            prompt=template.format(trigger=character.trigger_word),
            image=name,
        )
