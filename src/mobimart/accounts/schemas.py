from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from mobimart.accounts.domain import Channel
from mobimart.web.schemas import InputModel


class CodeRequest(InputModel):
    phone: str = Field(min_length=3, max_length=32, examples=["+8613800138000"])


class CodeSentOut(BaseModel):
    expires_in: int
    resend_after: int


class TokenByCode(InputModel):
    phone: str = Field(min_length=3, max_length=32)
    code: str = Field(pattern=r"^\s*\d{6}\s*$")
    label: str = Field("", max_length=80, description="What this token is for, e.g. a device")
    marketing_sms: bool | None = Field(
        None, description="Record SMS marketing consent (source: signup) when given"
    )


class TokenByPassword(InputModel):
    phone: str = Field(min_length=3, max_length=32)
    password: str = Field(min_length=1, max_length=128)
    label: str = Field("", max_length=80)


class UserOut(BaseModel):
    id: int
    phone: str = Field(description="The caller's own number, in E.164")
    display_name: str
    has_password: bool
    is_admin: bool
    is_creator: bool
    realname_verified: bool
    created_at: dt.datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: dt.datetime
    user: UserOut


class TokenInfo(BaseModel):
    id: int
    kind: str
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime
    current: bool


class ProfileUpdate(InputModel):
    display_name: str = Field(min_length=1, max_length=60)


class PasswordChange(InputModel):
    password: str = Field(min_length=1, max_length=128)
    current_password: str | None = Field(None, max_length=128)


class ConsentIn(InputModel):
    granted: bool
    source: str = Field("api", min_length=1, max_length=40, pattern=r"^[a-z0-9_:-]+$")


class ConsentOut(BaseModel):
    channel: Channel
    granted: bool
    source: str | None
    recorded_at: dt.datetime | None


class RealNameIn(InputModel):
    name: str = Field(min_length=1, max_length=40)
    id_number: str = Field(min_length=1, max_length=20)


class RealNameOut(BaseModel):
    verified: bool
    name: str | None
    id_number_masked: str | None
    verified_at: dt.datetime | None
