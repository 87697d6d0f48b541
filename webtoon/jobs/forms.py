from django import forms
from django.utils.translation import gettext_lazy as _

SIZE_CHOICES = [
    ("square_hd", _("정사각형 (1024×1024)")),
    ("portrait_4_3", _("세로 4:3")),
    ("landscape_16_9", _("가로 16:9")),
]


class ImageJobForm(forms.Form):
    prompt = forms.CharField(
        label=_("프롬프트"),
        max_length=1000,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": _("예: a tax accountant at a desk")}
        ),
    )
    image_size = forms.ChoiceField(label=_("크기"), choices=SIZE_CHOICES, initial="square_hd")
