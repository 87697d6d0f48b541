"""fal's image size keys in Korean, the same words on every page (issue 15)."""

from django.utils.translation import gettext_lazy as _

SIZE_LABELS = {
    "square_hd": _("정사각형 (1024×1024)"),
    "square": _("정사각형 (512×512)"),
    "portrait_4_3": _("세로 4:3"),
    "portrait_16_9": _("세로 16:9"),
    "landscape_4_3": _("가로 4:3"),
    "landscape_16_9": _("가로 16:9"),
}


def size_label(key: str) -> str:
    return str(SIZE_LABELS.get(key, key))


def size_choices(keys) -> list[tuple[str, str]]:
    return [(key, size_label(key)) for key in keys]
