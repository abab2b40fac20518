"""Imports every domain's tables, so metadata is complete for migrations and tests."""

from mobimart.accounts.models import AuthToken, Consent, OtpCode, User
from mobimart.audit.models import AuditEntry
from mobimart.campaigns.models import (
    Automation,
    AutomationRun,
    Campaign,
    CampaignMessage,
    Draw,
    DrawEntry,
    DrawPrize,
    Geofence,
    GeoOffer,
    MarketingEvent,
    OrderAttribution,
    QrCode,
    Segment,
    SegmentMember,
    StoreLocation,
    WifiPortal,
)
from mobimart.catalog.models import (
    Brand,
    BrandFollow,
    Category,
    Media,
    Product,
    ProductChange,
    Shop,
    ShopFollow,
    Variant,
)
from mobimart.checkout.models import Address, Cart, CartLine, Order, OrderDiscount, OrderLine
from mobimart.engagement.models import PointsEntry
from mobimart.infra.idempotency import IdempotencyRecord
from mobimart.infra.sms.models import SmsMessage
from mobimart.infra.throttle import RateCounter
from mobimart.logistics.models import Shipment, TrackingEvent
from mobimart.merchants.models import KycDocument, Merchant, MerchantMember
from mobimart.moderation.models import BlockedWord, Report
from mobimart.notifications.models import Notification, PushSubscription
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
    "Automation",
    "AutomationRun",
    "BlockedWord",
    "Brand",
    "BrandFollow",
    "Campaign",
    "CampaignMessage",
    "Cart",
    "CartLine",
    "Category",
    "Collection",
    "Consent",
    "Conversation",
    "Draw",
    "DrawEntry",
    "DrawPrize",
    "FlashSale",
    "GeoOffer",
    "Geofence",
    "IdempotencyRecord",
    "KycDocument",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "MarketingEvent",
    "Media",
    "Merchant",
    "MerchantMember",
    "Message",
    "Notification",
    "Order",
    "OrderAttribution",
    "OrderDiscount",
    "OrderLine",
    "OtpCode",
    "Payment",
    "PaymentCode",
    "Payout",
    "PointsEntry",
    "Product",
    "ProductChange",
    "Promotion",
    "PushSubscription",
    "QrCode",
    "Question",
    "RateCounter",
    "RatingSummary",
    "Refund",
    "Report",
    "Review",
    "ReviewPhoto",
    "ReviewVote",
    "Segment",
    "SegmentMember",
    "Shipment",
    "Shop",
    "ShopFollow",
    "SmsMessage",
    "StoreLocation",
    "SynonymGroup",
    "TrackingEvent",
    "User",
    "Variant",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WifiPortal",
]
