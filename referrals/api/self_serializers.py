"""Shapes of the person's self-service routes. Nothing here can carry anything about the
person: statuses are sentences, disclosures are organisation names and times."""

from django.conf import settings
from rest_framework import serializers

from api.serializers import StrictFieldsMixin
from referrals.api.serializers import CHANNELS
from referrals.pins import PIN_MAX, PIN_MIN
from referrals.selectors import PersonState

LANGUAGE_CODES = [code for code, _ in settings.LANGUAGES]
STATES = [value for name, value in vars(PersonState).items() if name.isupper()]


class SelfTokenRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    code = serializers.CharField(
        max_length=32, help_text="The claim code from the slip (any case; spaces are ignored)."
    )
    pin = serializers.RegexField(
        rf"^[0-9]{{{PIN_MIN},{PIN_MAX}}}$", help_text="The PIN from the slip, or the one chosen."
    )


class SelfTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer …`.")
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds: 600.")
    expires_at = serializers.DateTimeField()


class SelfLanguageQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    lang = serializers.ChoiceField(
        choices=LANGUAGE_CODES,
        required=False,
        help_text="The language of the sentences. Default: the language consent was explained "
        "in, when it is one of these; else English.",
    )


class SelfStatusSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=LANGUAGE_CODES)
    state = serializers.ChoiceField(choices=STATES, help_text="For programs; people read `status`.")
    status = serializers.CharField(help_text="Where the referral stands, in one short sentence.")
    next_step = serializers.CharField(help_text="What happens next, in plain words.")
    contact_stopped = serializers.BooleanField(
        allow_null=True,
        help_text="Whether the person asked not to be contacted; null once their details may "
        "no longer be used.",
    )
    can_withdraw = serializers.BooleanField(help_text="Their details still exist.")
    can_change_contact = serializers.BooleanField(
        help_text="Their details still exist and the referral is open."
    )
    updated = serializers.DateTimeField()


class SelfDisclosureSerializer(serializers.Serializer):
    organisation = serializers.CharField(help_text="The organisation that opened the details.")
    at = serializers.DateTimeField()


class SelfSafeContactSerializer(StrictFieldsMixin, serializers.Serializer):
    do_not_contact = serializers.BooleanField(
        required=False, help_text="true: nobody contacts the person any more."
    )
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANNELS),
        min_length=1,
        max_length=len(CHANNELS),
        required=False,
        help_text="The channels that are safe now (contact allowed again, only these ways). "
        "Give either this or `do_not_contact: true`.",
    )
