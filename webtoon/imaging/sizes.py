"""fal's image_size presets and aspect ratios, as pixel sizes."""

IMAGE_SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1024, 768),
    "3:4": (768, 1024),
    "16:9": (1024, 576),
    "9:16": (576, 1024),
}


def requested_size(arguments: dict, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    """The output size a fal image endpoint would produce for these arguments."""
    size = arguments.get("image_size")
    if isinstance(size, dict) and {"width", "height"} <= size.keys():
        return int(size["width"]), int(size["height"])
    if isinstance(size, str) and size in IMAGE_SIZE_PRESETS:
        return IMAGE_SIZE_PRESETS[size]
    ratio = arguments.get("aspect_ratio")
    if isinstance(ratio, str) and ratio in ASPECT_RATIOS:
        return ASPECT_RATIOS[ratio]
    return default
