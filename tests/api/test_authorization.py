"""Every API route against every kind of caller.

A new route fails `test_every_route_is_in_the_matrix` until it is added to ACCESS with the
roles that may call it. Denied means 401, 403 or 404 (404 when existence itself is private);
allowed means anything else, including a 4xx for a rule unrelated to who is asking.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.app import create_app
from mobimart.campaigns import dlr
from mobimart.catalog import brands, media
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.merchants import service as merchants
from mobimart.search import synonyms
from mobimart.settings import get_settings
from tests import factories
from tests.conftest import (
    PgSnapshot,
    empty_pg,
    header_maker,
    pg_restore,
    pg_snapshot,
    run_in_thread,
    user_maker,
)

ANON, CA, CB, MA_OWNER, MA_STAFF, MB_STAFF, ADMIN = (
    "anonymous",
    "consumer_a",
    "consumer_b",
    "merchant_a_owner",
    "merchant_a_staff",
    "merchant_b_staff",
    "admin",
)
ROLES = [ANON, CA, CB, MA_OWNER, MA_STAFF, MB_STAFF, ADMIN]
SIGNED_IN = set(ROLES) - {ANON}
EVERYONE = set(ROLES)
MERCHANT_A = {MA_OWNER, MA_STAFF}
CHAT = {CA, MA_OWNER, MA_STAFF}  # the world's conversation: consumer A and merchant A's staff
DENIED = {401, 403, 404}
# The world's open shop QR and pay-for-me link: the token in the URL is their credential.
COLLECTION_TOKEN = "collection-token-0001"
SHARE_TOKEN = "share-token-00000001"
SEGMENT_RULES = [{"kind": "has_consent", "channel": "sms"}]  # consumer A consents


@dataclass
class World:
    users: dict[str, User]
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    phones: list[str]


Body = Callable[[World], dict[str, Any]]


def none(_: World) -> dict[str, Any]:
    return {}


# (method, path) -> (roles allowed, request kwargs)
ACCESS: dict[tuple[str, str], tuple[set[str], Body]] = {
    ("GET", "/api/v1/health"): (EVERYONE, none),
    ("POST", "/api/v1/auth/otp"): (EVERYONE, lambda w: {"json": {"phone": "+8613111112222"}}),
    ("POST", "/api/v1/auth/token"): (
        EVERYONE,
        lambda w: {"json": {"phone": "+8613111113333", "code": "123456"}},
    ),
    ("POST", "/api/v1/auth/password-token"): (
        EVERYONE,
        lambda w: {"json": {"phone": w.users[CA].phone, "password": "pass word 1"}},
    ),
    ("POST", "/api/v1/auth/revoke"): (SIGNED_IN, none),
    ("GET", "/api/v1/me"): (SIGNED_IN, none),
    ("PATCH", "/api/v1/me"): (SIGNED_IN, lambda w: {"json": {"display_name": "New"}}),
    ("DELETE", "/api/v1/me"): (SIGNED_IN, none),
    ("GET", "/api/v1/me/tokens"): (SIGNED_IN, none),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): ({CA}, none),
    ("PUT", "/api/v1/me/password"): (SIGNED_IN, lambda w: {"json": {"password": "a new pw 22"}}),
    ("GET", "/api/v1/me/consents"): (SIGNED_IN, none),
    ("PUT", "/api/v1/me/consents/{channel}"): (SIGNED_IN, lambda w: {"json": {"granted": True}}),
    ("GET", "/api/v1/me/real-name"): (SIGNED_IN, none),
    ("POST", "/api/v1/me/real-name"): (
        SIGNED_IN,
        lambda w: {"json": {"name": "韩梅梅", "id_number": factories.resident_id(55)}},
    ),
    ("GET", "/api/v1/me/export"): (SIGNED_IN, none),
    ("POST", "/api/v1/merchants"): (
        SIGNED_IN,
        lambda w: {"json": {**factories.application(9).__dict__}},
    ),
    ("GET", "/api/v1/merchants"): (SIGNED_IN, none),
    ("GET", "/api/v1/merchants/{merchant_id}"): (MERCHANT_A, none),
    ("PUT", "/api/v1/merchants/{merchant_id}/application"): (
        {MA_OWNER},
        lambda w: {"json": {**factories.application(8).__dict__}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/documents"): (
        {MA_OWNER},
        lambda w: {"data": {"kind": "other"}, "files": {"file": ("x.png", factories.PNG)}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/documents"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/documents/{document_id}"): ({MA_OWNER}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/submit"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/staff"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/invitations"): (
        {MA_OWNER},
        lambda w: {"json": {"phone": w.users[CB].phone}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/invitations"): ({MA_OWNER}, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/invitations/{invitation_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/me/invitations"): (SIGNED_IN, none),
    ("POST", "/api/v1/me/invitations/{invitation_id}/accept"): ({CA}, none),
    ("DELETE", "/api/v1/me/invitations/{invitation_id}"): ({CA}, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/staff/{member_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/products"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/products"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Teapot", "price_minor": 4900, "stock": 3}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/products/{product_id}"): (MERCHANT_A, none),
    ("PATCH", "/api/v1/merchants/{merchant_id}/products/{product_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"stock": 7}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/products/{product_id}/{action}"): (
        MERCHANT_A,
        none,
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/products/{product_id}/variants"): (MERCHANT_A, none),
    ("PUT", "/api/v1/merchants/{merchant_id}/products/{product_id}/variants"): (
        MERCHANT_A,
        lambda w: {"json": {"variants": [{"sku": "CUP-1", "price_minor": 900, "stock": 2}]}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/products/{product_id}/media"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/products/{product_id}/media"): (
        MERCHANT_A,
        lambda w: {"files": {"file": ("a.png", factories.PNG, "image/png")}},
    ),
    ("DELETE", "/api/v1/merchants/{merchant_id}/products/{product_id}/media/{media_id}"): (
        MERCHANT_A,
        none,
    ),
    ("POST", "/api/v1/admin/categories"): (
        {ADMIN},
        lambda w: {"json": {"slug": "tea", "name_en": "Tea", "name_zh": "茶"}},
    ),
    ("GET", "/api/v1/brands"): (EVERYONE, none),
    ("GET", "/api/v1/brands/{slug}"): (EVERYONE, none),
    ("POST", "/api/v1/merchants/{merchant_id}/brands"): (
        MERCHANT_A,
        lambda w: {"json": {"name": f"Brand {w.users[ADMIN].id}-{len(w.ids)}"}},
    ),
    ("POST", "/api/v1/admin/brands"): ({ADMIN}, lambda w: {"json": {"name": "Platform Brand"}}),
    ("PATCH", "/api/v1/brands/{brand_id}"): (
        MERCHANT_A | {ADMIN},
        lambda w: {"json": {"story": "Since 1902."}},
    ),
    ("PUT", "/api/v1/brands/{brand_id}/{role}"): (
        MERCHANT_A | {ADMIN},
        lambda w: {"files": {"file": ("logo.png", factories.PNG, "image/png")}},
    ),
    ("GET", "/api/v1/me/brands"): (SIGNED_IN, none),
    ("PUT", "/api/v1/me/brands/{brand_id}"): (SIGNED_IN, none),
    ("DELETE", "/api/v1/me/brands/{brand_id}"): (SIGNED_IN, none),
    ("GET", "/api/v1/admin/synonyms"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/synonyms"): ({ADMIN}, lambda w: {"json": {"words": ["tv", "telly"]}}),
    ("DELETE", "/api/v1/admin/synonyms/{group_id}"): ({ADMIN}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/synonyms"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/synonyms"): (
        MERCHANT_A,
        lambda w: {"json": {"words": ["mug", "cup"]}},
    ),
    ("DELETE", "/api/v1/merchants/{merchant_id}/synonyms/{group_id}"): (MERCHANT_A, none),
    # Kannel's callback: the shared secret is the credential, whoever sends it.
    ("GET", "/api/v1/sms/inbound"): (
        EVERYONE,
        lambda w: {
            "params": {
                "secret": get_settings().sms_inbound_secret.get_secret_value(),
                "from": w.phones[-1],
                "text": "cup",
            }
        },
    ),
    ("POST", "/api/v1/search/voice"): (
        EVERYONE,
        lambda w: {"files": {"audio": ("v.webm", b"not audio", "audio/webm")}},
    ),
    ("GET", "/api/v1/products"): (EVERYONE, none),
    ("GET", "/api/v1/products/{product_id}"): (EVERYONE, none),
    ("GET", "/api/v1/shops"): (EVERYONE, none),
    ("GET", "/api/v1/categories"): (EVERYONE, none),
    ("GET", "/api/v1/search/suggest"): (EVERYONE, lambda w: {"params": {"q": "cu"}}),
    ("GET", "/api/v1/admin/kyc"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/kyc/{merchant_id}"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/kyc/{merchant_id}/documents/{document_id}"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/kyc/{merchant_id}/decision"): (
        {ADMIN},
        lambda w: {"json": {"decision": "approve"}},
    ),
    ("GET", "/api/v1/admin/audit"): ({ADMIN}, none),
    ("GET", "/api/v1/cart"): (SIGNED_IN, none),
    ("PUT", "/api/v1/cart/items/{variant_id}"): (SIGNED_IN, lambda w: {"json": {"quantity": 1}}),
    ("DELETE", "/api/v1/cart/items/{variant_id}"): (SIGNED_IN, none),
    ("GET", "/api/v1/me/addresses"): (SIGNED_IN, none),
    ("POST", "/api/v1/me/addresses"): (
        SIGNED_IN,
        lambda w: {
            "json": {"recipient": "Li", "phone": "+8613912345678", "region": "SH", "detail": "1"}
        },
    ),
    ("DELETE", "/api/v1/me/addresses/{address_id}"): ({CA}, none),
    # An empty cart is refused for its own reason (422), whoever asks.
    ("POST", "/api/v1/orders"): (
        SIGNED_IN,
        lambda w: {"json": {"address_id": w.ids["address_id"]}},
    ),
    ("GET", "/api/v1/orders"): (SIGNED_IN, none),
    ("GET", "/api/v1/orders/{order_id}"): ({CA}, none),
    ("POST", "/api/v1/orders/{order_id}/cancel"): ({CA}, none),
    ("POST", "/api/v1/payments"): (
        {CA},
        lambda w: {"json": {"order_ids": [w.ids["order_id"]], "method": "wallet"}},
    ),
    ("GET", "/api/v1/payments/{payment_id}"): ({CA}, none),
    # The gateway's signature is the credential, whoever sends it.
    ("POST", "/api/v1/payments/notify/sandbox"): (EVERYONE, lambda w: {"data": {"trade_no": "x"}}),
    ("GET", "/api/v1/me/wallet"): (SIGNED_IN, none),
    ("POST", "/api/v1/me/wallet/top-ups"): (SIGNED_IN, lambda w: {"json": {"amount_minor": 1000}}),
    ("POST", "/api/v1/merchants/{merchant_id}/orders/{order_id}/refunds"): (
        MERCHANT_A,
        lambda w: {"json": {"amount_minor": 1}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/balance"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/ledger"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/payouts"): (MERCHANT_A, none),
    ("PUT", "/api/v1/admin/merchants/{merchant_id}/commission"): (
        {ADMIN},
        lambda w: {"json": {"commission_bps": 450}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/payouts"): (
        {MA_OWNER},
        lambda w: {"json": {"amount_minor": 1}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/promotions"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/promotions"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Ten off", "kind": "fixed", "scope": "order", "value": 10}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/promotions/{promotion_id}/end"): (MERCHANT_A, none),
    ("GET", "/api/v1/admin/promotions"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/promotions"): (
        {ADMIN},
        lambda w: {"json": {"name": "Site", "kind": "free_shipping", "scope": "order"}},
    ),
    ("POST", "/api/v1/admin/promotions/{promotion_id}/end"): ({ADMIN}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/flash-sales"): (
        MERCHANT_A,
        lambda w: {
            "json": {
                "variant_id": w.ids["variant_id"],
                "price_minor": 500,
                "quantity": 1,
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2030-01-02T00:00:00Z",
            }
        },
    ),
    ("GET", "/api/v1/flash-sales/{sale_id}"): (EVERYONE, none),
    ("POST", "/api/v1/flash-sales/{sale_id}/orders"): (
        {CA},
        lambda w: {"json": {"address_id": w.ids["address_id"]}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/collections"): (
        MERCHANT_A,
        lambda w: {"json": {"amount_minor": 100, "note": "table 4"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/collections/{collection_id}"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/collections/{collection_id}/qr.png"): (
        MERCHANT_A,
        none,
    ),
    ("GET", "/api/v1/collections/{collection_token}"): (EVERYONE, none),
    # Anyone signed in may pay a shop's QR or a friend's order; the world's wallets are empty,
    # so every allowed caller is refused for that (409), after the sign-in check.
    ("POST", "/api/v1/collections/{collection_token}/pay"): (
        SIGNED_IN,
        lambda w: {"json": {"amount_minor": 100}},
    ),
    ("POST", "/api/v1/me/payment-codes"): (SIGNED_IN, none),
    # No customer shows this code: the shop is told so (422), others never get that far.
    ("POST", "/api/v1/merchants/{merchant_id}/payment-codes/charge"): (
        MERCHANT_A,
        lambda w: {"json": {"code": "1" * 18, "amount_minor": 100}},
    ),
    ("POST", "/api/v1/orders/{order_id}/share"): ({CA}, none),
    ("GET", "/api/v1/shared-orders/{share_token}"): (EVERYONE, none),
    ("POST", "/api/v1/shared-orders/{share_token}/pay"): (
        SIGNED_IN,
        lambda w: {"json": {"method": "wallet"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/orders"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/orders/{order_id}"): (MERCHANT_A, none),
    # The world's order is unpaid: the shop may try (409), nobody else may see it (404).
    ("POST", "/api/v1/merchants/{merchant_id}/orders/{order_id}/shipment"): (
        MERCHANT_A,
        lambda w: {"json": {"carrier": "sf", "tracking_number": "SF1234567890"}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/orders/{order_id}/tracking-events"): (
        MERCHANT_A,
        lambda w: {"json": {"status": "in_transit"}},
    ),
    ("GET", "/api/v1/orders/{order_id}/tracking"): ({CA}, none),
    ("POST", "/api/v1/orders/{order_id}/receive"): ({CA}, none),
    ("GET", "/api/v1/orders/{order_id}/receipt"): ({CA}, none),
    # A carrier's callback: only its signature lets it in, never a bearer token of any role.
    ("POST", "/api/v1/logistics/carriers/{carrier}/events"): (
        set(),
        lambda w: {"json": {"tracking_number": "SF1234567890", "events": []}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/webhooks"): (
        {MA_OWNER},
        lambda w: {"json": {"url": "https://hooks.example.com/b", "events": ["order.paid"]}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/webhooks"): (MERCHANT_A, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/webhooks/{endpoint_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/webhooks/{endpoint_id}/deliveries"): (
        MERCHANT_A,
        none,
    ),
    # The world's delivery is pending, so resending it is refused for its state (409).
    (
        "POST",
        "/api/v1/merchants/{merchant_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ): (MERCHANT_A, none),
    # Reviews and product Q&A.
    ("GET", "/api/v1/products/{product_id}/reviews"): (EVERYONE, none),
    ("GET", "/api/v1/products/{product_id}/rating"): (EVERYONE, none),
    ("GET", "/api/v1/shops/{shop_id}/rating"): (EVERYONE, none),
    ("GET", "/api/v1/me/reviewable"): (SIGNED_IN, none),
    # Consumer A's delivered line: only its buyer reviews it (others 403 "not_buyer").
    ("POST", "/api/v1/order-lines/{line_id}/review"): ({CA}, lambda w: {"json": {"stars": 4}}),
    ("PATCH", "/api/v1/reviews/{review_id}"): ({CA}, lambda w: {"json": {"stars": 3}}),
    ("POST", "/api/v1/reviews/{review_id}/photos"): (
        {CA},
        lambda w: {"files": {"files": ("a.png", factories.PNG, "image/png")}},
    ),
    # Consumer A wrote the review: a vote on one's own review is refused (403).
    ("PUT", "/api/v1/reviews/{review_id}/helpful"): (SIGNED_IN - {CA}, none),
    ("DELETE", "/api/v1/reviews/{review_id}/helpful"): (SIGNED_IN - {CA}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/reviews"): (MERCHANT_A, none),
    ("PUT", "/api/v1/merchants/{merchant_id}/reviews/{review_id}/reply"): (
        MERCHANT_A,
        lambda w: {"json": {"body": "Thank you!"}},
    ),
    ("GET", "/api/v1/products/{product_id}/questions"): (EVERYONE, none),
    ("POST", "/api/v1/products/{product_id}/questions"): (
        SIGNED_IN,
        lambda w: {"json": {"body": "Does it come in blue?"}},
    ),
    ("GET", "/api/v1/questions/{question_id}/answers"): (EVERYONE, none),
    # The shop's staff and buyers of the product (consumer A) answer; others 403.
    ("POST", "/api/v1/questions/{question_id}/answers"): (
        MERCHANT_A | {CA},
        lambda w: {"json": {"body": "Yes."}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/questions"): (MERCHANT_A, none),
    # Chat.
    ("POST", "/api/v1/conversations"): (
        SIGNED_IN,
        lambda w: {"json": {"shop_id": w.ids["chat_shop_id"]}},
    ),
    ("GET", "/api/v1/conversations"): (SIGNED_IN, none),
    ("GET", "/api/v1/conversations/{conversation_id}/messages"): (CHAT, none),
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): (
        CHAT,
        lambda w: {"json": {"client_id": "matrix-1", "body": "Is it in stock?"}},
    ),
    ("POST", "/api/v1/conversations/{conversation_id}/images"): (
        CHAT,
        lambda w: {"files": {"file": ("a.png", factories.PNG, "image/png")}},
    ),
    ("GET", "/api/v1/conversations/{conversation_id}/images/{message_id}"): (CHAT, none),
    ("POST", "/api/v1/conversations/{conversation_id}/read"): (
        CHAT,
        lambda w: {"json": {"seq": 1}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/conversations"): (MERCHANT_A, none),
    # The world's conversation is merchant A staff's: the owner's pick-up is refused (409).
    ("POST", "/api/v1/merchants/{merchant_id}/conversations/{conversation_id}/pick-up"): (
        MERCHANT_A,
        none,
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/conversations/{conversation_id}/transfer"): (
        MERCHANT_A,
        lambda w: {"json": {"user_id": w.users[MA_STAFF].id}},
    ),
    # Notifications.
    ("GET", "/api/v1/me/notifications"): (SIGNED_IN, none),
    ("GET", "/api/v1/me/notifications/unread-count"): (SIGNED_IN, none),
    # Consumer A's notification: marking it is a no-op for anyone else (200, marked 0).
    ("POST", "/api/v1/me/notifications/read"): (
        SIGNED_IN,
        lambda w: {"json": {"ids": [w.ids["notification_id"]]}},
    ),
    # Moderation and merchant feedback.
    ("GET", "/api/v1/admin/blocked-words"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/blocked-words"): ({ADMIN}, lambda w: {"json": {"word": "刷好评"}}),
    ("DELETE", "/api/v1/admin/blocked-words/{word_id}"): ({ADMIN}, none),
    # Anyone signed in may report a question on show (its author gets a 422, CA a 409).
    ("POST", "/api/v1/reports"): (
        SIGNED_IN,
        lambda w: {
            "json": {
                "subject": "question",
                "subject_id": w.ids["reported_question_id"],
                "reason": "spam",
            }
        },
    ),
    ("GET", "/api/v1/admin/reports"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/reports/{report_id}/resolve"): (
        {ADMIN},
        lambda w: {"json": {"action": "dismiss"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/feedback"): (
        MERCHANT_A,
        lambda w: {"params": {"product_id": w.ids["product_id"], "weeks": 4}},
    ),
    # Marketing: segments and consent.
    ("GET", "/api/v1/merchants/{merchant_id}/segments"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/segments"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Texts", "rules": SEGMENT_RULES}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/segments/preview"): (
        MERCHANT_A,
        lambda w: {"json": {"match": "any", "rules": SEGMENT_RULES}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/segments/{segment_id}"): (MERCHANT_A, none),
    ("PUT", "/api/v1/merchants/{merchant_id}/segments/{segment_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Renamed", "rules": SEGMENT_RULES}},
    ),
    # Deleting a segment is the owner's: staff get 403.
    ("DELETE", "/api/v1/merchants/{merchant_id}/segments/{segment_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/segments/{segment_id}/members"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/segments/{segment_id}/export.csv"): (
        MERCHANT_A,
        none,
    ),
    ("GET", "/api/v1/admin/segments"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/segments"): (
        {ADMIN},
        lambda w: {"json": {"name": "Platform texts", "rules": SEGMENT_RULES}},
    ),
    ("POST", "/api/v1/admin/segments/preview"): (
        {ADMIN},
        lambda w: {"json": {"rules": SEGMENT_RULES}},
    ),
    ("GET", "/api/v1/admin/segments/{platform_segment_id}"): ({ADMIN}, none),
    ("PUT", "/api/v1/admin/segments/{platform_segment_id}"): (
        {ADMIN},
        lambda w: {"json": {"name": "Renamed", "rules": SEGMENT_RULES}},
    ),
    ("DELETE", "/api/v1/admin/segments/{platform_segment_id}"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/segments/{platform_segment_id}/members"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/segments/{platform_segment_id}/export.csv"): ({ADMIN}, none),
    # Marketing: SMS and push campaigns, short links, campaign reports.
    # The world's campaigns have no segment: send and schedule are refused (422) for allowed
    # callers, so the matrix never enqueues a real send.
    ("GET", "/api/v1/merchants/{merchant_id}/campaigns"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns"): (
        MERCHANT_A,
        lambda w: {
            "json": {
                "name": "Matrix",
                "channel": "sms",
                "template": "{name}: {link}",
                "link_url": "/",
                "segment_id": w.ids["campaign_segment_id"],
            }
        },
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}"): (MERCHANT_A, none),
    ("PATCH", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Renamed"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/estimate"): (
        MERCHANT_A,
        none,
    ),
    # The world's campaign is an SMS one: paid per part, so the owner starts it.
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/send"): ({MA_OWNER}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/schedule"): (
        {MA_OWNER},
        lambda w: {"json": {"at": "2030-01-01T01:00:00Z"}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/pause"): (MERCHANT_A, none),
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/resume"): (
        {MA_OWNER},
        none,
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/cancel"): (
        MERCHANT_A,
        none,
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/campaigns/{campaign_id}/report"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/marketing"): (MERCHANT_A, none),
    ("GET", "/api/v1/admin/campaigns"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/campaigns"): (
        {ADMIN},
        lambda w: {"json": {"name": "Mall", "channel": "inbox", "template": "Hi {name}"}},
    ),
    ("GET", "/api/v1/admin/campaigns/{platform_campaign_id}"): ({ADMIN}, none),
    ("PATCH", "/api/v1/admin/campaigns/{platform_campaign_id}"): (
        {ADMIN},
        lambda w: {"json": {"template": "Hello {name}"}},
    ),
    ("GET", "/api/v1/admin/campaigns/{platform_campaign_id}/estimate"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/campaigns/{platform_campaign_id}/send"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/campaigns/{platform_campaign_id}/schedule"): (
        {ADMIN},
        lambda w: {"json": {"at": "2030-01-01T01:00:00Z"}},
    ),
    ("POST", "/api/v1/admin/campaigns/{platform_campaign_id}/cancel"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/campaigns/{platform_campaign_id}/report"): ({ADMIN}, none),
    # Marketing: campaign sending and delivery reports.
    # Kannel's delivery reports: the per-message signature is the credential.
    ("GET", "/api/v1/sms/dlr"): (
        EVERYONE,
        lambda w: {"params": {"m": 1, "k": dlr.signature(1), "s": 8}},
    ),
    # Marketing: QR codes and attribution.
    ("POST", "/api/v1/merchants/{merchant_id}/qr-codes"): (
        MERCHANT_A,
        lambda w: {
            "json": {"label": "Shelf", "target": {"kind": "product", "id": w.ids["product_id"]}}
        },
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/qr-codes"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/qr-codes/sheet"): (
        MERCHANT_A,
        lambda w: {"params": {"ids": [w.ids["qr_id"]], "copies": 2}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/qr-codes/{qr_id}"): (MERCHANT_A, none),
    ("PATCH", "/api/v1/merchants/{merchant_id}/qr-codes/{qr_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"label": "Shelf 2", "target": {"kind": "url", "url": "/c/x"}}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/qr-codes/{qr_id}/archive"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/qr-codes/{qr_id}/image"): (
        MERCHANT_A,
        lambda w: {"params": {"format": "svg"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/qr-codes/{qr_id}/stats"): (MERCHANT_A, none),
    # Marketing: lucky draws and shop follows.
    ("POST", "/api/v1/merchants/{merchant_id}/draws"): (
        MERCHANT_A,
        lambda w: {
            "json": {
                "name": "Matrix draw",
                "opens_at": dt.datetime.now(dt.UTC).isoformat(),
                "closes_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
                "prizes": [{"name": "Mug", "kind": "physical", "chance_ppm": 10, "quantity": 1}],
            }
        },
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/draws"): (MERCHANT_A, none),
    ("GET", "/api/v1/merchants/{merchant_id}/draws/{draw_id}"): (MERCHANT_A, none),
    ("PATCH", "/api/v1/merchants/{merchant_id}/draws/{draw_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Renamed"}},
    ),
    ("POST", "/api/v1/merchants/{merchant_id}/draws/{draw_id}/close"): (MERCHANT_A, none),
    # The world's draw has an entry: the owner is told 409, never 403/404.
    ("DELETE", "/api/v1/merchants/{merchant_id}/draws/{draw_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/draws/{draw_id}/claims"): (MERCHANT_A, none),
    ("GET", "/api/v1/draws/{draw_id}"): (EVERYONE, none),
    ("GET", "/api/v1/draws/{draw_id}/verify"): (EVERYONE, none),
    ("POST", "/api/v1/draws/{draw_id}/entries"): (SIGNED_IN, lambda w: {"json": {}}),
    ("GET", "/api/v1/draws/{draw_id}/entries/{entry_id}"): ({CA}, none),
    ("PUT", "/api/v1/draws/{draw_id}/entries/{entry_id}/claim"): (
        {CA},
        lambda w: {"json": {"name": "Han", "phone": w.users[CA].phone, "address": "1 Road, SH"}},
    ),
    ("PUT", "/api/v1/shops/{shop_id}/follow"): (SIGNED_IN, none),
    ("DELETE", "/api/v1/shops/{shop_id}/follow"): (SIGNED_IN, none),
    # Marketing: Wi-Fi portal, stores, geofences and offers.
    # Portals answer with the gateway's shared key: owners only, staff get 403.
    ("POST", "/api/v1/merchants/{merchant_id}/wifi-portals"): (
        {MA_OWNER},
        lambda w: {"json": {"name": "Matrix cafe"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/wifi-portals"): ({MA_OWNER}, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/wifi-portals/{portal_id}"): ({MA_OWNER}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/wifi-portals/{portal_id}/rotate-key"): (
        {MA_OWNER},
        none,
    ),
    ("POST", "/api/v1/admin/wifi-portals"): ({ADMIN}, lambda w: {"json": {"name": "Atrium"}}),
    ("GET", "/api/v1/admin/wifi-portals"): ({ADMIN}, none),
    ("DELETE", "/api/v1/admin/wifi-portals/{platform_portal_id}"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/wifi-portals/{platform_portal_id}/rotate-key"): ({ADMIN}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/stores"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Kiosk", "lat": 31.23, "lng": 121.47}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/stores"): (MERCHANT_A, none),
    # Staff add stores, fences and offers; deleting them is the owner's.
    ("DELETE", "/api/v1/merchants/{merchant_id}/stores/{store_id}"): ({MA_OWNER}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/geofences"): (
        MERCHANT_A,
        lambda w: {"json": {"name": "Zone", "store_id": w.ids["store_id"], "radius_m": 100}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/geofences"): (MERCHANT_A, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/geofences/{geofence_id}"): ({MA_OWNER}, none),
    ("POST", "/api/v1/merchants/{merchant_id}/offers"): (
        MERCHANT_A,
        lambda w: {"json": {"geofence_id": w.ids["geofence_id"], "title": "Tea"}},
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/offers"): (MERCHANT_A, none),
    ("DELETE", "/api/v1/merchants/{merchant_id}/offers/{offer_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/nearby"): (EVERYONE, lambda w: {"params": {"lat": 31.23, "lng": 121.47}}),
    ("POST", "/api/v1/me/position"): (SIGNED_IN, lambda w: {"json": {"lat": 31.23, "lng": 121.47}}),
    # Marketing: Web Push subscriptions and automations.
    ("GET", "/api/v1/push/key"): (EVERYONE, none),
    ("GET", "/api/v1/me/push-subscriptions"): (SIGNED_IN, none),
    ("POST", "/api/v1/me/push-subscriptions"): (
        SIGNED_IN,
        lambda w: {"json": factories.push_subscription_json("http://127.0.0.1:9/push/other")},
    ),
    # Consumer A's device: anyone else's is not found.
    ("DELETE", "/api/v1/me/push-subscriptions/{subscription_id}"): ({CA}, none),
    ("POST", "/api/v1/me/push-test"): (SIGNED_IN, none),
    ("GET", "/api/v1/merchants/{merchant_id}/automations"): (MERCHANT_A, none),
    # A points flow gives value away: the owner starts it (staff may save it paused).
    ("POST", "/api/v1/merchants/{merchant_id}/automations"): (
        {MA_OWNER},
        lambda w: {
            "json": {
                "name": "Thanks",
                "trigger": "qr_scan",
                "action": "points",
                "action_config": {"points": 5},
            }
        },
    ),
    ("GET", "/api/v1/merchants/{merchant_id}/automations/{automation_id}"): (MERCHANT_A, none),
    ("PATCH", "/api/v1/merchants/{merchant_id}/automations/{automation_id}"): (
        MERCHANT_A,
        lambda w: {"json": {"active": False}},
    ),
    # Deleting a flow and its history is the owner's; staff can pause it.
    ("DELETE", "/api/v1/merchants/{merchant_id}/automations/{automation_id}"): ({MA_OWNER}, none),
    ("GET", "/api/v1/merchants/{merchant_id}/automations/{automation_id}/runs"): (
        MERCHANT_A,
        none,
    ),
    ("GET", "/api/v1/admin/automations"): ({ADMIN}, none),
    ("POST", "/api/v1/admin/automations"): (
        {ADMIN},
        lambda w: {
            "json": {
                "name": "Mall Wi-Fi",
                "trigger": "wifi_signup",
                "action": "points",
                "action_config": {"points": 5},
            }
        },
    ),
    ("GET", "/api/v1/admin/automations/{platform_automation_id}"): ({ADMIN}, none),
    ("PATCH", "/api/v1/admin/automations/{platform_automation_id}"): (
        {ADMIN},
        lambda w: {"json": {"active": False}},
    ),
    ("DELETE", "/api/v1/admin/automations/{platform_automation_id}"): ({ADMIN}, none),
    ("GET", "/api/v1/admin/automations/{platform_automation_id}/runs"): ({ADMIN}, none),
}


@functools.cache
def _password_hash() -> str:
    """Consumer A's password, hashed once: argon2 takes 0.1 s, the matrix builds 250 worlds."""
    from mobimart.accounts.service import _hash_password

    return _hash_password("pass word 1")


