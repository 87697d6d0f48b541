"""Every stored object referenced, every reference stored: the media invariant the storage
tests and the soaks check, on local media and on S3 alike."""

from __future__ import annotations

import os
from pathlib import Path

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models

# JSON lists that name stored files besides the FileFields: (app, model, field, key).
JSON_REFERENCES = (
    ("episodes", "Export", "images", "name"),
    ("scenes", "Scene", "stages", "image"),
)


def stored_names(storage=None) -> set[str]:
    """Every object in the media storage: a walk of the folder, or a listing of the bucket."""
    storage = storage or default_storage
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:  # django-storages' S3Storage
        prefix = getattr(storage, "location", "") or ""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        return {obj.key[len(prefix):] for obj in bucket.objects.filter(Prefix=prefix)}
    root = Path(storage.location)
    return {
        str(Path(dirpath, name).relative_to(root)).replace(os.sep, "/")
        for dirpath, _dirs, files in os.walk(root)
        for name in files
    }


def referenced_names() -> set[str]:
    names: set[str] = set()
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        for field in fields:
            names.update(
                n for n in model.objects.exclude(**{field: ""}).values_list(field, flat=True) if n
            )
    for app_label, model_name, field, key in JSON_REFERENCES:
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        for items in model.objects.values_list(field, flat=True):
            names.update(i.get(key) for i in items or [] if isinstance(i, dict) and i.get(key))
    return names


def audit(storage=None) -> tuple[set[str], set[str], set[str]]:
    """(stored, unreferenced objects, references whose object is missing)."""
    stored, referenced = stored_names(storage), referenced_names()
    return stored, stored - referenced, referenced - stored
