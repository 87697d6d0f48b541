"""Korean scene words → English image-prompt words (issue 15, FAL.md §5).

A value of the maintained dictionary (scenes/vocabulary.py) is used as is, and text with no
Korean in it is passed on as typed. Any other Korean text is turned into English by a
language model on fal (`fal-ai/any-llm`, through the image backend), once per text: the
answer is kept in PromptTranslation with its cost. The offline backend, a timeout or any
other failure falls back to the dictionary, so a scene is never refused for it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F

from webtoon.imaging import BackendError, get_backend

from .models import PromptTranslation

logger = logging.getLogger(__name__)

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
MAX_ENGLISH = 300
KIND_WORDS = {
    "expression": "a facial expression or action",
    "place": "a place or background",
    "situation": "a situation or what the characters are doing",
    "style": "a drawing style",
    "prompt": "a short scene description",
}
SYSTEM_PROMPT = (
    "You turn short Korean webtoon notes into English prompt words for an image model "
    "(FLUX). Answer with one concise English phrase only: no quotes, no explanations, no "
    "Korean, at most 25 words. Keep words like sks_name unchanged."
)


def _normalize(text: str) -> str:
    return " ".join((text or "").split())


def _key(kind: str, text: str, model: str) -> str:
    return hashlib.sha256(f"{kind}\n{model}\n{text}".encode()).hexdigest()


def _clean(answer: str) -> str:
    """The model's phrase on one line, without quotes; "" when it is unusable."""
    line = _normalize(answer.replace("\n", " ")).strip("\"'` ").rstrip(".")
    if not line or HANGUL.search(line):
        return ""
    return line[:MAX_ENGLISH]


def _ask(kind: str, text: str) -> str:
    backend = get_backend()
    question = f"{KIND_WORDS.get(kind, KIND_WORDS['prompt'])}: {text}"
    answer = backend.run_llm(
        question,
        system_prompt=SYSTEM_PROMPT,
        model=settings.PROMPT_LLM_MODEL,
        timeout=settings.PROMPT_LLM_TIMEOUT_SECONDS,
    )
    return _clean(answer)


def translate(text: str, *, kind: str = "prompt") -> str | None:
    """The English for free Korean text, from the cache or the language model; None when
    neither can give one (the caller falls back to the dictionary)."""
    text = _normalize(text)
    if not text or not HANGUL.search(text):
        return text or None
    model = settings.PROMPT_LLM_MODEL
    key = _key(kind, text, model)
    cached = PromptTranslation.objects.filter(key=key).values_list("english", flat=True).first()
    if cached is not None:
        PromptTranslation.objects.filter(key=key).update(hits=F("hits") + 1)
        return cached
    try:
        english = _ask(kind, text)
    except BackendError as exc:
        logger.info("prompt translation fell back to the dictionary: %s", exc)
        return None
    if not english:
        return None
    cost = Decimal(str(settings.COST_PER_LLM_PROMPT))
    try:
        PromptTranslation.objects.create(
            key=key, kind=kind, source=text, english=english, model=model, cost=cost
        )
    except IntegrityError:  # the same text asked twice at once: the first answer stays
        pass
    return english


def english(text: str, table: dict[str, str] | None = None, *, kind: str = "prompt") -> str:
    """Drop-in for scenes.vocabulary.english: dictionary first, then the language model,
    then the text as typed."""
    text = _normalize(text)
    if not text:
        return ""
    if table and text in table:
        return table[text]
    return translate(text, kind=kind) or text


def source_of(english_text: str) -> str | None:
    """The Korean a cached English prompt was made from (for pages: Korean out)."""
    english_text = _normalize(english_text)
    if not english_text:
        return None
    return (
        PromptTranslation.objects.filter(english=english_text)
        .values_list("source", flat=True)
        .first()
    )


def scene_english(text: str, table: dict[str, str] | None = None) -> str:
    """english() that names the field after the dictionary it comes with."""
    return english(text, table, kind=_kind_of(table))


def _kind_of(table) -> str:
    from scenes.vocabulary import EXPRESSIONS, PLACES, SITUATIONS  # lazy: scenes imports us

    return {id(EXPRESSIONS): "expression", id(PLACES): "place", id(SITUATIONS): "situation"}.get(
        id(table), "prompt"
    )
