"""Frontal face detection with OpenCV's bundled Haar cascade.

Cheap, offline and good enough for what Step 1 needs: a hint to the user when the photo
shows no clear frontal face. A miss is only a warning, never a rejection.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Detection runs on a copy no larger than this; Haar cascades gain nothing from more pixels
# and a 50 MP photo would take seconds.
DETECT_MAX_SIDE = 1024
MIN_FACE_SIDE = 30

_cascade: cv2.CascadeClassifier | None = None
# One classifier per process, loaded on first use; the lock also keeps detectMultiScale,
# which shares the classifier's state, off concurrent gunicorn threads.
_lock = threading.Lock()


def _get_cascade() -> cv2.CascadeClassifier:
    global _cascade
    if _cascade is None:
        path = cv2.data.haarcascades + CASCADE_FILE
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():  # OpenCV returns an empty classifier instead of raising
            raise RuntimeError(f"face cascade missing or unreadable: {path}")
        _cascade = cascade
    return _cascade


def detect_face(image: Image.Image) -> dict[str, int] | None:
    """The largest frontal face as {"x", "y", "w", "h"} in `image` pixels, or None."""
    gray = image.convert("L")
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.size))
    if scale < 1.0:
        small = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(small, Image.Resampling.BILINEAR)
    pixels = np.asarray(gray)
    with _lock:
        faces = _get_cascade().detectMultiScale(
            pixels, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE_SIDE, MIN_FACE_SIDE)
        )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return {key: round(int(v) / scale) for key, v in zip("xywh", (x, y, w, h), strict=True)}
