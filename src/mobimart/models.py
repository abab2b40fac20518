"""Imports every domain's tables, so metadata is complete for migrations and tests."""

from mobimart.accounts.models import AuthToken, Consent, OtpCode, User
from mobimart.audit.models import AuditEntry
from mobimart.catalog.models import (
    Brand,
    BrandFollow,
    Category,
    Media,
    Product,
    ProductChange,
    Shop,
    Variant,
)
from mobimart.checkout.models import Address, Cart, CartLine, Order, OrderDiscount, OrderLine
from mobimart.infra.idempotency import IdempotencyRecord
from mobimart.infra.sms.models import SmsMessage
from mobimart.infra.throttle import RateCounter
from mobimart.logistics.models import Shipment, TrackingEvent
from mobimart.merchants.models import KycDocument, Merchant, MerchantMember
from mobimart.moderation.models import BlockedWord, Report
from mobimart.notifications.models import Notification
from mobimart.payments.models import (
    Collection,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentCode,
    Payout,
    Refund,
)
from mobimart.promotions.models import Allowance, FlashSale, Promotion
from mobimart.search.models import SynonymGroup
from mobimart.social.models import (
    Answer,
    Conversation,
    Message,
    Question,
    RatingSummary,
    Review,
    ReviewPhoto,
    ReviewVote,
)
from mobimart.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Address",
    "Allowance",
    "Answer",
    "AuditEntry",
    "AuthToken",
    "BlockedWord",
    "Brand",
    "BrandFollow",
    "Cart",
    "CartLine",
    "Category",
    "Collection",
    "Consent",
    "Conversation",
    "FlashSale",
    "IdempotencyRecord",
    "KycDocument",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "Media",
    "Merchant",
    "MerchantMember",
    "Message",
    "Notification",
    "Order",
    "OrderDiscount",
    "OrderLine",
    "OtpCode",
    "Payment",
    "PaymentCode",
    "Payout",
    "Product",
    "ProductChange",
    "Promotion",
    "Question",
    "RateCounter",
    "RatingSummary",
    "Refund",
    "Report",
    "Review",
    "ReviewPhoto",
    "ReviewVote",
    "Shipment",
    "Shop",
    "SmsMessage",
    "SynonymGroup",
    "TrackingEvent",
    "User",
    "Variant",
    "WebhookDelivery",
    "WebhookEndpoint",
]
