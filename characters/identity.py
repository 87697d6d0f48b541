"""Identity similarity: dlib's 128-d face descriptor and the distance between two of them.

Runs fully offline: the weights ship in the `face_recognition_models` package, so nothing is
downloaded at run time. Distances follow dlib's metric learning: the same person is usually
0.2-0.4 apart, different people 0.7 or more, and dlib's own decision threshold is 0.6.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import dlib
import numpy as np
from PIL import Image

SAME_PERSON_MAX_DISTANCE = 0.6


def _models_dir() -> str:
    # The package's own __init__ imports pkg_resources (deprecated, absent from setuptools-less
    # and newer environments) just to build these paths, so it is located without being run:
    # find_spec only resolves where its __init__.py is.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("face_recognition_models is not installed (face model weights)")
    return os.path.join(os.path.dirname(spec.origin), "models")


SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# HOG detection score from which a face counts as clearly found. Real frontal faces score
# ~1.5; clutter (flag stripes, folds in clothing) yields spurious boxes scoring 0-0.3 that can
# be *larger* than the face, so "the largest face" is only taken among confident ones.
CONFIDENT_SCORE = 0.5

# The HOG detector's cost grows with the pixel count (~0.07 s at 800 px, ~0.11 s at 1024 px on
# two cores) and the descriptor only looks at a 150 px face chip, so more pixels buy nothing.
EMBED_MAX_SIDE = 800

_Models = tuple[dlib.fhog_object_detector, dlib.shape_predictor, dlib.face_recognition_model_v1]
_models: _Models | None = None
# One set of models per process, loaded on first use. dlib's objects are not documented as
# thread-safe, and gunicorn threads / thread pools call in concurrently, so every use of them
# happens under this lock (loading included, so two threads never load twice).
_lock = threading.Lock()


def _load_models() -> _Models:
    global _models
    if _models is None:
        # Resolved here, not at import: a missing package must not break importing the app.
        models_dir = _models_dir()
        paths = [
            os.path.join(models_dir, n) for n in (SHAPE_PREDICTOR_FILE, RECOGNITION_MODEL_FILE)
        ]
        for path in paths:
            if not os.path.isfile(path):  # dlib's own error would only say "Unable to open"
                raise RuntimeError(f"face model missing: {path}")
        _models = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(paths[0]),
            dlib.face_recognition_model_v1(paths[1]),
        )
    return _models


def _detector_input(image: Image.Image) -> np.ndarray:
    """An RGB uint8 array no larger than EMBED_MAX_SIDE, the layout dlib expects."""
    rgb = image.convert("RGB")
    scale = min(1.0, EMBED_MAX_SIDE / max(rgb.size))
    if scale < 1.0:
        small = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(small, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _pick_face(faces: list[dlib.rectangle], scores: list[float]) -> dlib.rectangle:
    """The largest confident face (the subject, not a passer-by), else the most likely one."""
    confident = [
        face for face, score in zip(faces, scores, strict=True) if score >= CONFIDENT_SCORE
    ]
    if confident:
        return max(confident, key=lambda rect: rect.area())
    # Turned heads (3/4 and profile cuts) score low; the best of them is still the face.
    return max(zip(faces, scores, strict=True), key=lambda pair: pair[1])[0]


def face_embedding(image: Image.Image) -> list[float] | None:
    """The 128-d descriptor of the largest face in `image`, or None when no face is found.

    A plain list of floats, so it can be stored in a JSONField as is.
    """
    pixels = _detector_input(image)
    with _lock:
        detector, predictor, model = _load_models()
        faces, scores, _ = detector.run(pixels, 0, 0.0)
        if not faces:
            # HOG's window is 80 px: full-body cuts and small photos have smaller faces, and
            # one upsampling pass finds them. The cost (~0.3 s) is bounded by EMBED_MAX_SIDE.
            faces, scores, _ = detector.run(pixels, 1, 0.0)
        if not faces:
            return None
        face = _pick_face(list(faces), list(scores))
        landmarks = predictor(pixels, face)
        # num_jitters=0: deterministic (dlib only jitters from 2 up) and ~N times cheaper.
        descriptor = model.compute_face_descriptor(pixels, landmarks, 0)
    return [float(v) for v in descriptor]


def face_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance between two descriptors; below SAME_PERSON_MAX_DISTANCE = same person."""
    if len(a) != len(b) or not a:
        raise ValueError(f"face descriptors differ in length: {len(a)} vs {len(b)}")
    return math.dist(a, b)


def is_same_person(a: Sequence[float], b: Sequence[float]) -> bool:
    return face_distance(a, b) <= SAME_PERSON_MAX_DISTANCE


@dataclass(frozen=True)
class FoundFace:
    """One face of a picture: its box in the picture's own pixels and its descriptor."""

    left: int
    top: int
    right: int
    bottom: int
    score: float
    embedding: list[float]

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def center_x(self) -> float:
        return (self.left + self.right) / 2


def find_faces(image: Image.Image, *, limit: int = 4) -> list[FoundFace]:
    """Every clear face of `image` (at most `limit`, the most likely first), each with its
    descriptor: a scene with two characters has two faces to tell apart.

    Low-scoring boxes are dropped when a confident face exists (clutter, see CONFIDENT_SCORE)."""
    pixels = _detector_input(image)
    back = max(image.size) / max(pixels.shape[:2])  # detector pixels -> image pixels
    with _lock:
        detector, predictor, model = _load_models()
        faces, scores, _ = detector.run(pixels, 0, 0.0)
        if not faces:
            faces, scores, _ = detector.run(pixels, 1, 0.0)
        pairs = sorted(zip(faces, scores, strict=True), key=lambda p: -p[1])
        if any(score >= CONFIDENT_SCORE for _face, score in pairs):
            pairs = [p for p in pairs if p[1] >= CONFIDENT_SCORE]
        found = []
        for face, score in pairs[:limit]:
            landmarks = predictor(pixels, face)
            descriptor = model.compute_face_descriptor(pixels, landmarks, 0)
            found.append(
                FoundFace(
                    left=max(0, round(face.left() * back)),
                    top=max(0, round(face.top() * back)),
                    right=min(image.width, round(face.right() * back)),
                    bottom=min(image.height, round(face.bottom() * back)),
                    score=float(score),
                    embedding=[float(v) for v in descriptor],
                )
            )
    return found