def api_routes() -> set[tuple[str, str]]:
    """Read from the OpenAPI document: every API route is published there."""
    paths = create_app().openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_every_route_is_in_the_matrix() -> None:
    routes = api_routes()
    assert routes - ACCESS.keys() == set(), "new routes: add them to ACCESS"
    assert ACCESS.keys() - routes == set(), "ACCESS names routes that no longer exist"


async def build_world(db: Database, make_user: Any, auth_headers: Any) -> World:
    users = {role: await make_user(admin=role == ADMIN, name=role) for role in ROLES[1:]}
    owner_b = await make_user(name="owner_b")
    a = await factories.merchant(db, users[MA_OWNER], admin=users[ADMIN], n=1)
    b = await factories.merchant(db, owner_b, admin=users[ADMIN], n=2)
    member_a = await factories.add_staff(db, a, users[MA_OWNER], users[MA_STAFF])
    await factories.add_staff(db, b, owner_b, users[MB_STAFF])
    async with db.session() as s:
        invitation = await merchants.invite_staff(
            s, merchant=a, actor=await s.merge(users[MA_OWNER]), phone=users[CA].phone
        )
        product = await catalog.create_product(
            s, merchant=a, name="Cup", price_minor=1000, stock=5, publish=True
        )
        brand = await brands.create_brand(s, merchant=a, name="Acme")
        group = await synonyms.add_group(s, words=["mug", "cup"], merchant_id=a.id)
        picture = await media.add_product_media(
            s, merchant=a, product_id=product.id, data=factories.PNG
        )
        doc = (await merchants.documents(s, merchant_id=a.id))[0]
        consumer_a = await s.get(User, users[CA].id)
        assert consumer_a is not None
        consumer_a.password_hash = _password_hash()  # as set_password stores it
        _, token_a = await accounts.issue_token(
            s, user=consumer_a, kind="api", label="other device"
        )
        shopping = await _shopping(s, a, product.id, consumer_a)
        social = {
            **await _reviews_world(s, a, product.id, users),
            **await _chat_world(s, a, product.id, users),
            **await _notifications_world(s, users),
            **await _moderation_world(s, a, product.id, users),
            **await _feedback_world(s, a, product.id, users),
        }
        marketing: dict[str, int] = {
            # Marketing worlds, one line per part.
            **await _campaigns_world(s, a, product.id, users),
            **await _qr_world(s, a, product.id, users),
            **await _draws_world(s, a, product.id, users),
            **await _segments_world(s, a, product.id, users),
            **await _places_world(s, a, product.id, users),
            **await _push_world(s, a, product.id, users),
        }
    headers = {ANON: {}} | {role: await auth_headers(user) for role, user in users.items()}
    phones = [u.phone for u in [*users.values(), owner_b]] + ["+8613912345678", "+8613700000001"]
    return World(
        users=users,
        headers=headers,
        ids={
            "merchant_id": a.id,
            "document_id": doc.id,
            "member_id": member_a,
            "invitation_id": invitation.id,
            "token_id": token_a.id,
            "product_id": product.id,
            "brand_id": brand.id,
            "media_id": picture.id,
            "group_id": group.id,
            **shopping,
            **social,
            **marketing,
        },
        phones=phones,
    )


