"""The offline backend: no network, no fal key. NOT real generation.

Requests live as JSON files under WEBTOON_OFFLINE_DIR so that the web process, the worker
and a restarted worker all see the same state. A generated "image" is a real JPEG derived
from the source photo (crop, flip, tint, the prompt drawn on it); a simulated training
reports fal-shaped logs ("step N/T") for WEBTOON_OFFLINE_TRAINING_SECONDS and produces a
valid small .safetensors file.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from .base import DownloadRefused, ImageBackend, RemoteFileGone, RemoteRejected, RemoteStatus
from .safetensors_file import build_safetensors, read_safetensors_metadata
from .sizes import requested_size
from .variants import vary_photo

SCHEME = "offline://files/"
TRAINER_MARKERS = ("trainer", "training")


def _is_trainer(endpoint: str) -> bool:
    return any(m in endpoint for m in TRAINER_MARKERS)


class OfflineBackend(ImageBackend):
    name = "offline"
    is_real = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.requests = self.root / "requests"
        self.files = self.root / "files"
        self.requests.mkdir(parents=True, exist_ok=True)
        self.files.mkdir(parents=True, exist_ok=True)

    # --- request bookkeeping ---------------------------------------------------------------
    def _path(self, request_id: str) -> Path:
        if not request_id.isalnum():
            raise RemoteRejected("unknown request id", status_code=404)
        return self.requests / f"{request_id}.json"

    def _load(self, request_id: str) -> dict[str, Any]:
        path = self._path(request_id)
        if not path.exists():
            raise RemoteRejected("unknown request id", status_code=404)
        return json.loads(path.read_text())

    def _save(self, request_id: str, record: dict[str, Any]) -> None:
        tmp = self._path(request_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self._path(request_id))

    def _duration(self, endpoint: str) -> float:
        if _is_trainer(endpoint):
            return float(settings.WEBTOON_OFFLINE_TRAINING_SECONDS)
        return float(settings.WEBTOON_OFFLINE_IMAGE_SECONDS)

    # --- the interface ---------------------------------------------------------------------
    def submit(self, endpoint, arguments, *, webhook_url=None, start_timeout=None) -> str:
        request_id = uuid.uuid4().hex
        record = {
            "endpoint": endpoint,
            "arguments": arguments,
            "submitted_at": time.time(),
            "duration": self._duration(endpoint),
            "cancelled": False,
        }
        self._save(request_id, record)
        return request_id

    def status(self, endpoint, request_id) -> RemoteStatus:
        record = self._load(request_id)
        if record["cancelled"]:
            return RemoteStatus("completed", error="cancelled")
        elapsed = time.time() - record["submitted_at"]
        duration = record["duration"]
        if elapsed < min(0.5, duration * 0.1):
            return RemoteStatus("queued", queue_position=0)
        if elapsed < duration:
            return RemoteStatus("running", logs=self._logs(record, elapsed))
        return RemoteStatus("completed", logs=self._logs(record, duration))

    def _logs(self, record: dict[str, Any], elapsed: float) -> list[dict[str, Any]]:
        if not _is_trainer(record["endpoint"]):
            return [{"message": "Generating image (offline)", "level": "INFO", "source": "user"}]
        total = int(record["arguments"].get("steps") or 1000)
        done = min(total, int(total * elapsed / max(record["duration"], 0.001)))
        logs = [{"message": "Preparing training data (offline)", "level": "INFO"}]
        for step in range(0, done + 1, max(1, total // 20))[1:]:
            logs.append({"message": f"Training step {step}/{total}", "level": "INFO"})
        return logs

    def result(self, endpoint, request_id) -> dict[str, Any]:
        record = self._load(request_id)
        if "output" not in record:
            status = self.status(endpoint, request_id)
            if status.state != "completed" or status.error:
                raise RemoteRejected("request is not completed", status_code=400)
            if _is_trainer(endpoint):
                record["output"] = self._train(request_id, record["arguments"])
            else:
                record["output"] = self._render(request_id, record["arguments"])
            self._save(request_id, record)
        return record["output"]

    def cancel(self, endpoint, request_id) -> None:
        record = self._load(request_id)
        record["cancelled"] = True
        self._save(request_id, record)

    def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        safe = "".join(c for c in Path(file_name).name if c.isalnum() or c in "._-")[-60:]
        name = f"{uuid.uuid4().hex}-{safe or 'upload.bin'}"
        (self.files / name).write_bytes(data)
        return SCHEME + name

    def download(self, url: str, dest: IO[bytes], *, max_bytes: int) -> int:
        path = self._local(url)
        size = path.stat().st_size
        if size > max_bytes:
            raise DownloadRefused(f"file is {size} bytes, over the {max_bytes} cap")
        with path.open("rb") as src:
            shutil.copyfileobj(src, dest)
        return size

    # --- helpers ---------------------------------------------------------------------------
    def _local(self, url: str) -> Path:
        if not isinstance(url, str) or not url.startswith(SCHEME):
            raise DownloadRefused(f"the offline backend cannot fetch {url!r}")
        name = url[len(SCHEME) :]
        path = self.files / name
        if "/" in name or not path.is_file():
            raise RemoteFileGone("offline file not found", status_code=404)
        return path

    def _source_image(self, arguments: dict[str, Any]) -> Image.Image | None:
        urls = [arguments.get("image_url"), *(arguments.get("image_urls") or [])]
        for lora in arguments.get("loras") or []:
            try:
                meta = read_safetensors_metadata(self._local(lora.get("path")).read_bytes())
            except Exception:  # a LoRA we did not make: render without a reference
                continue
            if meta.get("offline_reference"):
                urls.append(SCHEME + meta["offline_reference"])
        for url in urls:
            if url:
                try:
                    with Image.open(self._local(url)) as im:
                        return ImageOps.exif_transpose(im).convert("RGB")
                except (RemoteFileGone, DownloadRefused, OSError):
                    continue
        return None

    def _lora_references(self, arguments: dict[str, Any]) -> list[Image.Image]:
        """Each LoRA's reference picture (offline LoRAs only), in the order of `loras`."""
        found = []
        for lora in arguments.get("loras") or []:
            try:
                meta = read_safetensors_metadata(self._local(lora.get("path")).read_bytes())
                with Image.open(self._local(SCHEME + meta["offline_reference"])) as im:
                    found.append(ImageOps.exif_transpose(im).convert("RGB"))
            except Exception:  # not an offline LoRA, or its reference is gone
                continue
        return found

    def _reference_pair(self, arguments: dict[str, Any]) -> list[Image.Image]:
        """A multi-reference edit naming two people (scenes.reference, issue 17): A's first
        reference and B's first (A's images come first, half each)."""
        urls = arguments.get("image_urls") or []
        if len(urls) < 2 or "two people" not in str(arguments.get("prompt", "")).lower():
            return []
        found = []
        for url in (urls[0], urls[len(urls) // 2]):
            try:
                with Image.open(self._local(url)) as im:
                    found.append(ImageOps.exif_transpose(im).convert("RGB"))
            except (RemoteFileGone, DownloadRefused, OSError):
                return []
        return found

    def _inpaint(self, arguments: dict[str, Any], seed: int) -> Image.Image:
        """Inpainting (a mask, white = repaint): the picture with the masked part redrawn as
        a slightly warmer, sharper copy of itself: visibly a new stage, same faces."""
        try:
            with Image.open(self._local(arguments.get("image_url"))) as im:
                source = im.convert("RGB")
            with Image.open(self._local(arguments.get("mask_url"))) as im:
                mask = im.convert("L").resize(source.size)
        except (RemoteFileGone, DownloadRefused, OSError) as exc:
            raise RemoteRejected(f"image_url/mask_url unusable: {exc}", status_code=422) from exc
        rng = random.Random(seed)
        redrawn = ImageEnhance.Sharpness(source).enhance(1.6)
        warm = Image.new("RGB", source.size, (255, rng.randint(190, 215), 170))
        return Image.composite(Image.blend(redrawn, warm, 0.12), source, mask)

    def _render(self, request_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        prompt = str(arguments.get("prompt", ""))
        seed = arguments.get("seed")
        if seed is None:
            seed = int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16)
        width, height = requested_size(arguments)
        if arguments.get("mask_url"):
            image = self._inpaint(arguments, seed)
            width, height = image.size
        elif len(references := self._lora_references(arguments)) >= 2:
            image = render_pair(references, prompt, seed, (width, height))
        elif len(references := self._reference_pair(arguments)) == 2:
            image = render_pair(references, prompt, seed, (width, height))
        else:
            image = render_variant(self._source_image(arguments), prompt, seed, (width, height))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        url = self.upload(buf.getvalue(), "image/jpeg", f"{request_id}.jpg")
        return {
            "images": [
                {"url": url, "width": width, "height": height, "content_type": "image/jpeg"}
            ],
            "seed": seed,
            "has_nsfw_concepts": [False],
            "prompt": prompt,
            "timings": {"inference": 0.0},
        }

    def _train(self, request_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reference = ""
        try:
            with zipfile.ZipFile(self._local(arguments.get("images_data_url"))) as zf:
                names = sorted(
                    n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png"))
                )
                if names:
                    with zf.open(names[0]) as f:
                        data = f.read(20 * 1024 * 1024)
                    reference = self.upload(data, "image/jpeg", f"{request_id}-ref.jpg")
        except (RemoteFileGone, DownloadRefused, zipfile.BadZipFile) as exc:
            raise RemoteRejected(f"images_data_url unusable: {exc}", status_code=422) from exc
        rng = random.Random(request_id)
        weights = build_safetensors(
            {
                "lora_unet_offline.lora_down.weight": [rng.uniform(-1, 1) for _ in range(16)],
                "lora_unet_offline.lora_up.weight": [rng.uniform(-1, 1) for _ in range(16)],
            },
            {
                "format": "pt",
                "offline": "true",
                "offline_reference": reference[len(SCHEME) :],
                "trigger": str(arguments.get("trigger_phrase") or arguments.get("trigger_word")),
            },
        )
        lora_url = self.upload(weights, "application/octet-stream", "lora.safetensors")
        config_url = self.upload(
            json.dumps({"arguments": arguments}).encode(), "application/json", "config.json"
        )
        return {
            "diffusers_lora_file": {
                "url": lora_url,
                "content_type": "application/octet-stream",
                "file_name": "pytorch_lora_weights.safetensors",
                "file_size": len(weights),
            },
            "config_file": {"url": config_url, "content_type": "application/json"},
        }


KOREAN_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Debian's fonts-nanum when present (the prompt may hold Korean words), else Pillow's
    built-in font."""
    if KOREAN_FONT.exists():
        return ImageFont.truetype(str(KOREAN_FONT), size)
    return ImageFont.load_default(size=size)


def render_pair(
    references: list[Image.Image], prompt: str, seed: int, size: tuple[int, int]
) -> Image.Image:
    """Two characters side by side (the first LoRA's on the left), each framed like a cut."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (235, 235, 235))
    half = width // 2
    for i, reference in enumerate(references[:2]):
        image.paste(ImageOps.fit(reference, (half, height), centering=(0.5, 0.3)), (i * half, 0))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.95, 1.1))
    _label(image, prompt)
    return image


def _label(image: Image.Image, prompt: str) -> None:
    """The prompt along the bottom and the OFFLINE mark: never mistaken for real output."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    band = max(28, height // 12)
    draw.rectangle((0, height - band, width, height), fill=(255, 255, 255))
    label = prompt.replace("\n", " ")[:70] or "(no prompt)"
    draw.text((10, height - band + band // 4), label, fill=(20, 20, 20), font=_font(band // 2))
    draw.rectangle((0, 0, band * 4, band), fill=(220, 40, 40))
    draw.text((8, band // 5), "OFFLINE", fill=(255, 255, 255), font=_font(band // 2))


def render_variant(
    source: Image.Image | None, prompt: str, seed: int, size: tuple[int, int]
) -> Image.Image:
    """A visibly different picture per prompt and seed, derived from the source photo."""
    rng = random.Random(seed)
    width, height = size
    if source is None:
        top = tuple(rng.randint(120, 230) for _ in range(3))
        image = Image.new("RGB", size, top)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.randint(0, width), rng.randint(0, height)
            r = rng.randint(width // 10, width // 4)
            color = tuple(rng.randint(60, 250) for _ in range(3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    else:
        lowered = prompt.lower()
        mirror = "left" in lowered or "back" in lowered or rng.random() < 0.3
        image = vary_photo(source, rng, size, mirror=mirror)
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.9, 1.15))
    _label(image, prompt)
    return image
