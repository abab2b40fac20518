"""Pure identity rules: phone numbers, Chinese resident ID and business licence codes, masking,
one-time codes. No I/O."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets

import phonenumbers

from mobimart.errors import DomainError


class Channel(enum.StrEnum):
    sms = "sms"
    push = "push"
    in_app = "in_app"


class MemberRole(enum.StrEnum):
    owner = "owner"
    staff = "staff"


# --- phone numbers -------------------------------------------------------------------------


def normalize_phone(raw: str, region: str = "CN") -> str:
    """A valid mobile-capable number in E.164, or a DomainError saying what is wrong."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise DomainError("invalid_phone", "That is not a phone number.", 422) from None
    if not phonenumbers.is_valid_number(number):
        raise DomainError("invalid_phone", "That phone number does not exist.", 422)
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise DomainError("invalid_phone", "A mobile number is needed to receive codes.", 422)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """`+8613812345678` -> `138****5678`; other countries keep their code: `+44 74****0123`."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    keep_head = 3 if len(national) >= 10 else 2
    masked = national[:keep_head] + "****" + national[-4:]
    return masked if number.country_code == 86 else f"+{number.country_code} {masked}"


def public_name(display_name: str) -> str:
    """How a person appears to others (on reviews, questions and answers): the display name
    with its middle hidden, never the phone number ("Han Meimei" -> "H***i"; no name ->
    "Shopper"). The one rule for how others see a person."""
    name = display_name.strip()
    if not name:
        return "Shopper"
    if len(name) <= 2:
        return name[0] + "*"
    return f"{name[0]}***{name[-1]}"


# --- resident identity card number (GB 11643-1999) -----------------------------------------

_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]  # ISO 7064 MOD 11-2


def resident_id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def validate_resident_id(raw: str, *, today: dt.date | None = None) -> str:
    value = raw.strip().upper()
    if (
        len(value) != 18
        or not value[:17].isdigit()
        or not (value[17].isdigit() or value[17] == "X")
    ):
        raise DomainError(
            "invalid_id_number", "A resident ID number has 17 digits and a check digit or X.", 422
        )
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise DomainError(
            "invalid_id_number", "The birth date inside the ID number is not a date.", 422
        ) from None
    if born > (today or dt.datetime.now(dt.UTC).date()) or born.year < 1900:
        raise DomainError(
            "invalid_id_number", "The birth date inside the ID number is impossible.", 422
        )
    if resident_id_check_char(value[:17]) != value[17]:
        raise DomainError(
            "invalid_id_number", "The ID number's check digit does not match; check for typos.", 422
        )
    return value


def mask_id_number(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


# --- unified social credit code (GB 32100-2015) ----------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(raw: str) -> str:
    value = raw.strip().upper()
    if len(value) != 18 or any(c not in USCC_CHARSET for c in value):
        raise DomainError(
            "invalid_licence_number",
            "A unified social credit code has 18 characters (digits and letters except I, O, S, "
            "V, Z).",
            422,
        )
    if not value[2:8].isdigit():
        raise DomainError(
            "invalid_licence_number", "Characters 3–8 of the code are a region code (digits).", 422
        )
    if uscc_check_char(value[:17]) != value[17]:
        raise DomainError(
            "invalid_licence_number",
            "The code's check character does not match; check for typos.",
            422,
        )
    return value


# --- one-time codes ----------------------------------------------------------------------------

OTP_DIGITS = 6


def new_otp() -> str:
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


def otp_digest(secret: str, phone_hash: str, code: str) -> str:
    """Codes are stored as a keyed digest bound to the number: a leaked table yields no codes."""
    return hmac.new(secret.encode(), f"{phone_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def otp_failure(
    *,
    now: dt.datetime,
    expires_at: dt.datetime,
    consumed: bool,
    attempts: int,
    max_attempts: int,
) -> DomainError | None:
    """Why a stored code can no longer be tried, or None while it can."""
    if consumed:
        return DomainError("code_used", "This code was already used; request a new one.", 400)
    if attempts >= max_attempts:
        return DomainError(
            "code_locked", "Too many wrong tries: this code is locked; request a new one.", 400
        )
    if now >= expires_at:
        return DomainError("code_expired", "This code has expired; request a new one.", 400)
    return None


# --- passwords ---------------------------------------------------------------------------------

PASSWORD_MIN = 8
PASSWORD_MAX = 128


def check_password_policy(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise DomainError(
            "weak_password",
            f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            422,
        )
    if password.isdigit():
        raise DomainError("weak_password", "A password needs more than digits.", 422)
