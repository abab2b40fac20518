"""Every failure is RFC 9457 problem+json: unknown routes, wrong methods, bad bodies."""

import httpx
import pytest

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", {}, 404, "not_found"),
        ("DELETE", "/api/v1/products", {}, 405, "method_not_allowed"),
        ("POST", "/api/v1/auth/otp", {"content": b"{not json"}, 422, "validation_error"),
        (
            "POST",
            "/api/v1/auth/otp",
            {"json": {"phone": "1380013800\u0000"}},
            422,
            "validation_error",
        ),
        (
            "POST",
            "/api/v1/auth/otp",
            {"json": {"phone": "138", "extra": 1}},
            422,
            "validation_error",
        ),
        ("GET", "/api/v1/products?limit=0", {}, 422, "validation_error"),
        ("GET", "/api/v1/products?cursor=garbage", {}, 422, "invalid_cursor"),
        ("GET", "/api/v1/products/99999999999", {}, 422, "validation_error"),
        ("GET", "/api/v1/products/5000", {}, 404, "not_found"),
        ("GET", "/api/v1/me", {}, 401, "unauthorized"),
        ("GET", "/api/v1/me", {"headers": {"Authorization": "Bearer nope"}}, 401, "unauthorized"),
    ],
)
async def test_problem_json(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict, status: int, code: str
) -> None:
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]


async def test_405_keeps_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/products")
    assert "GET" in response.headers["allow"]


async def test_validation_problem_lists_fields(client: httpx.AsyncClient) -> None:
    body = (await client.post("/api/v1/auth/token", json={"phone": "x"})).json()
    locations = [tuple(e["loc"]) for e in body["errors"]]
    assert ("body", "code") in locations


async def test_pages_get_a_readable_error_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/products/424242")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert "Back to the home page" in response.text