async def _shopping(s: Any, a: Any, product_id: int, buyer: User) -> dict[str, int]:
    """A paid order of consumer A at merchant A, a live flash sale and a promotion of A's."""
    from mobimart.checkout import service as checkout
    from mobimart.payments import service as payments
    from mobimart.promotions import flashsale
    from mobimart.promotions import service as promotions
    from mobimart.promotions.domain import Kind, Scope
    from mobimart.webhooks import service as webhooks

    variant = (await catalog.variants_of(s, product_id=product_id))[0]
    address = await checkout.add_address(
        s,
        user=buyer,
        spec=checkout.AddressSpec("Han", "+8613912345678", "Shanghai", "1 Road"),
    )
    cart = await checkout.cart_of(s, user_id=buyer.id)
    await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
    (order,) = await checkout.place(s, user=buyer, address_id=address.id)
    payment, _ = await payments.pay(s, payer=buyer, order_ids=[order.id], method="gateway")
    now = dt.datetime.now(dt.UTC)
    sale = await flashsale.create(
        s,
        merchant_id=a.id,
        spec=flashsale.SaleSpec(
            variant.id, 500, 2, 1, now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1)
        ),
    )
    promotion = await promotions.create(
        s, merchant_id=a.id, spec=promotions.Spec("Five off", Kind.fixed, Scope.order, value=500)
    )
    endpoint = await webhooks.create_endpoint(
        s, merchant_id=a.id, url="https://hooks.example.com/a", events=["order.paid"]
    )
    await webhooks.emit(s, merchant_id=a.id, event="order.paid", data={"order": order.number})
    await s.commit()
    (delivery,) = await webhooks.deliveries(
        s, merchant_id=a.id, endpoint_id=endpoint.id, before=None, limit=1
    )
    from sqlalchemy import update

    from mobimart.checkout.models import Order
    from mobimart.payments.models import Collection
    from mobimart.signing import token_digest

    collection = Collection(
        token=COLLECTION_TOKEN,
        merchant_id=a.id,
        amount_minor=100,
        currency="CNY",
        expires_at=now + dt.timedelta(hours=1),
    )
    s.add(collection)
    await s.execute(
        update(Order).where(Order.id == order.id).values(share_hash=token_digest(SHARE_TOKEN))
    )
    await s.commit()
    return {
        "variant_id": variant.id,
        "address_id": address.id,
        "order_id": order.id,
        "payment_id": payment.id,
        "sale_id": sale.id,
        "promotion_id": promotion.id,
        "collection_id": collection.id,
        "endpoint_id": endpoint.id,
        "delivery_id": delivery.id,
    }


