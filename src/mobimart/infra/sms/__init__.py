"""The SMS interface: every message goes through `send_sms`, whichever backend is configured."""

from mobimart.infra.sms.service import SmsSendFailed, send_sms

__all__ = ["SmsSendFailed", "send_sms"]
