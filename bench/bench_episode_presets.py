"""Benchmark: a 10-panel episode exported for every platform preset.

The episode: 10 portrait panels (800 × 1067 at the strip width, like 3:4 scenes) drawn from the
test photos (tests/testdata: astronaut, chelsea, grace_hopper, cycled), each with one or two
bubbles of every lettering kind (speech, shout, thought, whisper, narration, caption) in Korean
with a number, a jamo run and an emoji. Scenario `noise` uses pictures of colour noise
instead: the heaviest a picture gets, where the limits bite.

For each preset the same code the export worker runs (rendering.render_panel per panel, then
platforms.export_strip: keep-outs, strip, gutter-first slicing, quality steps and shorter
slices) reports: the slices (count, heights), the JPEG quality it chose, each file's size,
the total, what it said, and the wall time. Pure: no database, no storage.

    .venv/bin/python bench/bench_episode_presets.py              # photos and noise, JPEG
    .venv/bin/python bench/bench_episode_presets.py --format png --scenario photos
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webtoon.settings")
os.environ.setdefault("WEBTOON_DATA_DIR", "/tmp/webtoon-bench-presets")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.utils import translation  # noqa: E402
from PIL import Image  # noqa: E402

from episodes import platforms, rendering  # noqa: E402

PHOTOS = ["astronaut.png", "chelsea.png", "grace_hopper.jpg"]
LINES = [
    ("speech", "사장님, 올해 종합소득세 신고는 5월 31일까지예요! 😀"),
    ("shout", "뭐라고?! 가산세가 ₩1,234,567?!"),
    ("thought", "환급금이 나올까... ㅠㅠ"),
    ("whisper", "(작게) 영수증 챙기셨죠?"),
    ("narration", "그날 오후, 세무사 사무실"),
    ("caption", "1년 뒤"),
]
PANEL_HEIGHT = 1067  # px at 800: a 3:4 portrait scene


def pictures(scenario: str, count: int) -> list[Image.Image]:
    if scenario == "noise":
        rng = np.random.default_rng(7)
        return [Image.fromarray(rng.integers(0, 256, (PANEL_HEIGHT, 800, 3), dtype=np.uint8))
                for _ in range(count)]
    folder = ROOT / "tests" / "testdata"
    photos = [Image.open(folder / name).convert("RGB") for name in PHOTOS]
    return [photos[i % len(photos)] for i in range(count)]


def bubbles(i: int) -> list[rendering.BubbleSpec]:
    kind, text = LINES[i % len(LINES)]
    first = rendering.BubbleSpec(kind, text, 0.06, 0.05, 0.55, 0.2, tail_x=0.4, tail_y=0.4,
                                 font_size=26)
    if i % 2:
        return [first]
    kind, text = LINES[(i + 3) % len(LINES)]
    return [first, rendering.BubbleSpec(kind, text, 0.45, 0.72, 0.5, 0.18, tail_x=0.6,
                                        tail_y=0.6, font_size=24)]


def run(scenario: str, preset: str, fmt: str, count: int) -> dict:
    p = platforms.PLATFORMS[preset]
    width = p.width or rendering.STRIP_WIDTH
    started = time.perf_counter()
    drawn = []
    for i, picture in enumerate(pictures(scenario, count)):
        spec = rendering.PanelSpec(picture, PANEL_HEIGHT, bubbles(i), f"{i + 1}번째 컷")
        image, _warnings = rendering.render_panel(spec, width)
        drawn.append((image, spec.bubbles))
    chosen, note = platforms.export_format(p, fmt)
    try:
        strip, plan = platforms.export_strip(drawn, p, chosen, p.max_height or 1280)
    except platforms.LimitUnmet as exc:
        return {"preset": preset, "error": str(exc), "seconds": time.perf_counter() - started}
    return {
        "preset": preset, "width": width, "total_height": strip.height,
        "heights": [b - t for t, b in plan.ranges], "quality": plan.quality,
        "sizes": plan.sizes, "total": plan.total, "summary": plan.summary(p, width),
        "notes": [n for n in (note, *plan.notes) if n],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=10)
    parser.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--scenario", choices=("photos", "noise"), action="append")
    args = parser.parse_args()
    translation.activate("ko")
    for scenario in args.scenario or ["photos", "noise"]:
        print(f"\n== {scenario}: {args.panels} panels of 800x{PANEL_HEIGHT} at 800, "
              f"{args.format.upper()} asked ==")
        for preset in platforms.PLATFORMS:
            r = run(scenario, preset, args.format, args.panels)
            if "error" in r:
                print(f"{preset:15} refused in {r['seconds']:.1f}s: {r['error']}")
                continue
            sizes = [platforms.human_size(s) for s in r["sizes"]]
            print(f"{preset:15} {r['width']}x{r['total_height']} -> {len(r['heights'])} files, "
                  f"quality {r['quality'] or 'PNG'}, heights {min(r['heights'])}-"
                  f"{max(r['heights'])}, total {platforms.human_size(r['total'])}, "
                  f"largest {platforms.human_size(max(r['sizes']))}, {r['seconds']:.1f}s")
            print(f"{'':15} sizes: {', '.join(sizes)}")
            print(f"{'':15} says: {r['summary']}")
            for note in r["notes"]:
                print(f"{'':15} note: {note}")


if __name__ == "__main__":
    main()
