"""Domain errors, rendered as RFC 9457 problem+json by the API and as a page by the site."""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://mobimart.dev/problems/"


class DomainError(Exception):
    """A rule the caller broke. `code` is stable and machine-readable; `detail` is for people."""

    def __init__(self, code: str, detail: str, status: int = 400, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.extra = extra


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found", 404)


class Forbidden(DomainError):
    def __init__(self, detail: str = "You are not allowed to do this.") -> None:
        super().__init__("forbidden", detail, 403)


class Unauthorized(DomainError):
    def __init__(self, detail: str = "Sign in first.") -> None:
        super().__init__("unauthorized", detail, 401)


class Conflict(DomainError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, 409)


class TooManyRequests(DomainError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__("rate_limited", detail, 429, retry_after=retry_after)


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
