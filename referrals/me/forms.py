"""The page's forms: shapes only; the rules are the services'."""

from django import forms
from django.utils.translation import gettext_lazy as _

from referrals.pins import PIN_MAX, PIN_MIN

CHANNEL_NAMES = (
    ("phone_call", _("Phone call")),
    ("sms", _("Text message (SMS)")),
    ("signal", "Signal"),
    ("whatsapp", "WhatsApp"),
    ("email", _("Email")),
)


class SignInForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=32, strip=True)
    pin = forms.RegexField(
        label=_("PIN"), regex=rf"^[0-9]{{{PIN_MIN},{PIN_MAX}}}$", max_length=PIN_MAX, strip=True
    )


class ChannelsForm(forms.Form):
    channels = forms.MultipleChoiceField(
        label=_("Contact me only this way"),
        choices=CHANNEL_NAMES,
        widget=forms.CheckboxSelectMultiple,
    )
