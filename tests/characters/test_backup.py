"""SPEC §5.3 backup download and restore, §7 local backup folder."""

import hashlib
import io
import json
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from characters import backup, generation, training
from characters.models import Character, CharacterVersion, Photo, Sample
from tests.characters.factories import jpeg, trained_character
from tests.characters.test_curation import astronaut_photo
from webtoon.imaging.safetensors_file import build_safetensors
from webtoon.jobs import services as jobs

pytestmark = pytest.mark.django_db

SPEC_METADATA = (
    "character_name", "trigger_word", "style_id", "style_label", "lora_url",
    "lora_scale_default", "training_images_count", "training_steps", "learning_rate",
    "resolution", "created_at", "fal_model_used", "program_version",
)  # fmt: skip
RESTORE = "/api/character/restore-from-backup"


@pytest.fixture(autouse=True)
def local_backups(settings, tmp_path):
    """The §7 folder in a temp dir (the default is the app's real data folder)."""
    settings.LOCAL_BACKUP_PATH = tmp_path / "characters"
    settings.AUTO_BACKUP_ENABLED = True
    return settings.LOCAL_BACKUP_PATH


@pytest.fixture
def character(user):
    return trained_character(user)


@pytest.fixture
def trained(user, offline, settings, django_capture_on_commit_callbacks):
    """A character trained end to end on the offline backend: real training ZIP, real LoRA
    file from the trainer, three real test images (as in test_training_pages)."""
    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 0
    settings.GENERATION_CUTS_COUNT = 4
    settings.MIN_SELECTED_CUTS = 1  # four cuts keep this fast; the 15-cut rule: test_trust.py
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        generation.start_generation(owner=user, session_id=session.public_id)
    character = training.prepare_training_data(
        owner=user, session_id=session.public_id, character_name="박사장"
    )
    with django_capture_on_commit_callbacks(execute=True):
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    character.refresh_from_db()
    for _ in range(20):
        if character.status == "active" and not character.samples.filter(image="").exists():
            break
        with django_capture_on_commit_callbacks(execute=True):
            jobs.advance_job(character.training_job_id)
            if character.samples_job_id:
                jobs.run_job(character.samples_job_id)
        character.refresh_from_db()
    assert character.status == "active" and character.lora_file_backed_up
    assert character.samples.exclude(image="").count() == 3
    return character


# --- helpers ----------------------------------------------------------------------------------
def download(client, character) -> bytes:
    response = client.get(f"/api/character/{character.public_id}/download-backup")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    return b"".join(response.streaming_content)


def restore(client, data: bytes, name: str = "backup.zip", **extra):
    upload = SimpleUploadedFile(name, data, "application/zip")
    return client.post(RESTORE, {"backup": upload, **extra})


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def stored(name: str) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(name, "rb") as fh:
        return fh.read()


def media_files(settings) -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


def metadata(**changes) -> dict:
    data = {
        "character_name": "박사장",
        "trigger_word": "sks_parkboss",
        "style_id": "original",
        "style_label": "📷 원본 스타일 그대로",
        "lora_url": "https://v3.fal.media/files/expired.safetensors",
        "lora_scale_default": 0.8,
        "training_images_count": 2,
        "training_steps": 1500,
        "learning_rate": 0.0001,
        "resolution": 1024,
        "created_at": "2026-01-02T03:04:05+00:00",
        "fal_model_used": "fal-ai/flux-lora-portrait-trainer",
        "program_version": "webtoon 0.1.0",
    }
    data.update(changes)
    return data


def lora_bytes() -> bytes:
    return build_safetensors({"lora.down.weight": [0.5] * 8, "lora.up.weight": [0.25] * 4}, {})