async def _reviews_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Reviews and Q&A of merchant A's product: consumer A's delivered order of it (two
    lines, one reviewed) and consumer B's question. The order is written as rows: the
    matrix builds hundreds of worlds and the delivery steps are tested elsewhere."""
    import uuid

    from mobimart.checkout.models import Order, OrderLine
    from mobimart.social import questions, reviews

    product = await catalog.merchant_product(s, merchant_id=a.id, product_id=product_id)
    variant = (await catalog.variants_of(s, product_id=product_id))[0]
    now = dt.datetime.now(dt.UTC)
    order = Order(
        number=f"RV{uuid.uuid4().hex[:12]}",
        checkout_ref=uuid.uuid4().hex,
        user_id=users[CA].id,
        merchant_id=a.id,
        shop_id=product.shop_id,
        status="delivered",
        currency="CNY",
        subtotal_minor=2000,
        discount_minor=0,
        shipping_minor=0,
        shipping_discount_minor=0,
        total_minor=2000,
        expires_at=now,
        paid_at=now,
        shipped_at=now,
        delivered_at=now,
    )
    s.add(order)
    await s.flush()
    lines = [
        OrderLine(
            order_id=order.id,
            product_id=product_id,
            variant_id=variant.id,
            name="Cup",
            sku=variant.sku,
            options={},
            list_price_minor=1000,
            unit_price_minor=1000,
            quantity=1,
            discount_minor=0,
            total_minor=1000,
        )
        for _ in range(2)
    ]
    s.add_all(lines)
    await s.commit()
    review = await reviews.create(s, user=users[CA], line_id=lines[0].id, stars=5, body="Nice")
    question = await questions.ask(s, user=users[CB], product_id=product_id, body="Microwave?")
    return {
        "shop_id": product.shop_id,
        "line_id": lines[1].id,
        "review_id": review.id,
        "question_id": question.id,
    }


async def _chat_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Consumer A's conversation with merchant A's shop, picked up by A's staff member: a
    text and an image from the consumer."""
    from mobimart.catalog.models import Product
    from mobimart.social import chat
    from mobimart.social.models import Conversation, Message

    product = await s.get(Product, product_id)
    now = dt.datetime.now(dt.UTC)
    conversation = Conversation(
        user_id=users[CA].id,
        shop_id=product.shop_id,
        merchant_id=a.id,
        assignee_id=users[MA_STAFF].id,
        last_seq=2,
        last_message_at=now,
    )
    s.add(conversation)
    await s.flush()
    stored = chat.image_store().save(factories.PNG, allowed=chat.IMAGE_TYPES, max_bytes=10_000)
    image = Message(
        conversation_id=conversation.id,
        sender_id=users[CA].id,
        seq=2,
        side="consumer",
        kind="image",
        storage_key=stored.key,
    )
    s.add_all(
        [
            Message(
                conversation_id=conversation.id,
                sender_id=users[CA].id,
                seq=1,
                side="consumer",
                kind="text",
                body="Hello",
            ),
            image,
        ]
    )
    await s.commit()
    return {
        "chat_shop_id": product.shop_id,
        "conversation_id": conversation.id,
        "message_id": image.id,
    }


