from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from mobimart.accounts import domain, privacy
from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.accounts.schemas import (
    CodeRequest,
    CodeSentOut,
    ConsentIn,
    ConsentOut,
    PasswordChange,
    ProfileUpdate,
    RealNameIn,
    RealNameOut,
    TokenByCode,
    TokenByPassword,
    TokenInfo,
    TokenOut,
    UserOut,
)
from mobimart.web.deps import CurrentToken, CurrentUser, Session, client_ip
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["accounts"])


def user_out(user: User) -> UserOut:
    assert user.phone is not None
    return UserOut(
        id=user.id,
        phone=user.phone,
        display_name=user.display_name,
        has_password=user.password_hash is not None,
        is_admin=user.is_admin,
        is_creator=user.is_creator,
        realname_verified=user.realname_verified_at is not None,
        created_at=user.created_at,
    )


async def _token_out(session: Session, user: User, label: str) -> TokenOut:
    token, row = await accounts.issue_token(session, user=user, kind="api", label=label)
    return TokenOut(access_token=token, expires_at=row.expires_at, user=user_out(user))


@router.post("/auth/otp", status_code=202)
async def request_code(body: CodeRequest, request: Request, session: Session) -> CodeSentOut:
    """Text a six-digit sign-in code to the number. Signing in with it creates the account."""
    sent = await accounts.request_code(session, phone=body.phone, ip=client_ip(request))
    return CodeSentOut(expires_in=sent.expires_in, resend_after=sent.resend_after)


@router.post("/auth/token", status_code=201)
async def token_by_code(body: TokenByCode, session: Session) -> TokenOut:
    user = await accounts.verify_code(session, phone=body.phone, code=body.code)
    if body.marketing_sms is not None:
        await privacy.set_consent(
            session,
            user_id=user.id,
            channel=domain.Channel.sms,
            granted=body.marketing_sms,
            source="signup",
        )
    return await _token_out(session, user, body.label)


@router.post("/auth/password-token", status_code=201)
async def token_by_password(body: TokenByPassword, request: Request, session: Session) -> TokenOut:
    user = await accounts.password_sign_in(
        session, phone=body.phone, password=body.password, ip=client_ip(request)
    )
    return await _token_out(session, user, body.label)


@router.get("/me/tokens")
async def list_tokens(
    user: CurrentUser, current: CurrentToken, session: Session
) -> list[TokenInfo]:
    return [
        TokenInfo(
            id=t.id,
            kind=t.kind,
            label=t.label,
            created_at=t.created_at,
            expires_at=t.expires_at,
            current=t.id == current.id,
        )
        for t in await accounts.list_tokens(session, user_id=user.id)
    ]


@router.delete("/me/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: IdPath, user: CurrentUser, session: Session) -> Response:
    """Revoke one of your tokens or page sessions (sign out elsewhere)."""
    await accounts.revoke_token(session, user_id=user.id, token_id=token_id)
    return Response(status_code=204)


@router.post("/auth/revoke", status_code=204)
async def revoke_current(user: CurrentUser, current: CurrentToken, session: Session) -> Response:
    """Sign out: revoke the token this request carries."""
    await accounts.revoke_token(session, user_id=user.id, token_id=current.id)
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return user_out(user)


@router.patch("/me")
async def update_me(body: ProfileUpdate, user: CurrentUser, session: Session) -> UserOut:
    return user_out(await accounts.rename(session, user=user, display_name=body.display_name))


@router.put("/me/password", status_code=204)
async def set_password(
    body: PasswordChange, user: CurrentUser, current: CurrentToken, session: Session
) -> Response:
    """Set or change your password; every other token and session is signed out."""
    await accounts.set_password(
        session,
        user=user,
        password=body.password,
        current_password=body.current_password,
        keep_token_id=current.id,
    )
    return Response(status_code=204)


def _consent_out(channel: str, row: Any) -> ConsentOut:
    return ConsentOut(
        channel=domain.Channel(channel),
        granted=bool(row and row.granted),
        source=row.source if row else None,
        recorded_at=row.recorded_at if row else None,
    )


@router.get("/me/consents")
async def consents(user: CurrentUser, session: Session) -> list[ConsentOut]:
    current = await privacy.current_consents(session, user_id=user.id)
    return [_consent_out(channel, row) for channel, row in current.items()]


@router.put("/me/consents/{channel}")
async def set_consent(
    channel: domain.Channel, body: ConsentIn, user: CurrentUser, session: Session
) -> ConsentOut:
    row = await privacy.set_consent(
        session, user_id=user.id, channel=channel, granted=body.granted, source=body.source
    )
    return _consent_out(channel.value, row)


def _realname_out(user: User) -> RealNameOut:
    return RealNameOut(
        verified=user.realname_verified_at is not None,
        name=user.real_name,
        id_number_masked=domain.mask_id_number(user.id_number) if user.id_number else None,
        verified_at=user.realname_verified_at,
    )


@router.get("/me/real-name")
async def real_name(user: CurrentUser) -> RealNameOut:
    return _realname_out(user)


@router.post("/me/real-name")
async def verify_real_name(body: RealNameIn, user: CurrentUser, session: Session) -> RealNameOut:
    """Record your name and resident ID number (required for larger wallet balances)."""
    await privacy.verify_real_name(session, user=user, name=body.name, id_number=body.id_number)
    return _realname_out(user)


@router.get("/me/export")
async def export(user: CurrentUser, session: Session) -> dict[str, Any]:
    """Everything Mobimart holds about you, as JSON."""
    return await privacy.export_data(session, user=user)


@router.delete("/me", status_code=204)
async def delete_me(user: CurrentUser, session: Session) -> Response:
    """Delete your account: personal data is erased; orders and payments stay, anonymised."""
    await privacy.delete_account(session, user=user)
    return Response(status_code=204)
