"""SPEC §5.3 "download (local backup)" and §7 "local backup system".

The backup ZIP holds everything needed to use the character again once fal's URL has expired:

    parkboss_backup.zip
    ├── lora_weights.safetensors
    ├── reference_sheet/01.jpg, 02.jpg, …   (the current version's training images)
    ├── reference_sheet.png                 (the same images as one labelled grid)
    ├── samples/test_01.jpg … test_03.jpg
    ├── metadata.json
    └── original_photo.jpg

It is built from our own storage only (never from fal, whose files expire) and streamed: zipfile
writes stored entries into a small write-through sink that hands out chunks, and every source
file is read 1 MiB at a time, so memory stays flat however large the LoRA is.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict

from . import reference_sheet
from .enums import CharacterStatus
from .models import Character, Sample
from .trigger_words import PREFIX

logger = logging.getLogger(__name__)

Opener = Callable[[], BinaryIO]

CHUNK = 1 << 20
LORA_NAME = "lora_weights.safetensors"
METADATA_NAME = "metadata.json"
REFERENCE_DIR = "reference_sheet"
SHEET_NAME = "reference_sheet.png"  # issue 16: the composed grid, beside the folder
SAMPLES_DIR = "samples"
PHOTO_STEM = "original_photo"
# §7.1 names the reference folder differently on disk than in the ZIP (§5.3).
LOCAL_REFERENCE_DIR = "reference_images"
INDEX_NAME = "characters_index.json"
# Same fixed timestamp as the training ZIP: a backup of unchanged data is byte-identical.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
_TRAINING_IMAGE = re.compile(r"^(\d{1,4})\.(jpe?g|png|webp)$", re.IGNORECASE)
_IMAGE_EXTS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "webp": "webp"}


# --- what goes in -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Current:
    """The character's current version, or the character itself for one made before versions
    existed (its lora_*/training_* fields mirror the current version either way)."""

    number: int
    lora_file: str
    lora_backed_up: bool
    lora_url: str
    training_data: str
    training_images_count: int
    training_steps: int
    learning_rate: float
    resolution: int
    trained_at: object


def _current(character: Character) -> _Current:
    source = character.current_version or character
    number = character.current_version.number if character.current_version else 1
    return _Current(
        number=number,
        lora_file=source.lora_file.name or "",
        lora_backed_up=bool(source.lora_file_backed_up),
        lora_url=source.lora_url,
        training_data=source.training_data.name or "",
        training_images_count=source.training_images_count,
        training_steps=source.training_steps,
        learning_rate=source.learning_rate,
        resolution=source.resolution,
        trained_at=getattr(source, "trained_at", None) or character.trained_at,
    )


def backup_slug(character: Character) -> str:
    """`sks_parkboss` → `parkboss` (unique, since trigger words are unique system-wide)."""
    return character.trigger_word.removeprefix(PREFIX) or character.trigger_word


def backup_file_name(character: Character) -> str:
    return f"{backup_slug(character)}_backup.zip"


def backup_entries(character: Character) -> list[tuple[str, Opener]]:
    """The backup's (archive name, opener) pairs, in SPEC order. Each opener returns a fresh
    binary file the caller closes. Raises Conflict when we hold no LoRA file to back up."""
    current = _current(character)
    lora = _LoraSource(current.lora_file)
    if not current.lora_backed_up or not current.lora_file or not lora.exists():
        raise Conflict(
            _(
                "이 캐릭터의 LoRA 파일이 서버에 보관되어 있지 않아 백업할 수 없습니다. "
                "재학습한 뒤 다시 시도해주세요."
            )
        )
    references = _reference_sheet(current.training_data, character.trigger_word)
    entries: list[tuple[str, Opener]] = [(LORA_NAME, lora.open)]
    training_zip = _TrainingZip(current.training_data, len(references))
    for number, (member, _caption_text) in enumerate(references, start=1):
        entries.append(
            (
                f"{REFERENCE_DIR}/{number:02d}.{_ext(member)}",
                lambda m=member: training_zip.open(m),
            )
        )
    if references:
        entries.append((SHEET_NAME, lambda: _sheet(character)))
    for number, sample in enumerate(_samples(character), start=1):
        name = sample.image.name
        entries.append(
            (f"{SAMPLES_DIR}/test_{number:02d}.{_ext(name)}", lambda n=name: _open_stored(n))
        )
    captions = [caption for _member, caption in references]
    # Lazy: by the time the streamer reaches metadata.json the LoRA has gone by and its sha256
    # was taken on the way, so a 1 GB file is read once, not twice.
    count = len(references)
    entries.append(
        (
            METADATA_NAME,
            lambda: io.BytesIO(_metadata_bytes(character, current, lora, count, captions)),
        )
    )
    photo = character.photo
    if photo is not None and photo.image and default_storage.exists(photo.image.name):
        name = photo.image.name
        entries.append((f"{PHOTO_STEM}.{_ext(name)}", lambda n=name: _open_stored(n)))
    return entries


def _ext(name: str) -> str:
    return _IMAGE_EXTS.get(name.rsplit(".", 1)[-1].lower(), "jpg")


def _sheet(character: Character) -> BinaryIO:
    """The stored sheet, or one drawn now for a character that has none yet."""
    name = character.reference_sheet.name
    if name and default_storage.exists(name):
        return _open_stored(name)
    return io.BytesIO(reference_sheet.render_for(character) or b"")


def _open_stored(name: str) -> BinaryIO:
    return default_storage.open(name, "rb")


def _samples(character: Character) -> list[Sample]:
    return list(
        Sample.objects.filter(character=character, version=character.current_version)
        .exclude(image="")
        .order_by("number")
    )


def _reference_sheet(training_data: str, trigger_word: str) -> list[tuple[str, str]]:
    """(member, caption) for each image of the training ZIP (01.jpg, 02.jpg, …) in numbered
    order. The caption loses its leading trigger word ("style, pose" is left), so a restore
    can rebuild the same captions around whatever trigger word it ends up with.

    A missing or unreadable training ZIP gives none: the LoRA is what the backup is for, and
    a download without a reference sheet is better than no download."""
    if not training_data or not default_storage.exists(training_data):
        return []
    try:
        with default_storage.open(training_data, "rb") as fh, zipfile.ZipFile(fh) as archive:
            names = set(archive.namelist())
            found = sorted(
                (int(m.group(1)), info.filename)
                for info in archive.infolist()
                if (m := _TRAINING_IMAGE.match(info.filename)) and not info.is_dir()
            )
            return [(member, _caption(archive, member, names, trigger_word)) for _, member in found]
    except (OSError, zipfile.BadZipFile) as exc:
        logger.warning("training data %s unreadable for backup: %r", training_data, exc)
        return []


def _caption(archive: zipfile.ZipFile, member: str, names: set[str], trigger_word: str) -> str:
    txt = member.rsplit(".", 1)[0] + ".txt"
    if txt not in names:
        return ""
    with archive.open(txt) as f:
        text = f.read(4096).decode("utf-8", "replace").strip()
    head, sep, rest = text.partition(",")
    return rest.strip() if sep and head.strip() == trigger_word else text


class _TrainingZip:
    """The stored training ZIP, opened once for all of its reference images (on S3 each open
    would fetch the whole archive again) and closed when the last one is closed."""

    def __init__(self, storage_name: str, count: int) -> None:
        self._name = storage_name
        self._open_left = count
        self._stack: contextlib.ExitStack | None = None
        self._archive: zipfile.ZipFile | None = None

    def open(self, member: str) -> BinaryIO:
        if self._archive is None:
            self._stack = contextlib.ExitStack()
            try:
                source = self._stack.enter_context(default_storage.open(self._name, "rb"))
                self._archive = self._stack.enter_context(zipfile.ZipFile(source))
            except BaseException:
                self._close()
                raise
        size = self._archive.getinfo(member).file_size
        return _Member(self._archive.open(member), size, self._closed_one)

    def _closed_one(self) -> None:
        self._open_left -= 1
        if self._open_left <= 0:
            self._close()

    def _close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._archive = None, None


class _Member(io.RawIOBase):
    """One ZIP member as a readable file that knows its size and reports its closing."""

    def __init__(self, source: BinaryIO, size: int, on_close: Callable[[], None]) -> None:
        super().__init__()
        self._source = source
        self.size = size
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
            self._on_close()
        super().close()


class _LoraSource:
    """The stored LoRA, hashed as it is read: the sha256 for metadata.json comes free with
    the streaming pass; only a reader that asks before the file has been read pays a pass."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._digest: str | None = None

    def exists(self) -> bool:
        return bool(self.name) and default_storage.exists(self.name)

    def open(self) -> BinaryIO:
        return _HashingReader(_open_stored(self.name), self._done)

    def _done(self, digest: str) -> None:
        self._digest = digest

    def sha256(self) -> str:
        if self._digest is None:
            with self.open() as fh:
                while fh.read(CHUNK):
                    pass
        assert self._digest is not None
        return self._digest