async def _notifications_world(s: Any, users: dict[str, User]) -> dict[str, int]:
    """Consumer A's inbox."""
    from mobimart.notifications import service as notifications

    note = await notifications.notify(s, user_id=users[CA].id, kind="system", title="Welcome")
    await s.commit()
    return {"notification_id": note.id}


async def _moderation_world(
    s: Any, a: Any, product_id: int, users: dict[str, User]
) -> dict[str, int]:
    """The word list and the report queue: consumer A's open report on B's question."""
    from mobimart.moderation.models import BlockedWord, Report
    from mobimart.social.models import Question

    word = BlockedWord(word="加微信", added_by=users[ADMIN].id)
    question = Question(
        product_id=product_id, merchant_id=a.id, user_id=users[CB].id, body="Any discount?"
    )
    s.add_all([word, question])
    await s.flush()
    report = Report(
        reporter_id=users[CA].id, subject="question", subject_id=question.id, reason="Spam"
    )
    s.add(report)
    await s.commit()
    return {"word_id": word.id, "reported_question_id": question.id, "report_id": report.id}


async def _feedback_world(
    s: Any, a: Any, product_id: int, users: dict[str, User]
) -> dict[str, int]:
    """Something for merchant A's feedback to show: a question unanswered for three days."""
    from mobimart.social.models import Question

    s.add(
        Question(
            product_id=product_id,
            merchant_id=a.id,
            user_id=users[CB].id,
            body="Does it fit a dishwasher?",
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
        )
    )
    await s.commit()
    return {}


