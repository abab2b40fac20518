"""The ceiling: a bare Starlette endpoint returning a small JSON document."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"id": 1, "phone": "+8613800138000", "display_name": "ceiling"})


app = Starlette(routes=[Route("/", me), Route("/api/v1/me", me)])
