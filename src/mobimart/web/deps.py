"""Request dependencies shared by every router: database session, caller identity, client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import service as accounts
from mobimart.accounts.models import AuthToken, User
from mobimart.db import Database
from mobimart.errors import DomainError, Forbidden, Unauthorized

SESSION_COOKIE = "mm_session"


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.session() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")


async def api_auth_optional(
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[User, AuthToken] | None:
    if credentials is None:
        return None
    return await accounts.authenticate(session, token=credentials.credentials, kind="api")


async def api_auth(
    auth: Annotated[tuple[User, AuthToken] | None, Depends(api_auth_optional)],
) -> tuple[User, AuthToken]:
    if auth is None:
        raise Unauthorized("Send a bearer token: Authorization: Bearer <token>.")
    return auth


async def api_user(auth: Annotated[tuple[User, AuthToken], Depends(api_auth)]) -> User:
    return auth[0]


async def api_token(auth: Annotated[tuple[User, AuthToken], Depends(api_auth)]) -> AuthToken:
    """The token this request carries (FastAPI resolves api_auth once per request)."""
    return auth[1]


async def api_admin(user: Annotated[User, Depends(api_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Platform admins only.")
    return user


CurrentUser = Annotated[User, Depends(api_user)]
CurrentToken = Annotated[AuthToken, Depends(api_token)]
Admin = Annotated[User, Depends(api_admin)]


class SignInRequired(DomainError):
    """A page that needs a signed-in person; rendered as a redirect to the sign-in page."""

    def __init__(self) -> None:
        super().__init__("sign_in_required", "Sign in first.", 401)


async def page_auth_optional(request: Request, session: Session) -> tuple[User, AuthToken] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return await accounts.authenticate(session, token=token, kind="session")
    except Unauthorized:
        return None


async def page_user_optional(
    auth: Annotated[tuple[User, AuthToken] | None, Depends(page_auth_optional)],
) -> User | None:
    return auth[0] if auth else None


async def page_user(user: Annotated[User | None, Depends(page_user_optional)]) -> User:
    if user is None:
        raise SignInRequired()
    return user


async def page_token(
    auth: Annotated[tuple[User, AuthToken] | None, Depends(page_auth_optional)],
) -> AuthToken:
    if auth is None:
        raise SignInRequired()
    return auth[1]


async def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Platform admins only.")
    return user


PageUser = Annotated[User, Depends(page_user)]
OptionalPageUser = Annotated[User | None, Depends(page_user_optional)]
PageAdmin = Annotated[User, Depends(page_admin)]
PageToken = Annotated[AuthToken, Depends(page_token)]


def client_ip(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers puts the forwarded address here.
    return request.client.host if request.client else "unknown"