class _HashingReader(io.RawIOBase):
    def __init__(self, source: BinaryIO, on_eof: Callable[[str], None]) -> None:
        super().__init__()
        self._source = source
        self.size = getattr(source, "size", None)  # the ZIP entry's size, known up front
        self._hash = hashlib.sha256()
        self._on_eof = on_eof

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        if data:
            self._hash.update(data)
            buffer[: len(data)] = data
        else:
            self._on_eof(self._hash.hexdigest())
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


# --- metadata.json ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def program_version() -> str:
    try:
        version = importlib_metadata.version("webtoon")
    except importlib_metadata.PackageNotFoundError:
        try:
            with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as fh:
                version = tomllib.load(fh)["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            version = "unknown"
    return f"webtoon {version}"


def backup_metadata(
    character: Character,
    current: _Current,
    lora_sha256: str,
    reference_count: int,
    captions: list[str],
) -> dict:
    """SPEC §5.3's metadata fields, plus what a restore needs to come back the same:
    the version number, the LoRA's sha256 (checked on restore), the custom style prompt,
    the training date and the reference captions."""
    return {
        "character_name": character.name,
        "trigger_word": character.trigger_word,
        "style_id": character.style_id,
        "style_label": str(character.style_label),
        "lora_url": current.lora_url,
        "lora_scale_default": character.lora_scale_default,
        "training_images_count": reference_count or current.training_images_count,
        "training_steps": current.training_steps,
        "learning_rate": current.learning_rate,
        "resolution": current.resolution,
        "created_at": character.created_at.isoformat(),
        "fal_model_used": settings.FAL_ENDPOINTS["trainer"],
        "program_version": program_version(),
        "version": current.number,
        "lora_sha256": lora_sha256,
        "custom_prompt": character.custom_prompt,
        "trained_at": current.trained_at.isoformat() if current.trained_at else None,
        # How long the training took (the restore shows it again, issue 15).
        "training_started_at": character.training_started_at.isoformat()
        if character.training_started_at
        else None,
        # What making it cost in $ (cuts, training, test images), restored with it (issue 15).
        "total_cost_usd": float(_spent_on(character)),
        "reference_captions": captions,
    }


def _spent_on(character: Character):
    from .presenters import spent_on  # lazy: presenters imports training, which imports us

    return spent_on(character)


def _metadata_bytes(
    character: Character, current: _Current, lora: _LoraSource, count: int, captions: list[str]
) -> bytes:
    data = backup_metadata(character, current, lora.sha256(), count, captions)
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


# --- the download -----------------------------------------------------------------------------
class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable stream that collects what zipfile writes until taken.

    zipfile notices it cannot seek and switches to streaming mode (sizes and CRC after each
    entry's data, in a data descriptor), so nothing has to be written twice."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def take(self, at_least: int = 0) -> Iterator[bytes]:
        """Yield what is buffered, as one chunk, once there is at least `at_least` of it."""
        if self._size and self._size >= at_least:
            parts, self._parts, self._size = self._parts, [], 0
            yield parts[0] if len(parts) == 1 else b"".join(parts)


def stream_backup(character: Character) -> Iterator[bytes]:
    """The backup ZIP as chunks of about 1 MiB. Raises Conflict before the first byte (so the
    API can still answer 409) when there is no stored LoRA."""
    return _stream(backup_entries(character))


def _stream(entries: list[tuple[str, Opener]]) -> Iterator[bytes]:
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
        for name, opener in entries:
            with opener() as source:
                info = _entry(name, _size_of(source))
                with archive.open(info, "w") as dest:
                    while chunk := source.read(CHUNK):
                        dest.write(chunk)
                        yield from sink.take(at_least=CHUNK)
    yield from sink.take()


def _size_of(source: BinaryIO) -> int:
    """The entry's size if the source knows it cheaply (0 otherwise). zipfile uses it only
    to decide whether the entry needs ZIP64 fields, so 0 is safe below 2 GiB."""
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(source.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return 0


def _entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _FILE_MODE
    info.file_size = size
    return info


# --- §7: the local app-data folder -----------------------------------------------------------
def local_backup_root() -> Path:
    return Path(settings.LOCAL_BACKUP_PATH)


def local_backup_folder(character: Character) -> Path:
    root = local_backup_root().resolve()
    folder = (root / backup_slug(character)).resolve()
    # Trigger words are [a-z0-9_] only; this guards the rule, not a known hole.
    if folder.parent != root:
        raise ValueError(f"backup folder {folder} escapes {root}")
    return folder


def _local_name(arcname: str) -> str:
    if arcname.startswith(REFERENCE_DIR + "/"):
        return LOCAL_REFERENCE_DIR + arcname[len(REFERENCE_DIR) :]
    return arcname


def sync_local_backup(character: Character) -> str:
    """Write the character's §7.1 folder (LoRA, reference images, samples, photo, metadata)
    and refresh characters_index.json; returns the folder ("" when AUTO_BACKUP_ENABLED is off).

    Every file is written to a temp file and renamed into place, so a crash leaves the old file
    or the new one, never half of one. Files of an earlier version that are no longer part of
    the backup (a retrain with fewer images) are removed."""
    if not settings.AUTO_BACKUP_ENABLED:
        return ""
    entries = backup_entries(character)
    folder = local_backup_folder(character)
    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for arcname, opener in entries:
        target = folder / _local_name(arcname)
        target.parent.mkdir(parents=True, exist_ok=True)
        with opener() as source:
            _atomic_write(target, source)
        written.add(target)
    _prune(folder, written)
    _write_index()
    return str(folder)


def sync_local_copy(character: Character) -> None:
    """SPEC §7: the app-data folder copy, when auto-backup is on. A failure here is a warning
    for the user (and the log), never a failed training."""
    try:
        path = sync_local_backup(character)
    except Exception:  # disk full, permissions: the server copy is still there
        logger.exception("local backup of character %s failed", character.pk)
        return
    if path != character.local_backup_path:
        Character.objects.filter(pk=character.pk).update(local_backup_path=path)
        character.local_backup_path = path


def remove_local_backup(character: Character) -> None:
    """Remove the character's folder and drop it from characters_index.json."""
    if not settings.AUTO_BACKUP_ENABLED:
        return
    folder = local_backup_folder(character)
    if folder.exists():
        shutil.rmtree(folder)
    _write_index(exclude_pk=character.pk)


def _atomic_write(target: Path, source: BinaryIO) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _prune(folder: Path, keep: set[Path]) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


@contextlib.contextmanager
def _index_lock(root: Path) -> Iterator[None]:
    # Two workers finishing trainings at once must not each write an index missing the other.
    with open(root / ".index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_index(exclude_pk: int | None = None) -> None:
    """characters_index.json: every active character (all users) that has a folder here."""
    root = local_backup_root()
    root.mkdir(parents=True, exist_ok=True)
    with _index_lock(root):
        listed = []
        active = Character.objects.filter(status=CharacterStatus.ACTIVE).exclude(pk=exclude_pk)
        for character in active.select_related("current_version").order_by("trigger_word"):
            folder = local_backup_folder(character)
            meta = folder / METADATA_NAME
            if not meta.is_file():
                continue
            updated = datetime.fromtimestamp(meta.stat().st_mtime, tz=UTC)
            listed.append(
                {
                    "slug": backup_slug(character),
                    "name": character.name,
                    "trigger_word": character.trigger_word,
                    "owner_id": character.owner_id,
                    "version": _current(character).number,
                    "updated": updated.isoformat(),
                    "path": folder.name,
                }
            )
        body = json.dumps(
            {"updated": timezone.now().isoformat(), "characters": listed},
            ensure_ascii=False,
            indent=2,
        ).encode("utf-8")
        _atomic_write(root / INDEX_NAME, io.BytesIO(body))