async def _qr_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Merchant A's dynamic code on the world's product, scanned once."""
    from mobimart.campaigns import qr

    code = await qr.create(
        s,
        merchant_id=a.id,
        spec=qr.Spec("Counter", qr.Target(qr.TargetKind.product, product_id), dynamic=True),
    )
    await qr.scan(
        s, code=code, user_id=users[CA].id, visitor=None, user_agent="iPhone Mobile", referrer=""
    )
    await s.commit()
    return {"qr_id": code.id}


async def _draws_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Merchant A's open draw of a physical prize, won by consumer A, who claimed it with
    their own number: the claim list must show it masked."""
    from mobimart.campaigns import draws

    now = dt.datetime.now(dt.UTC)
    draw = await draws.create(
        s,
        merchant_id=a.id,
        spec=draws.DrawSpec(
            "Matrix",
            now - dt.timedelta(minutes=1),
            now + dt.timedelta(days=1),
            [draws.PrizeSpec("Vase", "physical", 1_000_000, 20)],
        ),
    )
    winner = await s.merge(users[CA])
    entry = await draws.enter(s, draw_id=draw.id, user=winner, source="qr")
    await draws.claim(
        s,
        user=winner,
        draw_id=draw.id,
        entry_id=entry.id,
        name="Han",
        phone=winner.phone,
        address="1 Road, Shanghai",
    )
    return {"draw_id": draw.id, "entry_id": entry.id}


