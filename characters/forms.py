from django import forms
from django.utils.translation import gettext_lazy as _

ACCEPT = ".jpg,.jpeg,.png,.webp"


class PhotoUploadForm(forms.Form):
    # A plain FileField: format, size and content are judged by characters.photos, the same
    # code the API uses, so the page and the API give the same answers.
    photo = forms.FileField(
        label=_("사진"),
        allow_empty_file=True,
        widget=forms.FileInput(attrs={"accept": ACCEPT}),
        error_messages={"required": _("사진 파일을 선택해주세요.")},
    )
    consent = forms.BooleanField(
        label=_("이 사진을 사용할 권리가 있습니다"),
        error_messages={"required": _("사진 사용 권리에 동의해주세요")},
    )
