"""Sign-up and sign-in by one-time code or password, tokens and sessions, roles."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain
from mobimart.accounts.models import AuthToken, OtpCode, User
from mobimart.db import utcnow
from mobimart.errors import DomainError, NotFound, TooManyRequests, Unauthorized
from mobimart.infra import throttle
from mobimart.infra.pii import get_vault
from mobimart.infra.sms import SmsSendFailed, send_sms
from mobimart.settings import get_settings
from mobimart.signing import token_digest
from mobimart.text import clean_name

_hasher = PasswordHasher()
# Each argon2 hash takes 64 MiB and ~0.1 s of a core: at most two at a time per process.
_HASH_SLOTS = threading.BoundedSemaphore(2)
# Verifying against a fixed hash when the number is unknown keeps both answers equally slow.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
_HOUR = dt.timedelta(hours=1)


def phone_hash(e164: str) -> str:
    return get_vault().lookup_hash(e164)


async def _user_by_e164(session: AsyncSession, e164: str) -> User | None:
    return await session.scalar(select(User).where(User.phone_hash == phone_hash(e164)))


async def find_user_by_phone(session: AsyncSession, *, phone: str) -> User | None:
    return await _user_by_e164(
        session, domain.normalize_phone(phone, get_settings().default_region)
    )


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("User")
    return user


# --- one-time codes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSent:
    expires_in: int
    resend_after: int


@dataclass(frozen=True)
class SharedAddress:
    """Sign-ins that all reach us from one address, like a venue's Wi-Fi behind its gateway's
    NAT: the per-address budget is kept per `device` there instead (a portal and the client
    the gateway named), and the whole `network` gets a larger budget of its own, `per_hour`."""

    device: str
    network: str
    per_hour: int


async def request_code(
    session: AsyncSession, *, phone: str, ip: str, shared: SharedAddress | None = None
) -> CodeSent:
    settings = get_settings()
    e164 = domain.normalize_phone(phone, settings.default_region)
    p_hash = phone_hash(e164)
    refusal = await throttle.take(
        session,
        key=f"otp:phone:{p_hash}",
        limit=settings.otp_per_phone_per_hour,
        window=_HOUR,
        min_interval=dt.timedelta(seconds=settings.otp_resend_seconds),
    )
    if refusal and refusal.too_soon:
        raise TooManyRequests(
            f"A code was just sent; wait {refusal.retry_after} s before asking again.",
            refusal.retry_after,
        )
    if refusal:
        raise TooManyRequests(
            "Too many codes for this number; try again in an hour.", refusal.retry_after
        )
    vault = get_vault()
    budgets = [(f"otp:ip:{vault.lookup_hash('ip:' + ip)}", settings.otp_per_ip_per_hour)]
    if shared is not None:
        budgets = [
            (
                f"otp:ip:{vault.lookup_hash(f'ip:{ip}|{shared.device}')}",
                settings.otp_per_ip_per_hour,
            ),
            (f"otp:net:{vault.lookup_hash('net:' + shared.network)}", shared.per_hour),
        ]
    for key, limit in budgets:
        refusal = await throttle.take(session, key=key, limit=limit, window=_HOUR)
        if refusal:
            raise TooManyRequests(
                "Too many codes from this network; try again in an hour.", refusal.retry_after
            )

    code = domain.new_otp()
    now = utcnow()
    session.add(
        OtpCode(
            phone_hash=p_hash,
            code_digest=domain.otp_digest(settings.secret_key.get_secret_value(), p_hash, code),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.otp_ttl_seconds),
        )
    )
    # Committed before the text goes out: no write lock is held across the gateway call.
    await session.commit()
    minutes = settings.otp_ttl_seconds // 60
    try:
        await send_sms(
            session,
            to=e164,
            text=f"[Mobimart] Your code is {code}, valid for {minutes} minutes. "
            "Never share it with anyone.",
        )
    except SmsSendFailed as exc:
        # The attempt counted against the limits; say when asking again is allowed.
        exc.extra["retry_after"] = settings.otp_resend_seconds
        raise
    return CodeSent(settings.otp_ttl_seconds, settings.otp_resend_seconds)


async def verify_code(session: AsyncSession, *, phone: str, code: str) -> User:
    """Consume the newest code for the number; create the account on first sign-in."""
    settings = get_settings()
    e164 = domain.normalize_phone(phone, settings.default_region)
    p_hash = phone_hash(e164)
    otp = await session.scalar(
        select(OtpCode).where(OtpCode.phone_hash == p_hash).order_by(OtpCode.id.desc()).limit(1)
    )
    if otp is None:
        raise DomainError("no_code", "No code was sent to this number; request one first.", 400)
    now = utcnow()
    failure = domain.otp_failure(
        now=now,
        expires_at=otp.expires_at,
        consumed=otp.consumed_at is not None,
        attempts=otp.attempts,
        max_attempts=settings.otp_max_attempts,
    )
    if failure:
        raise failure

    expected = domain.otp_digest(settings.secret_key.get_secret_value(), p_hash, code.strip())
    usable = (
        OtpCode.id == otp.id,
        OtpCode.consumed_at.is_(None),
        OtpCode.attempts < settings.otp_max_attempts,
    )
    if not hmac.compare_digest(expected, otp.code_digest):
        left = settings.otp_max_attempts - otp.attempts - 1
        # Counted with a conditional update, so parallel guesses cannot exceed the limit.
        await session.execute(update(OtpCode).where(*usable).values(attempts=OtpCode.attempts + 1))
        await session.commit()
        if left <= 0:
            raise DomainError(
                "code_locked", "Too many wrong tries: this code is locked; request a new one.", 400
            )
        raise DomainError("wrong_code", f"Wrong code; {left} tries left.", 400, tries_left=left)

    consumed = await session.execute(
        update(OtpCode).where(*usable, OtpCode.expires_at > now).values(consumed_at=now)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError("code_used", "This code was already used; request a new one.", 400)

    user = await _user_by_e164(session, e164)
    if user is None:
        user = User(phone=e164, phone_hash=p_hash)
        session.add(user)
    await session.commit()
    return user


# --- passwords ---------------------------------------------------------------------------------


async def set_password(
    session: AsyncSession,
    *,
    user: User,
    password: str,
    current_password: str | None,
    keep_token_id: int | None = None,
) -> None:
    """Set or change the password and sign out every other device: a thief's session ends."""
    if user.password_hash and not await _password_matches(
        user.password_hash, current_password or ""
    ):
        raise DomainError("wrong_password", "The current password is wrong.", 400)
    domain.check_password_policy(password)
    # argon2 takes ~0.1 s of CPU and 64 MiB: off the event loop.
    user.password_hash = await asyncio.to_thread(_hash_password, password)
    await session.execute(
        update(AuthToken)
        .where(
            AuthToken.user_id == user.id,
            AuthToken.revoked_at.is_(None),
            AuthToken.id != (keep_token_id or 0),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()


def _hash_password(password: str) -> str:
    with _HASH_SLOTS:
        return _hasher.hash(password)


async def _password_matches(stored: str, password: str) -> bool:
    def verify() -> bool:
        with _HASH_SLOTS:
            try:
                return _hasher.verify(stored, password)
            except (VerifyMismatchError, InvalidHashError):
                return False

    return await asyncio.to_thread(verify)


async def password_sign_in(session: AsyncSession, *, phone: str, password: str, ip: str) -> User:
    settings = get_settings()
    e164 = domain.normalize_phone(phone, settings.default_region)
    for key, limit in (
        (f"pw:phone:{phone_hash(e164)}", settings.password_tries_per_phone_per_hour),
        (f"pw:ip:{get_vault().lookup_hash('ip:' + ip)}", settings.password_tries_per_ip_per_hour),
    ):
        refusal = await throttle.take(session, key=key, limit=limit, window=_HOUR)
        if refusal:
            raise TooManyRequests(
                "Too many password tries; sign in with a texted code or wait an hour.",
                refusal.retry_after,
            )
    # Tries count even when they fail: commit the counters before the answer.
    await session.commit()
    user = await _user_by_e164(session, e164)
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    if not await _password_matches(stored, password) or user is None or not user.password_hash:
        raise DomainError(
            "wrong_credentials", "That number and password do not match an account.", 401
        )
    return user


async def rename(session: AsyncSession, *, user: User, display_name: str) -> User:
    name = clean_name(display_name, 60)
    if not name:
        raise DomainError("invalid_name", "A display name cannot be blank.", 422)
    user.display_name = name
    await session.commit()
    return user


# --- tokens and sessions -----------------------------------------------------------------------


async def issue_token(
    session: AsyncSession, *, user: User, kind: str, label: str = ""
) -> tuple[str, AuthToken]:
    settings = get_settings()
    ttl = settings.api_token_ttl_seconds if kind == "api" else settings.session_ttl_seconds
    token = "mm_" + secrets.token_urlsafe(32)
    row = AuthToken(
        user_id=user.id,
        token_hash=token_digest(token),
        kind=kind,
        label=label[:80],
        expires_at=utcnow() + dt.timedelta(seconds=ttl),
    )
    session.add(row)
    await session.commit()
    return token, row


async def authenticate(session: AsyncSession, *, token: str, kind: str) -> tuple[User, AuthToken]:
    # One query for token and user: this runs on every authenticated request.
    row = (
        await session.execute(
            select(User, AuthToken)
            .join(AuthToken, AuthToken.user_id == User.id)
            .where(AuthToken.token_hash == token_digest(token), AuthToken.kind == kind)
        )
    ).first()
    if row is None:
        raise Unauthorized("Your sign-in has expired or was revoked; sign in again.")
    user, auth = row
    if auth.revoked_at is not None or auth.expires_at <= utcnow() or user.deleted_at is not None:
        raise Unauthorized("Your sign-in has expired or was revoked; sign in again.")
    return user, auth


async def list_tokens(session: AsyncSession, *, user_id: int) -> list[AuthToken]:
    rows = await session.scalars(
        select(AuthToken)
        .where(
            AuthToken.user_id == user_id,
            AuthToken.revoked_at.is_(None),
            AuthToken.expires_at > utcnow(),
        )
        .order_by(AuthToken.id.desc())
    )
    return list(rows)


async def revoke_token(session: AsyncSession, *, user_id: int, token_id: int) -> None:
    result = await session.execute(
        update(AuthToken)
        .where(
            AuthToken.id == token_id,
            AuthToken.user_id == user_id,
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("Token")
    await session.commit()


# --- roles -------------------------------------------------------------------------------------


async def ensure_admin(session: AsyncSession, *, phone: str) -> User:
    """Make the owner of this number a platform admin, creating the account if needed."""
    e164 = domain.normalize_phone(phone, get_settings().default_region)
    user = await _user_by_e164(session, e164)
    if user is None:
        user = User(phone=e164, phone_hash=phone_hash(e164))
        session.add(user)
    user.is_admin = True
    await session.commit()
    return user
