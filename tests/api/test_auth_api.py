from typing import Any

import httpx

PROBLEM = "application/problem+json"


async def sign_in(
    client: httpx.AsyncClient, read_code: Any, phone: str, typed: str | None = None
) -> dict[str, Any]:
    """Sign in through the API as a person would; `typed` is the number as they type it."""
    sent = await client.post("/api/v1/auth/otp", json={"phone": typed or phone})
    assert sent.status_code == 202, sent.text
    code = await read_code(phone)
    response = await client.post("/api/v1/auth/token", json={"phone": typed or phone, "code": code})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_sign_up_by_code_then_me(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    body = await sign_in(
        client, read_code, phone, typed=phone[3:6] + " " + phone[6:]
    )  # national format accepted, E.164 stored
    assert body["user"]["phone"] == phone
    assert body["token_type"] == "bearer"
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_wrong_code_is_a_problem_with_tries_left(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    code = await read_code(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = await client.post("/api/v1/auth/token", json={"phone": phone, "code": wrong})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "wrong_code"
    assert problem["tries_left"] == 4
    assert set(problem) >= {"type", "title", "status", "detail", "code"}


async def test_rate_limit_has_retry_after(client: httpx.AsyncClient, new_phone: Any) -> None:
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    again = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) > 0


async def test_token_revocation_and_listing(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    first = await sign_in(client, read_code, phone)
    h1 = {"Authorization": f"Bearer {first['access_token']}"}
    from mobimart.settings import get_settings

    get_settings().otp_resend_seconds = 0
    second = await sign_in(client, read_code, phone)
    h2 = {"Authorization": f"Bearer {second['access_token']}"}
    tokens = (await client.get("/api/v1/me/tokens", headers=h1)).json()
    assert len(tokens) == 2
    assert sum(t["current"] for t in tokens) == 1
    other = next(t for t in tokens if not t["current"])
    assert (await client.delete(f"/api/v1/me/tokens/{other['id']}", headers=h1)).status_code == 204
    assert (await client.get("/api/v1/me", headers=h2)).status_code == 401
    assert (await client.post("/api/v1/auth/revoke", headers=h1)).status_code == 204
    gone = await client.get("/api/v1/me", headers=h1)
    assert gone.status_code == 401
    assert gone.headers["www-authenticate"] == "Bearer"


async def test_password_token(client: httpx.AsyncClient, read_code: Any, new_phone: Any) -> None:
    phone = new_phone()
    h = {"Authorization": f"Bearer {(await sign_in(client, read_code, phone))['access_token']}"}
    weak = await client.put("/api/v1/me/password", headers=h, json={"password": "1234"})
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    ok = await client.put("/api/v1/me/password", headers=h, json={"password": "long enough pw"})
    assert ok.status_code == 204
    token = await client.post(
        "/api/v1/auth/password-token", json={"phone": phone, "password": "long enough pw"}
    )
    assert token.status_code == 201
    bad = await client.post(
        "/api/v1/auth/password-token", json={"phone": phone, "password": "not it at all"}
    )
    assert bad.status_code == 401
    assert bad.json()["code"] == "wrong_credentials"


async def test_marketing_consent_at_signup(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    body = (
        await client.post(
            "/api/v1/auth/token",
            json={"phone": phone, "code": await read_code(phone), "marketing_sms": True},
        )
    ).json()
    h = {"Authorization": f"Bearer {body['access_token']}"}
    consents = {
        c["channel"]: c for c in (await client.get("/api/v1/me/consents", headers=h)).json()
    }
    assert consents["sms"]["granted"]
    assert consents["sms"]["source"] == "signup"
    assert not consents["push"]["granted"]
    assert consents["push"]["recorded_at"] is None
    off = await client.put("/api/v1/me/consents/sms", headers=h, json={"granted": False})
    assert off.status_code == 200
    assert off.json()["granted"] is False
