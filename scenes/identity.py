"""Identity of the characters in a scene (issue 16): each character's face, matched to it,
against that character's photo. Episode panels that show a scene carry the same result
(`cast_identity`)."""

from __future__ import annotations

from itertools import permutations

from PIL import Image

from characters import checks, identity, likeness

from .models import Scene


def measure_cast(scene: Scene, picture: Image.Image | None = None) -> None:
    """Store the identity result of every character of the scene's finished picture."""
    roles = list(scene.cast.select_related("character__photo").order_by("role"))
    if not roles or not scene.image:
        return
    if picture is None:
        with scene.image.open("rb") as fh, Image.open(fh) as im:
            picture = im.convert("RGB")
    anchors = [checks.anchor_of(role.character) for role in roles]
    if len(roles) == 1:
        values = [likeness.judge(picture, anchors[0])]
    else:
        values = match_faces(identity.find_faces(picture), anchors)
    for role, value in zip(roles, values, strict=True):
        role.identity = value
        role.save(update_fields=["identity"])


def match_faces(faces: list[identity.FoundFace], anchors: list) -> list[dict | None]:
    """One face per character, the assignment with the smallest total distance (a model may
    put B on the left); a character left without a face is `no_face`."""
    faces = sorted(faces, key=lambda f: f.width * f.height, reverse=True)[: len(anchors)]
    best: tuple[float, tuple] | None = None
    for order in permutations(range(len(anchors)), len(faces)):
        total = sum(
            identity.face_distance(faces[i].embedding, anchors[who]) if anchors[who] else 0.0
            for i, who in enumerate(order)
        )
        if best is None or total < best[0]:
            best = (total, order)
    found: dict[int, list[float]] = {}
    if best is not None:
        found = {who: faces[i].embedding for i, who in enumerate(best[1])}
    return [likeness.compare(found.get(n), anchor) for n, anchor in enumerate(anchors)]


def cast_identity(scene: Scene | None) -> list[dict]:
    """[{role, character_id, identity, words}] for a scene's characters, for pages and the
    API of scenes and of episode panels (prefetch cast__character to avoid queries)."""
    if scene is None:
        return []
    rows = []
    for role in scene.cast.all():
        drawn = bool(role.character) and likeness.is_drawn(role.character.style_id)
        shown = likeness.display(role.identity, drawn=drawn) if scene.image else None
        rows.append(
            {
                "role": role.role,
                "trigger_word": role.trigger_word,
                "identity": role.identity,
                "words": shown["words"] if shown else "",
                "tone": shown["tone"] if shown else "muted",
            }
        )
    return rows
