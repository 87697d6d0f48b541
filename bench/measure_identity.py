"""Measure the identity thresholds of characters/likeness.py on the test photos (issue 16).

For each photo with a face (tests/testdata: astronaut.png, grace_hopper.jpg; chelsea.png has
none) it prints the dlib descriptor distance between the photo and copies of it (re-encoded,
resized, cropped, rotated, brighter, greyscale, mirrored, and the eight reframings the fal
fake and the offline backend make), then the distance between the two people. The numbers
are in docs/PERFORMANCE.md, "Identity thresholds".

    .venv/bin/python bench/measure_identity.py
"""

import io
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = ROOT / "tests" / "testdata"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webtoon.settings")
    import django

    django.setup()
    from PIL import Image, ImageEnhance, ImageOps

    from characters import identity, likeness
    from webtoon.imaging.variants import vary_photo

    def load(name):
        with Image.open(TESTDATA / name) as im:
            return im.convert("RGB")

    def jpeg(im, quality):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    def copies(src):
        w, h = src.size
        made = {
            "jpeg q95": jpeg(src, 95),
            "jpeg q60": jpeg(src, 60),
            "90% crop": src.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
            "rotated 6 deg": src.rotate(6, resample=Image.Resampling.BICUBIC),
            "brightness +30%": ImageEnhance.Brightness(src).enhance(1.3),
            "contrast +30%": ImageEnhance.Contrast(src).enhance(1.3),
            "greyscale": src.convert("L").convert("RGB"),
            "half size": src.resize((w // 2, h // 2)),
            "mirrored": ImageOps.mirror(src),
        }
        for seed in range(8):
            made[f"reframing {seed}{' (mirrored)' if seed % 2 else ''}"] = vary_photo(
                src, random.Random(seed), (1024, 1024), mirror=seed % 2 == 1
            )
        return made

    anchors = {}
    for name in ("astronaut.png", "grace_hopper.jpg", "chelsea.png"):
        src = load(name)
        anchor = identity.face_embedding(src)
        print(f"\n{name}: {'face found' if anchor else 'no face'}")
        if not anchor:
            continue
        anchors[name] = anchor
        for label, image in copies(src).items():
            value = likeness.compare(identity.face_embedding(image), anchor)
            print(f"  {label:24s} {value['distance']!s:>6}  {value['verdict']:9s}"
                  f" near_copy={value['near_copy']}")
    a, g = anchors["astronaut.png"], anchors["grace_hopper.jpg"]
    mirrored = identity.face_embedding(ImageOps.mirror(load("astronaut.png")))
    print(f"\nastronaut vs grace_hopper: {identity.face_distance(a, g):.3f}")
    print(f"mirrored astronaut vs grace_hopper: {identity.face_distance(mirrored, g):.3f}")
    print(f"thresholds: same <= {likeness.SAME_MAX_DISTANCE}, unsure <= "
          f"{likeness.UNSURE_MAX_DISTANCE}, near_copy <= {likeness.NEAR_COPY_MAX_DISTANCE}")


if __name__ == "__main__":
    main()
