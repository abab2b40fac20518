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
from mobimart.infra.sms.models import SmsMessage
from mobimart.infra.throttle import RateCounter
from mobimart.merchants.models import KycDocument, Merchant, MerchantMember
from mobimart.search.models import SynonymGroup

__all__ = [
    "AuditEntry",
    "AuthToken",
    "Brand",
    "BrandFollow",
    "Category",
    "Consent",
    "KycDocument",
    "Media",
    "Merchant",
    "MerchantMember",
    "OtpCode",
    "Product",
    "ProductChange",
    "RateCounter",
    "Shop",
    "SmsMessage",
    "SynonymGroup",
    "User",
    "Variant",
]
