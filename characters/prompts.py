"""Prompt templates: the 24 cuts, extra variants for additional generation, style keywords."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from webtoon.prompting.translate import english

from .enums import StyleId

STYLE_PROMPTS: dict[str, str] = {
    StyleId.ORIGINAL: "same style as the reference photo, maintaining original art style",
    StyleId.REALISTIC_SKETCH: (
        "realistic face with hand-drawn ink sketch body, simple stick figure body, white background"
    ),
    StyleId.CHIBI_2HEAD: (
        "chibi style, 2-head tall proportion, cute large head, small body, simple colored"
    ),
    StyleId.KAKAO_EMOTICON: (
        "Korean KakaoTalk emoticon style, round soft lines, bright pastel colors, cute expression"
    ),
    StyleId.SIMPLE_LINEART: (
        "minimal black line art, clean outline, no shading, white background, monochrome"
    ),
}

# Styles whose cuts keep a realistic face: identity similarity may uncheck their cuts.
REALISTIC_FACE_STYLES = {StyleId.ORIGINAL, StyleId.REALISTIC_SKETCH}

# The API's "pose" category covers both pose groups of the template file.
API_CATEGORIES = {
    "expression": ("expression",),
    "angle": ("angle",),
    "pose": ("upper_body", "full_body"),
    "scene": ("scene",),
}


@dataclass(frozen=True)
class CutTemplate:
    id: int
    category: str
    prompt: str
    label_ko: str


@cache
def base_cuts() -> tuple[CutTemplate, ...]:
    data = json.loads((Path(__file__).parent / "data" / "cuts_24.json").read_text("utf-8"))
    return tuple(CutTemplate(**cut) for cut in data["cuts"])


# Variants used by "generate additional": new prompts, never one the session already has.
VARIANTS: tuple[CutTemplate, ...] = (
    CutTemplate(101, "expression", "gentle smile with closed eyes, front view", "눈웃음"),
    CutTemplate(102, "expression", "worried expression, eyebrows raised, hand on cheek", "걱정"),
    CutTemplate(103, "expression", "determined expression, clenched fist, front view", "결의"),
    CutTemplate(104, "expression", "tired expression, sighing, slumped shoulders", "피곤"),
    CutTemplate(105, "expression", "excited expression, sparkling eyes, open smile", "신남"),
    CutTemplate(106, "expression", "serious expression, calm eyes, closed mouth", "진지"),
    CutTemplate(107, "expression", "shy smile, looking down slightly, front view", "수줍음"),
    CutTemplate(108, "expression", "proud expression, chin up, satisfied smile", "뿌듯함"),
    CutTemplate(109, "expression", "confused expression, head tilted, one eyebrow up", "갸우뚱"),
    CutTemplate(110, "expression", "relieved expression, exhaling, soft smile", "안도"),
    CutTemplate(111, "angle", "three-quarter view from slightly above, looking up", "위에서 3/4"),
    CutTemplate(112, "angle", "three-quarter view from slightly below", "아래에서 3/4"),
    CutTemplate(113, "angle", "back three-quarter view, head turned to camera", "뒤 3/4"),
    CutTemplate(114, "angle", "close-up portrait, head slightly tilted left", "왼쪽 기울임"),
    CutTemplate(115, "angle", "close-up portrait, head slightly tilted right", "오른쪽 기울임"),
    CutTemplate(116, "angle", "left side view, upper body, looking ahead", "좌측면 상반신"),
    CutTemplate(117, "angle", "right side view, upper body, looking ahead", "우측면 상반신"),
    CutTemplate(118, "angle", "three-quarter view from left, looking at camera", "좌측 3/4 응시"),
    CutTemplate(119, "angle", "three-quarter view from right, looking at camera", "우측 3/4 응시"),
    CutTemplate(121, "upper_body", "holding a document, reading it, upper body", "서류 읽기"),
    CutTemplate(122, "upper_body", "talking on a phone, upper body", "통화"),
    CutTemplate(123, "upper_body", "hands clasped together, polite bow, upper body", "인사"),
    CutTemplate(124, "full_body", "running, full body, dynamic pose", "달리기"),
    CutTemplate(125, "full_body", "standing with hands in pockets, full body", "주머니에 손"),
    CutTemplate(126, "upper_body", "writing with a pen, upper body", "필기"),
    CutTemplate(127, "upper_body", "holding a calculator, upper body", "계산기"),
    CutTemplate(128, "full_body", "bowing politely, full body", "인사 (전신)"),
    CutTemplate(129, "full_body", "leaning against a wall, arms crossed, full body", "벽에 기대기"),
    CutTemplate(131, "scene", "in a tax office, standing by the counter", "세무서"),
    CutTemplate(132, "scene", "at a cafe table with a laptop", "카페"),
    CutTemplate(133, "scene", "presenting a chart on a whiteboard", "발표"),
    CutTemplate(134, "scene", "at home on a sofa, relaxed", "집"),
    CutTemplate(135, "scene", "in a meeting room, talking across a table", "회의실"),
    CutTemplate(136, "scene", "at a bank counter, handing over documents", "은행 창구"),
    CutTemplate(137, "scene", "walking on a city street with a briefcase", "출근길"),
    CutTemplate(138, "scene", "in front of a computer monitor, typing", "컴퓨터 작업"),
)


def all_templates() -> tuple[CutTemplate, ...]:
    return base_cuts() + VARIANTS


def templates_for(api_category: str) -> list[CutTemplate]:
    """Every template (the 24 first, then the variants) in one of the API's categories."""
    groups = API_CATEGORIES[api_category]
    return [t for t in all_templates() if t.category in groups]


def api_category_of(category: str) -> str:
    return next(api for api, groups in API_CATEGORIES.items() if category in groups)


def style_prompt(style_id: str, custom_prompt: str = "") -> str:
    if style_id == StyleId.CUSTOM:
        # A style described in Korean goes to the model in English (cached per text).
        return english(custom_prompt, kind="style")
    return STYLE_PROMPTS[style_id]


def build_generation_prompt(style_id: str, custom_prompt: str, pose_prompt: str) -> str:
    """SPEC Step 3: Kontext gets only the pose change; other styles get style + pose."""
    if style_id == StyleId.ORIGINAL:
        return f"same person, same style as the input image, {pose_prompt}, clean background"
    return f"{style_prompt(style_id, custom_prompt)}, {pose_prompt}"
