from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _


class SignupForm(UserCreationForm):
    email = forms.EmailField(label=_("이메일 (선택)"), required=False)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, require_email: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if require_email:
            # SIGNUP_REQUIRE_EMAIL_VERIFICATION: the address is where the link goes.
            self.fields["email"].required = True
            self.fields["email"].label = _("이메일")


class TokenForm(forms.Form):
    name = forms.CharField(label=_("토큰 이름"), max_length=60, initial="script")