def entries(changes: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """A valid hand-made backup; a change of None drops that entry."""
    files = {
        "lora_weights.safetensors": lora_bytes(),
        "reference_sheet/01.jpg": jpeg((200, 100, 50), (256, 256)),
        "reference_sheet/02.jpg": jpeg((50, 100, 200), (256, 256)),
        "samples/test_01.jpg": jpeg((10, 200, 10), (128, 128)),
        "metadata.json": json.dumps(metadata(), ensure_ascii=False).encode(),
        "original_photo.jpg": jpeg((120, 120, 120), (320, 240)),
    }
    for name, data in (changes or {}).items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return files


def make_zip(files, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items() if isinstance(files, dict) else files:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
    return buf.getvalue()


def safetensors_with(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def set_central_flag(data: bytes, name: str, bit: int) -> bytes:
    """Set a general-purpose flag bit in `name`'s central directory record."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46 : at + 46 + length] == name.encode():
            flags = struct.unpack_from("<H", out, at + 8)[0]
            struct.pack_into("<H", out, at + 8, flags | bit)
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 4)
    raise AssertionError(name)


# --- download ---------------------------------------------------------------------------------
def test_backup_zip_has_exactly_the_spec_entries(alice_client, character):
    files = read_zip(download(alice_client, character))
    assert list(files) == [
        "lora_weights.safetensors",
        "reference_sheet/01.jpg",
        "reference_sheet/02.jpg",
        "reference_sheet/03.jpg",
        "reference_sheet.png",  # issue 16: the same images as one labelled grid
        "samples/test_01.jpg",
        "samples/test_02.jpg",
        "samples/test_03.jpg",
        "metadata.json",
        "original_photo.jpg",
    ]


def test_backup_zip_holds_our_stored_files_byte_for_byte(alice_client, character):
    files = read_zip(download(alice_client, character))
    assert files["lora_weights.safetensors"] == stored(character.lora_file.name)
    with zipfile.ZipFile(io.BytesIO(stored(character.training_data.name))) as training_zip:
        assert files["reference_sheet/02.jpg"] == training_zip.read("02.jpg")
    assert files["original_photo.jpg"] == stored(character.photo.image.name)
    first = character.samples.get(number=1)
    assert files["samples/test_01.jpg"] == stored(first.image.name)


def test_backup_file_name_is_the_trigger_word_without_sks(alice_client, character):
    Character.objects.filter(pk=character.pk).update(trigger_word="sks_parkboss")
    response = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="parkboss_backup.zip"' in disposition
    assert "filename*=UTF-8''parkboss_backup.zip" in disposition


def test_backup_metadata_has_the_spec_fields_version_and_sha256(alice_client, character, settings):
    meta = json.loads(read_zip(download(alice_client, character))["metadata.json"])
    assert set(SPEC_METADATA) <= set(meta)
    lora = stored(character.lora_file.name)
    assert meta["character_name"] == "박사장"
    assert meta["trigger_word"] == character.trigger_word
    assert meta["style_id"] == "original" and meta["style_label"] == "📷 원본 스타일 그대로"
    assert meta["lora_url"] == character.lora_url
    assert meta["lora_scale_default"] == 0.8
    assert meta["training_images_count"] == 3
    assert (meta["training_steps"], meta["learning_rate"], meta["resolution"]) == (
        1500, 0.0001, 1024,
    )  # fmt: skip
    assert meta["created_at"] == character.created_at.isoformat()
    assert meta["fal_model_used"] == settings.FAL_ENDPOINTS["trainer"]
    assert meta["program_version"].startswith("webtoon ")
    assert meta["version"] == 1
    assert meta["lora_sha256"] == hashlib.sha256(lora).hexdigest()
    assert meta["reference_captions"] == ["test style, pose 1", "test style, pose 2",
                                          "test style, pose 3"]  # fmt: skip


def test_backup_download_streams_in_small_chunks(alice_client, character):
    big = build_safetensors({"lora.weight": [0.5] * (3 * 2**20 // 4)}, {})
    with character.lora_file.open("wb") as fh:
        fh.write(big)
    response = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 3
    assert max(len(c) for c in chunks) <= 2 * 2**20 + 4096
    assert read_zip(b"".join(chunks))["lora_weights.safetensors"] == big


def test_another_users_backup_is_404(client, character, other_user):
    client.force_login(other_user)
    response = client.get(f"/api/character/{character.public_id}/download-backup")
    assert response.status_code == 404


def test_backup_needs_login(client, character):
    response = client.get(f"/api/character/{character.public_id}/download-backup")
    assert response.status_code == 401


def test_backup_without_a_stored_lora_is_409(alice_client, character):
    Character.objects.filter(pk=character.pk).update(lora_file_backed_up=False)
    CharacterVersion.objects.filter(character=character).update(lora_file_backed_up=False)
    response = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    assert response.status_code == 409
    assert "LoRA 파일" in response.json()["detail"]


# --- round trip -------------------------------------------------------------------------------
def test_backup_then_restore_gives_back_the_same_character(alice_client, trained, user):
    original = download(alice_client, trained)
    # The original still holds its trigger word: the user is asked (issue 15) and keeps both,
    # so the copy gets the next free one.
    assert restore(alice_client, original).status_code == 409
    response = restore(alice_client, original, on_conflict="keep_both")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["trigger_word"] == trained.trigger_word + "2"
    assert body["name"] == "박사장" and body["status"] == "active" and body["version"] == 1
    restored = Character.objects.get(public_id=body["character_id"])
    assert restored.owner == user and restored.status == "active"
    assert restored.lora_file_backed_up and restored.current_version.number == 1
    assert restored.lora_url and restored.lora_url != trained.lora_url
    assert stored(restored.lora_file.name) == stored(trained.lora_file.name)
    assert restored.photo is not None and restored.photo.consent_at is not None
    assert restored.samples.exclude(image="").count() == 3
    assert restored.training_images_count == trained.training_images_count

    again = read_zip(download(alice_client, restored))
    first = read_zip(original)
    assert list(again) == list(first)
    assert again["lora_weights.safetensors"] == first["lora_weights.safetensors"]
    before, after = json.loads(first["metadata.json"]), json.loads(again["metadata.json"])
    assert after.pop("trigger_word") == before.pop("trigger_word") + "2"
    assert after.pop("lora_url") != before.pop("lora_url")  # a fresh upload
    assert after == before


def test_restored_training_zip_is_captioned_with_the_new_trigger_word(alice_client, trained):
    body = restore(alice_client, download(alice_client, trained), on_conflict="keep_both").json()
    restored = Character.objects.get(public_id=body["character_id"])
    with zipfile.ZipFile(io.BytesIO(stored(restored.training_data.name))) as zf:
        names = zf.namelist()
        caption = zf.read("01.txt").decode()
    count = trained.training_images_count
    assert [n for n in names if n.endswith(".jpg")] == [f"{i:02d}.jpg" for i in range(1, count + 1)]
    with zipfile.ZipFile(io.BytesIO(stored(trained.training_data.name))) as zf:
        old_caption = zf.read("01.txt").decode()
    assert caption == old_caption.replace(trained.trigger_word, restored.trigger_word, 1)


def test_hand_made_zip_in_a_folder_restores_and_keeps_a_free_trigger_word(alice_client):
    files = {f"parkboss_backup/{name}": data for name, data in entries().items()}
    response = restore(alice_client, make_zip(files, zipfile.ZIP_DEFLATED))
    assert response.status_code == 201, response.content
    character = Character.objects.get()
    assert character.trigger_word == "sks_parkboss"
    assert character.training_images_count == 2 and character.samples.count() == 1
    assert character.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert stored(character.lora_file.name) == lora_bytes()


def test_restore_needs_login(client):
    response = restore(client, make_zip(entries()))
    assert response.status_code == 401
    assert not Character.objects.exists()


# --- malicious and broken uploads -------------------------------------------------------------
def _bomb() -> bytes:
    return make_zip(entries({"lora_weights.safetensors": bytes(8 * 2**20)}), zipfile.ZIP_DEFLATED)


def _symlink() -> bytes:
    link = zipfile.ZipInfo("reference_sheet/03.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return make_zip([*entries().items(), (link, b"/etc/passwd")])


def _many() -> bytes:
    files = list(entries().items()) + [(f"samples/x{i}", b"") for i in range(10_000)]
    return make_zip(files)


def _lora(data: bytes) -> bytes:
    return make_zip(entries({"lora_weights.safetensors": data}))


def _meta(**changes) -> bytes:
    return make_zip(entries({"metadata.json": json.dumps(metadata(**changes)).encode()}))


F32_8 = {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}
MALICIOUS = {
    "zip_slip": (lambda: make_zip(entries({"../../x": b"x"})), "../../x"),
    "absolute_path": (lambda: make_zip(entries({"/etc/x": b"x"})), "/etc/x"),
    "backslash": (lambda: make_zip(entries({"..\\..\\x": b"x"})), "역슬래시"),
    "zip_bomb": (_bomb, "압축 폭탄"),
    "ten_thousand_entries": (_many, "너무 많습니다"),
    "symlink": (_symlink, "심볼릭 링크"),
    "encrypted": (
        lambda: set_central_flag(make_zip(entries()), "samples/test_01.jpg", 0x1),
        "암호",
    ),
    "unknown_file": (lambda: make_zip(entries({"run.sh": b"rm -rf /"})), "run.sh"),
    "duplicate_number": (
        lambda: make_zip(entries({"reference_sheet/01.png": jpeg()})),
        "reference_sheet/01.png",
    ),
    "missing_metadata": (lambda: make_zip(entries({"metadata.json": None})), "metadata.json이 없"),
    "missing_lora": (
        lambda: make_zip(entries({"lora_weights.safetensors": None})),
        "lora_weights.safetensors가 없",
    ),
    "garbled_metadata": (
        lambda: make_zip(entries({"metadata.json": b"{not json"})),
        "JSON 형식 오류",
    ),
    "metadata_not_an_object": (
        lambda: make_zip(entries({"metadata.json": b"[1, 2]"})),
        "JSON 객체",
    ),
    "scale_as_string": (lambda: _meta(lora_scale_default="0.8"), "lora_scale_default"),
    "scale_out_of_range": (lambda: _meta(lora_scale_default=3), "lora_scale_default"),
    "name_not_a_string": (lambda: _meta(character_name=123), "character_name"),
    "bad_trigger_word": (lambda: _meta(trigger_word="Bad Word!"), "trigger_word"),
    "unknown_style": (lambda: _meta(style_id="anime"), "style_id"),
    "negative_steps": (lambda: _meta(training_steps=-1), "training_steps"),
    "bool_count": (lambda: _meta(training_images_count=True), "training_images_count"),
    "sha256_mismatch": (lambda: _meta(lora_sha256="0" * 64), "sha256"),
    "truncated_safetensors": (lambda: _lora(lora_bytes()[:-5]), "잘렸거나"),
    "tiny_safetensors": (lambda: _lora(b"\x01\x02"), "잘린 파일"),
    "lying_header_length": (
        lambda: _lora(struct.pack("<Q", 5000) + lora_bytes()[8:]),
        "헤더 길이",
    ),
    "huge_header_length": (lambda: _lora(struct.pack("<Q", 2**40) + b"{}"), "헤더 길이"),
    "offsets_outside_the_file": (
        lambda: _lora(
            safetensors_with(
                {"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 10**6]}}, bytes(32)
            )
        ),
        "범위를 벗어납니다",
    ),
    "overlapping_tensors": (
        lambda: _lora(safetensors_with({"a": F32_8, "b": F32_8}, bytes(32))),
        "겹치는",
    ),
    "shape_mismatch": (
        lambda: _lora(
            safetensors_with(
                {"w": {"dtype": "F32", "shape": [9], "data_offsets": [0, 32]}}, bytes(32)
            )
        ),
        "shape",
    ),
    "bad_dtype": (
        lambda: _lora(
            safetensors_with(
                {"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}, bytes(32)
            )
        ),
        "dtype F64",
    ),
    "bad_tensor_metadata": (
        lambda: _lora(safetensors_with({"__metadata__": {"a": 1}, "w": F32_8}, bytes(32))),
        "__metadata__",
    ),
    "header_not_json": (lambda: _lora(struct.pack("<Q", 4) + b"{{{{" + bytes(8)), "JSON"),
    "non_image_reference": (
        lambda: make_zip(entries({"reference_sheet/01.jpg": b"<html><script>x</script></html>"})),
        "reference_sheet/01.jpg",
    ),
    "gif_sample": (
        lambda: make_zip(entries({"samples/test_01.jpg": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"})),
        "samples/test_01.jpg",
    ),
    "not_a_zip": (lambda: b"this is not a zip file at all", "ZIP 형식"),
    "empty_file": (lambda: b"", "빈 파일"),
}


@pytest.mark.parametrize("case", list(MALICIOUS), ids=list(MALICIOUS))
def test_malicious_or_broken_backup_is_422_and_creates_nothing(alice_client, user, settings, case):
    build, expected = MALICIOUS[case]
    data = build()
    before = media_files(settings)
    offline_before = {p for p in Path(settings.WEBTOON_OFFLINE_DIR).rglob("*") if p.is_file()}
    response = restore(alice_client, data)
    assert response.status_code == 422, response.content
    assert expected in response.json()["detail"]
    assert not Character.objects.exists()
    assert not CharacterVersion.objects.exists()
    assert not Photo.objects.exists()
    assert not Sample.objects.exists()
    assert media_files(settings) == before
    assert {p for p in Path(settings.WEBTOON_OFFLINE_DIR).rglob("*") if p.is_file()} == (
        offline_before
    )


def test_backup_over_the_size_cap_is_refused_before_reading(alice_client, monkeypatch):
    monkeypatch.setattr("characters.restore.max_backup_bytes", lambda: 1000)
    response = restore(alice_client, make_zip(entries()))
    assert response.status_code == 422
    assert "너무 큽니다" in response.json()["detail"]
    assert not Character.objects.exists()


def test_missing_upload_field_is_422(alice_client):
    response = alice_client.post(RESTORE, {})
    assert response.status_code == 422
    assert "backup" in response.json()["detail"]


def test_a_failing_database_step_leaves_no_files(alice_client, settings, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("characters.restore.CharacterVersion.objects.create", fail)
    before = media_files(settings)
    response = restore(alice_client, make_zip(entries()))
    assert response.status_code == 500
    assert not Character.objects.exists() and not Photo.objects.exists()
    assert media_files(settings) == before


# --- §7 local folder --------------------------------------------------------------------------
def test_sync_writes_the_local_layout_and_the_index(character, local_backups):
    folder = Path(backup.sync_local_backup(character))
    slug = character.trigger_word.removeprefix("sks_")
    assert folder == local_backups / slug
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [
        "lora_weights.safetensors",
        "metadata.json",
        "original_photo.jpg",
        "reference_images/01.jpg",
        "reference_images/02.jpg",
        "reference_images/03.jpg",
        "reference_sheet.png",
        "samples/test_01.jpg",
        "samples/test_02.jpg",
        "samples/test_03.jpg",
    ]
    assert (folder / "lora_weights.safetensors").read_bytes() == stored(character.lora_file.name)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["trigger_word"] == character.trigger_word
    index = json.loads((local_backups / "characters_index.json").read_text())
    [entry] = index["characters"]
    assert entry["slug"] == slug and entry["trigger_word"] == character.trigger_word
    assert entry["name"] == "박사장" and entry["owner_id"] == character.owner_id
    assert entry["version"] == 1 and entry["updated"]
    assert not list(local_backups.rglob("*.tmp"))


def test_index_lists_every_users_characters_and_remove_updates_it(
    character, other_user, local_backups
):
    other = trained_character(other_user, name="김세무사")
    backup.sync_local_backup(character)
    backup.sync_local_backup(other)
    index = json.loads((local_backups / "characters_index.json").read_text())
    assert {c["name"] for c in index["characters"]} == {"박사장", "김세무사"}
    backup.remove_local_backup(character)
    assert not (local_backups / character.trigger_word.removeprefix("sks_")).exists()
    index = json.loads((local_backups / "characters_index.json").read_text())
    assert [c["name"] for c in index["characters"]] == ["김세무사"]


def test_sync_again_drops_files_the_new_version_no_longer_has(character, local_backups):
    folder = Path(backup.sync_local_backup(character))
    character.samples.filter(number=3).delete()
    backup.sync_local_backup(character)
    assert not (folder / "samples" / "test_03.jpg").exists()
    assert (folder / "samples" / "test_02.jpg").exists()


def test_sync_is_skipped_when_auto_backup_is_off(character, settings, local_backups):
    settings.AUTO_BACKUP_ENABLED = False
    assert backup.sync_local_backup(character) == ""
    assert not local_backups.exists()


def test_finder_made_zip_with_macos_extras_restores(alice_client):
    files = {f"parkboss_backup/{name}": data for name, data in entries().items()}
    files["parkboss_backup/.DS_Store"] = b"\0\0\0\1Bud1"
    files["__MACOSX/parkboss_backup/._metadata.json"] = b"\0\5\26\7"
    response = restore(alice_client, make_zip(files, zipfile.ZIP_DEFLATED))
    assert response.status_code == 201, response.content
    assert Character.objects.get().trigger_word == "sks_parkboss"


def test_restored_character_shows_on_its_page_and_in_my_characters(alice_client):
    body = restore(alice_client, make_zip(entries())).json()
    character = Character.objects.get(public_id=body["character_id"])
    page = alice_client.get(character.get_absolute_url())
    assert page.status_code == 200
    assert "sks_parkboss" in page.content.decode()
    assert "박사장" in alice_client.get("/characters/").content.decode()
