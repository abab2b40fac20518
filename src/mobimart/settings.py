"""All configuration, read once from MOBIMART_* environment variables (or a .env file)."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults: they make the embedded demo work out of the box and are refused in
# production (see _refuse_default_secrets).
_DEV_SECRET = "dev-secret-change-me-0123456789abcdef"  # noqa: S105 (refused in production)
_DEV_PII_KEYS = "k1:" + base64.urlsafe_b64encode(b"dev-pii-key-change-me-0123456789"[:32]).decode()
_DEV_PII_HASH_KEY = "dev-pii-hash-key-change-me"
_DEV_INBOUND_SECRET = "dev-inbound-secret-change-me"  # noqa: S105 (refused in production)
_DEV_CARRIER_SECRET = "dev-carrier-secret-change-me"  # noqa: S105 (refused in production)
_DEV_DLR_SECRET = "dev-dlr-secret-change-me"  # noqa: S105 (refused in production)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOBIMART_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./var/mobimart.db"
    # "null" opens a connection per session: tests run apps in several event loops.
    db_pool: Literal["default", "null"] = "default"
    redis_url: str | None = None
    # Channel and key names in Redis start with it: deployments (or test runs) sharing one
    # Redis server keep their chat traffic apart.
    redis_prefix: str = "mobimart:"
    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"

    secret_key: SecretStr = SecretStr(_DEV_SECRET)
    # Comma-separated "key_id:base64url(32 bytes)"; the first encrypts, all decrypt.
    pii_keys: SecretStr = SecretStr(_DEV_PII_KEYS)
    # Keys the lookup hash of phone and ID numbers; never rotated (rows are found by it).
    pii_hash_key: SecretStr = SecretStr(_DEV_PII_HASH_KEY)

    default_region: str = "CN"
    default_currency: str = "CNY"
    default_locale: Literal["en", "zh_Hans"] = "en"

    sms_backend: Literal["outbox", "kannel"] = "outbox"
    sms_sender: str = "10690000"
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = "mobimart"
    kannel_password: SecretStr = SecretStr("")
    # Kannel's sms-service passes it on every inbound message (see deploy/kannel).
    sms_inbound_secret: SecretStr = SecretStr(_DEV_INBOUND_SECRET)
    sms_searches_per_phone_per_hour: int = Field(20, ge=1)

    otp_ttl_seconds: int = Field(300, ge=30)
    otp_max_attempts: int = Field(5, ge=1)
    otp_resend_seconds: int = Field(60, ge=0)
    otp_per_phone_per_hour: int = Field(5, ge=1)
    otp_per_ip_per_hour: int = Field(30, ge=1)
    password_tries_per_phone_per_hour: int = Field(10, ge=1)
    password_tries_per_ip_per_hour: int = Field(50, ge=1)
    api_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)
    session_ttl_seconds: int = Field(14 * 24 * 3600, ge=60)

    upload_max_bytes: int = Field(5 * 1024 * 1024, ge=1024)  # documents and images
    video_max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    # Rendered catalogue listings kept per process until the catalogue changes; 0: none.
    listing_cache_entries: int = Field(4096, ge=0)
    # Wallet balances above this need real-name verification (used by payments).
    realname_required_above_minor: int = Field(100_000, ge=0)

    # Unpaid orders give their stock back after this: most mobile payments finish in under
    # two minutes, and a flash sale's units should not sit in abandoned orders for long.
    order_payment_timeout_s: int = Field(15 * 60, ge=60)
    # Delivered orders complete (and the merchant is settled) after this many days unless
    # the buyer confirms sooner.
    auto_complete_days: int = Field(7, ge=1)
    # Payment provider: "sandbox" is the built-in test double served under /sandbox-gateway,
    # refused in production (anyone could confirm a payment there); "none" offers wallet and
    # in-store payments only. Keys are PEM files in var/keys, made on first use.
    payment_gateway: Literal["sandbox", "none"] = "sandbox"
    gateway_app_id: str = "mobimart-dev"
    gateway_url: str = ""  # default: {base_url}/sandbox-gateway
    # Carriers sign tracking callbacks with this shared secret (HMAC-SHA256).
    carrier_secret: SecretStr = SecretStr(_DEV_CARRIER_SECRET)

    # Marketing. Nobody is messaged in these local hours (their zone from their number);
    # messages wait until the window ends.
    quiet_hours: str = "21:00-08:00"
    # At most this many marketing messages per person per channel in 7 days.
    marketing_cap_per_week: int = Field(3, ge=1)
    sms_cost_per_part_minor: int = Field(5, ge=0)  # what the carrier charges a part (CNY 0.05)
    # A paid order is credited to the person's last touch in this many days before it.
    attribution_window_days: int = Field(7, ge=1)
    # Campaign sending. Kannel calls `sms_dlr_url` (default {base_url}/api/v1/sms/dlr) with
    # each delivery report, signed per message with `sms_dlr_secret`.
    sms_dlr_secret: SecretStr = SecretStr(_DEV_DLR_SECRET)
    sms_dlr_url: str = ""
    # Kannel's dlr-mask: 1 delivered, 2 failed, 4 buffered, 8 taken by the SMSC, 16 refused.
    sms_dlr_mask: int = Field(31, ge=1, le=31)
    # Keep-alive connections from a sending worker to smsbox. With delivery reports on,
    # stock smsbox answers each request only after ~40 ms: 64 in flight reach ~1,500
    # messages/s; deploy/kannel's immediate-sendsms-reply removes that wait.
    kannel_connections: int = Field(64, ge=1, le=1024)
    # A message a dead worker claimed and that no delivery report has confirmed after this
    # many seconds is sent again (see docs/adr/0009): the SMSC's ack (report 8) comes back in
    # well under a second, Kannel retries a refused report 3 times a second apart.
    campaign_resolve_after_s: int = Field(120, ge=2)
    # Web Push (VAPID, RFC 8292). Without a key, a P-256 pair is made once in var/keys.
    # The subject is how push services reach the sender when its pushes misbehave.
    vapid_private_key: SecretStr | None = None  # base64url of the raw 32-byte key, or PEM
    vapid_subject: str = Field(
        "mailto:push@mobimart.invalid", pattern=r"^(mailto:\S+@\S+|https://\S+)$"
    )
    # A cart with lines nobody touched for this long, and no order since, is abandoned.
    cart_abandoned_after_hours: int = Field(4, ge=1)

    @property
    def uploads_dir(self) -> Path:
        return self.var_dir / "uploads"

    @property
    def media_dir(self) -> Path:
        """Public product and brand media, served as they are."""
        return self.var_dir / "media"

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.is_production:
            defaults = {
                "MOBIMART_SECRET_KEY": self.secret_key.get_secret_value() == _DEV_SECRET,
                "MOBIMART_PII_KEYS": self.pii_keys.get_secret_value() == _DEV_PII_KEYS,
                "MOBIMART_PII_HASH_KEY": self.pii_hash_key.get_secret_value() == _DEV_PII_HASH_KEY,
                "MOBIMART_SMS_INBOUND_SECRET": self.sms_inbound_secret.get_secret_value()
                == _DEV_INBOUND_SECRET,
                "MOBIMART_CARRIER_SECRET": self.carrier_secret.get_secret_value()
                == _DEV_CARRIER_SECRET,
                "MOBIMART_SMS_DLR_SECRET": self.sms_dlr_secret.get_secret_value()
                == _DEV_DLR_SECRET,
            }
            unset = [name for name, is_default in defaults.items() if is_default]
            if unset:
                raise ValueError("production mode refuses default secrets; set " + ", ".join(unset))
            if self.payment_gateway == "sandbox":
                raise ValueError(
                    "production mode refuses the sandbox payment gateway; set "
                    "MOBIMART_PAYMENT_GATEWAY (none: wallet and in-store payments only)"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
