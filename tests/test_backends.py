"""The same contract for both image backends: fal (through the HTTP fake and the real
fal-client code) and offline (directly)."""

import io
import json
import struct

import pytest
from PIL import Image

from webtoon.imaging import DownloadRefused, RemoteFileGone, RemoteRejected, get_backend

from .conftest import jpeg_bytes

pytestmark = pytest.mark.django_db

TRAINER = "fal-ai/flux-lora-portrait-trainer"
LORA = "fal-ai/flux-lora"
KONTEXT = "fal-ai/flux-pro/kontext"


@pytest.fixture(params=["fal", "offline"])
def backend(request, settings, tmp_path):
    if request.param == "fal":
        fake = request.getfixturevalue("fal")
        b = get_backend("fal")
        b.fake = fake
    else:
        request.getfixturevalue("offline")
        settings.WEBTOON_OFFLINE_DIR = tmp_path / "offline"
        b = get_backend("offline")
    return b


def wait_completed(backend, endpoint, rid, limit=200):
    import time

    seen = []
    for _ in range(limit):
        st = backend.status(endpoint, rid)
        seen.append(st.state)
        if st.state == "completed":
            return st, seen
        time.sleep(0.01)
    raise AssertionError(f"never completed: {seen[-5:]}")


def download(backend, url, cap=10_000_000) -> bytes:
    buf = io.BytesIO()
    n = backend.download(url, buf, max_bytes=cap)
    assert n == len(buf.getvalue())
    return buf.getvalue()


def test_image_request_goes_queued_running_completed_and_yields_a_real_jpeg(backend):
    photo_url = backend.upload(jpeg_bytes((800, 600)), "image/jpeg", "photo.jpg")
    args = {
        "prompt": "same person, big laugh, clean background",
        "image_url": photo_url,
        "aspect_ratio": "1:1",
    }
    rid = backend.submit(KONTEXT, args)
    status, seen = wait_completed(backend, KONTEXT, rid)
    assert status.error is None
    assert seen[-1] == "completed"
    out = backend.result(KONTEXT, rid)
    image = out["images"][0]
    data = download(backend, image["url"])
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert im.size == (1024, 1024)


def test_upload_then_download_returns_the_same_bytes(backend):
    payload = b"PK\x03\x04 some zip bytes" * 100
    url = backend.upload(payload, "application/zip", "training.zip")
    assert download(backend, url) == payload


def test_training_reports_steps_and_yields_a_valid_safetensors(backend, settings):
    zip_buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("01.jpg", jpeg_bytes())
        zf.writestr("01.txt", "sks_test, smiling")
    zip_url = backend.upload(zip_buf.getvalue(), "application/zip", "data.zip")
    rid = backend.submit(
        TRAINER,
        {
            "images_data_url": zip_url,
            "trigger_phrase": "sks_test",
            "steps": 1500,
            "learning_rate": 1e-4,
        },
    )
    status, _ = wait_completed(backend, TRAINER, rid, limit=500)
    messages = " ".join(str(e.get("message")) for e in status.logs)
    assert "/1500" in messages
    out = backend.result(TRAINER, rid)
    weights = download(backend, out["diffusers_lora_file"]["url"])
    (n,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + n])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert tensors, "a LoRA file with no tensors"
    end = max(v["data_offsets"][1] for v in tensors.values())
    assert 8 + n + end == len(weights)


def test_prompt_only_image_has_requested_size(backend):
    rid = backend.submit(LORA, {"prompt": "an office", "image_size": "portrait_4_3"})
    wait_completed(backend, LORA, rid)
    url = backend.result(LORA, rid)["images"][0]["url"]
    with Image.open(io.BytesIO(download(backend, url))) as im:
        assert im.size == (768, 1024)


def test_cancel_ends_the_request_with_an_error(backend):
    rid = backend.submit(LORA, {"prompt": "x"})
    backend.cancel(LORA, rid)
    status, _ = wait_completed(backend, LORA, rid)
    assert status.error


def test_unknown_request_id_is_rejected(backend):
    with pytest.raises(RemoteRejected):
        backend.status(LORA, "doesnotexist")


def test_download_refuses_a_file_over_the_cap(backend):
    url = backend.upload(b"x" * 5000, "application/octet-stream", "big.bin")
    with pytest.raises(DownloadRefused):
        download(backend, url, cap=1000)


def test_download_refuses_foreign_urls(backend):
    with pytest.raises(DownloadRefused):
        download(backend, "https://evil.example.com/files/x.jpg")
    with pytest.raises(DownloadRefused):
        download(backend, "http://v3.fal.media/files/x.jpg")


def test_fal_file_that_expired_is_reported_gone(fal):
    backend = get_backend("fal")
    with pytest.raises(RemoteFileGone):
        download(backend, "https://v3.fal.media/files/expired.safetensors")


def test_fal_sends_the_key_and_exact_arguments(fal):
    backend = get_backend("fal")
    args = {
        "prompt": "sks_kim, smiling",
        "loras": [{"path": "https://v3.fal.media/files/l", "scale": 0.8}],
        "image_size": "square",
    }
    backend.submit(LORA, args)
    (req,) = fal.submitted(LORA)
    assert req.arguments == args
    assert req.headers["authorization"] == "Key test-fal-key"
