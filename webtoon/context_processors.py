from django.conf import settings


def backend(request):
    """The offline banner: the page must say so when generation is not real."""
    return {"offline_backend": settings.WEBTOON_BACKEND == "offline"}
