"""Request dependencies shared by every router: database session, caller identity, client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.db import Database
from mobimart.errors import DomainError, Forbidden, Unauthorized

SESSION_COOKIE = "mm_session"


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.session() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")


async def api_user_optional(
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    if credentials is None:
        return None
    user, _ = await accounts.authenticate(session, token=credentials.credentials, kind="api")
    return user


async def api_user(user: Annotated[User | None, Depends(api_user_optional)]) -> User:
    if user is None:
        raise Unauthorized("Send a bearer token: Authorization: Bearer <token>.")
    return user


async def api_admin(user: Annotated[User, Depends(api_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Platform admins only.")
    return user


async def api_token_id(
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    if credentials is None:
        raise Unauthorized()
    _, token = await accounts.authenticate(session, token=credentials.credentials, kind="api")
    return token.id


CurrentUser = Annotated[User, Depends(api_user)]
OptionalUser = Annotated[User | None, Depends(api_user_optional)]
Admin = Annotated[User, Depends(api_admin)]


class SignInRequired(DomainError):
    """A page that needs a signed-in person; rendered as a redirect to the sign-in page."""

    def __init__(self) -> None:
        super().__init__("sign_in_required", "Sign in first.", 401)


async def page_user_optional(request: Request, session: Session) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        user, _ = await accounts.authenticate(session, token=token, kind="session")
    except Unauthorized:
        return None
    return user


async def page_user(user: Annotated[User | None, Depends(page_user_optional)]) -> User:
    if user is None:
        raise SignInRequired()
    return user


async def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Platform admins only.")
    return user


PageUser = Annotated[User, Depends(page_user)]
OptionalPageUser = Annotated[User | None, Depends(page_user_optional)]
PageAdmin = Annotated[User, Depends(page_admin)]


def client_ip(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers puts the forwarded address here.
    return request.client.host if request.client else "unknown"
