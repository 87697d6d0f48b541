from django import forms
from django.utils.translation import gettext_lazy as _

from .enums import StyleId

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


class StyleForm(forms.Form):
    style_id = forms.ChoiceField(
        label=_("스타일"),
        choices=StyleId.choices,
        initial=StyleId.ORIGINAL,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("알 수 없는 스타일입니다.")},
    )
    custom_prompt = forms.CharField(
        label=_("커스텀 스타일"),
        required=False,
        max_length=200,
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "maxlength": 200,
                "placeholder": _(
                    "원하는 스타일을 설명해주세요 (예: 지브리풍 수채화, 픽사 3D 스타일...)"
                ),
            }
        ),
        error_messages={"max_length": _("커스텀 스타일은 200자 이내로 입력해주세요.")},
    )
    # Asked only when this photo already has a set: a second one is paid again (issue 15).
    confirm_new = forms.BooleanField(required=False)


class AdditionalForm(forms.Form):
    category = forms.ChoiceField(
        required=False,
        choices=[
            ("", _("자동 (부족한 분류)")),
            ("expression", _("표정 더 만들기")),
            ("angle", _("각도 더 만들기")),
            ("pose", _("포즈 더 만들기")),
            ("scene", _("장면 더 만들기")),
        ],
    )


class PrepareForm(forms.Form):
    name = forms.CharField(
        label=_("캐릭터 이름"),
        max_length=60,
        widget=forms.TextInput(attrs={"placeholder": _("예: 박사장")}),
        error_messages={"required": _("캐릭터 이름을 입력해주세요.")},
    )
    trigger_word = forms.CharField(
        label=_("트리거 워드 (선택)"),
        required=False,
        max_length=40,
        help_text=_("비워 두면 이름으로 자동 생성합니다 (예: 박사장 → sks_parksajang)."),
    )


class EditForm(forms.Form):
    name = forms.CharField(label=_("이름"), max_length=60)
    lora_scale_default = forms.FloatField(label=_("기본 캐릭터 반영 강도"))


class TestGenerateForm(forms.Form):
    prompt = forms.CharField(label=_("프롬프트"), max_length=500, required=False)
    scale = forms.FloatField(label=_("캐릭터 반영 강도"))
    image_size = forms.ChoiceField(
        label=_("이미지 크기"),
        choices=[
            ("square_hd", _("정사각형 (1024×1024)")),
            ("portrait_4_3", _("세로 4:3")),
            ("portrait_16_9", _("세로 16:9")),
            ("landscape_4_3", _("가로 4:3")),
            ("landscape_16_9", _("가로 16:9")),
        ],
    )


class RetrainForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("저장 방식"),
        choices=[
            ("new", _("새 버전으로 저장하고 현재 버전으로 사용")),
            ("replace", _("현재 버전을 덮어쓰기")),
        ],
        initial="new",
        widget=forms.RadioSelect,
    )
    confirm_cost = forms.BooleanField(
        label=_("비용 안내를 확인했습니다"),
        error_messages={"required": _("비용 안내를 확인해주세요.")},
    )
