from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from webtoon.media import media_url

from . import photos
from .forms import PhotoUploadForm


@login_required
def new(request):
    """Step 1: upload the photo; on success go on to the style step."""
    if request.method == "POST":
        form = PhotoUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                photo = photos.upload_photo(
                    owner=request.user,
                    upload=form.cleaned_data["photo"],
                    consent=form.cleaned_data["consent"],
                )
            except photos.PhotoRejected as exc:
                form.add_error("photo", str(exc))
            else:
                return redirect("characters:style", photo_id=photo.public_id)
    else:
        form = PhotoUploadForm()
    max_upload_mb = settings.MAX_UPLOAD_BYTES // 2**20
    return render(request, "characters/new.html", {"form": form, "max_upload_mb": max_upload_mb})


@login_required
def style_select(request, photo_id):
    photo = photos.photo_for(request.user, photo_id)
    return render(
        request,
        "characters/style_select.html",
        {"photo": photo, "photo_url": media_url(photo.image.name)},
    )


@login_required
def character_list(request):
    return render(request, "characters/list.html")
