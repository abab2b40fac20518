from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.errors import DomainError
from mobimart.infra.pii import get_vault
from mobimart.infra.sms import kannel
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import get_settings


class SmsSendFailed(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "sms_unavailable", "The text message could not be sent; try again shortly.", 503
        )


async def send_sms(session: AsyncSession, *, to: str, text: str) -> SmsMessage:
    """Send (or, with the outbox backend, record) one message to an E.164 number and log it.

    The log row is committed whatever happens, so a failed send is visible to operators."""
    settings = get_settings()
    message = SmsMessage(
        to_number=to,
        to_hash=get_vault().lookup_hash(to),
        text=text,
        backend=settings.sms_backend,
        status="recorded",
    )
    if settings.sms_backend == "kannel":
        ok, reply = await kannel.sendsms(settings, to=to, text=text)
        message.status = "accepted" if ok else "failed"
        message.gateway_reply = reply
    session.add(message)
    await session.commit()
    if message.status == "failed":
        raise SmsSendFailed()
    return message