async def _segments_world(
    s: Any, a: Any, product_id: int, users: dict[str, User]
) -> dict[str, int]:
    """Merchant A's segment and a platform one, both of people with SMS consent (consumer A),
    so member lists and exports have a phone number to mask."""
    from mobimart.accounts import privacy
    from mobimart.accounts.domain import Channel
    from mobimart.campaigns import segments

    await privacy.set_consent(
        s, user_id=users[CA].id, channel=Channel.sms, granted=True, source="t"
    )
    mine = await segments.create(
        s, merchant_id=a.id, name="Texts", match="all", conditions=SEGMENT_RULES
    )
    platform = await segments.create(
        s, merchant_id=None, name="All texts", match="all", conditions=SEGMENT_RULES
    )
    return {"segment_id": mine.id, "platform_segment_id": platform.id}


async def _places_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Merchant A's Wi-Fi portal, a platform one, and a store with a geofence and an offer."""
    from mobimart.campaigns import places, wifi

    portal = await wifi.create(s, merchant_id=a.id, name="Cafe")
    platform = await wifi.create(s, merchant_id=None, name="Mall")
    store = await places.create_store(s, merchant_id=a.id, name="Kiosk", lat=31.23, lng=121.47)
    fence = await places.create_geofence(
        s, merchant_id=a.id, name="Zone", store_id=store.id, radius_m=100
    )
    offer = await places.create_offer(s, merchant_id=a.id, geofence_id=fence.id, title="Tea")
    return {
        "portal_id": portal.id,
        "platform_portal_id": platform.id,
        "store_id": store.id,
        "geofence_id": fence.id,
        "offer_id": offer.id,
    }


async def _push_world(s: Any, a: Any, product_id: int, users: dict[str, User]) -> dict[str, int]:
    """Consumer A's browser subscribed to pushes, and merchant A's automation and a platform
    one, each with a run of consumer A's (a QR scan gives points)."""
    from mobimart.campaigns import automations, events
    from mobimart.notifications import push

    keys = factories.push_subscription_json("http://127.0.0.1:9/push/a")["keys"]
    device = await push.subscribe(
        s,
        user_id=users[CA].id,
        endpoint="http://127.0.0.1:9/push/a",
        p256dh=keys["p256dh"],
        auth=keys["auth"],
        label="Phone",
    )
    await s.commit()
    flow = await automations.create(
        s,
        merchant_id=a.id,
        spec=automations.Spec("Scan", "qr_scan", "points", {"points": 5}),
    )
    platform = await automations.create(
        s,
        merchant_id=None,
        spec=automations.Spec("Mall", "qr_scan", "points", {"points": 1}),
    )
    await events.record(s, kind=events.Kind.qr_scan, user_id=users[CA].id, merchant_id=a.id)
    await s.commit()
    return {
        "subscription_id": device.id,
        "automation_id": flow.id,
        "platform_automation_id": platform.id,
    }


async def _campaigns_world(
    s: Any, a: Any, product_id: int, users: dict[str, User]
) -> dict[str, int]:
    """A segment of merchant A's, a draft of A's and a platform draft, both without a segment."""
    from mobimart.campaigns.models import Campaign, Segment

    segment = Segment(merchant_id=a.id, name="Matrix segment", member_count=0)
    mine = Campaign(merchant_id=a.id, name="A's", channel="sms", template="Hi {name}")
    platform = Campaign(merchant_id=None, name="Mall", channel="inbox", template="Hi {name}")
    s.add_all([segment, mine, platform])
    await s.commit()
    return {
        "campaign_segment_id": segment.id,
        "campaign_id": mine.id,
        "platform_campaign_id": platform.id,
    }


def fill(path: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        fixed = {
            "channel": "sms",
            "action": "archive",
            "role": "logo",
            "slug": "acme",
            "carrier": "sf",
            "collection_token": COLLECTION_TOKEN,
            "share_token": SHARE_TOKEN,
        }
        return fixed.get(name) or str(world.ids[name])

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world_template(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[World, Path, Path | PgSnapshot]:
    """The world is built once per database, then each test gets a copy of its rows: building
    it through the services for each of the matrix's hundreds of rows took most of the suite's
    time."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("world") / "world.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        empty_pg(url)

    async def build() -> World:
        database = Database(url, null_pool=True)
        try:
            return await build_world(database, user_maker(database), header_maker(database))
        finally:
            await database.dispose()

    # The world's files (documents, pictures) go to a folder of its own, copied for each test.
    settings, var_dir = get_settings(), tmp_path_factory.mktemp("world-var")
    kept, settings.var_dir = settings.var_dir, var_dir
    try:
        world = run_in_thread(build)
    finally:
        settings.var_dir = kept
    return world, var_dir, path if request.param == "sqlite" else pg_snapshot(url)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest,
    world_template: tuple[World, Path, Path | PgSnapshot],
    tmp_path: Path,
    _fresh_settings: None,
) -> str:
    """This module's databases: a fresh copy of the world (rows and files) for every test."""
    _, var_dir, saved = world_template
    shutil.copytree(var_dir, get_settings().var_dir, dirs_exist_ok=True)
    if isinstance(saved, Path):
        path = tmp_path / "db.sqlite"
        shutil.copyfile(saved, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    empty_pg(url)
    pg_restore(url, saved)
    return url


@pytest.fixture
def world(world_template: tuple[World, Path, Path | PgSnapshot]) -> World:
    return world_template[0]


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
async def test_route_allows_exactly_its_roles(
    client: httpx.AsyncClient, db: Database, world: World, method: str, path: str
) -> None:
    allowed, body = ACCESS[(method, path)]
    url = fill(path, world)
    # Denied callers go first: they must change nothing that an allowed caller then relies on.
    for role in sorted(ROLES, key=lambda r: r in allowed):
        response = await client.request(method, url, headers=world.headers[role], **body(world))
        if role in allowed:
            assert response.status_code not in DENIED, (role, response.status_code, response.text)
            assert response.status_code < 500, response.text
        else:
            assert response.status_code in DENIED, (role, response.status_code, response.text)


def _leaked_numbers(text: str, phones: list[str]) -> list[str]:
    return [p for p in phones if p in text or p[3:] in text]


async def test_merchant_views_never_show_a_full_phone_number(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    checked = 0
    for (method, path), (allowed, _) in ACCESS.items():
        if method != "GET" or "/merchants/{merchant_id}" not in path:
            continue
        for role in allowed & {MA_OWNER, MA_STAFF}:
            response = await client.get(fill(path, world), headers=world.headers[role])
            assert response.status_code == 200
            assert _leaked_numbers(response.text, world.phones) == []
            checked += 1
    assert checked >= 10
    staff = (
        await client.get(
            fill("/api/v1/merchants/{merchant_id}/staff", world), headers=world.headers[MA_OWNER]
        )
    ).json()
    masked = {s["phone_masked"] for s in staff}
    assert masked == {
        f"{u.phone[3:6]}****{u.phone[-4:]}" for u in (world.users[MA_OWNER], world.users[MA_STAFF])
    }


async def test_consumer_cannot_touch_another_consumers_token(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    url = f"/api/v1/me/tokens/{world.ids['token_id']}"
    assert (await client.delete(url, headers=world.headers[CB])).status_code == 404
    tokens = (await client.get("/api/v1/me/tokens", headers=world.headers[CA])).json()
    assert world.ids["token_id"] in {t["id"] for t in tokens}
    mine_b = (await client.get("/api/v1/me/export", headers=world.headers[CB])).json()
    assert mine_b["account"]["phone"] == world.users[CB].phone
    assert world.users[CA].phone not in str(mine_b)
