"""What people pick from when they report: code -> label. The label is stored as written here
(in English) and read by admins; the report button (`moderation/report_button.html`) offers
every one, translated."""

from __future__ import annotations

from mobimart.web.i18n import stored as _

REASONS = {
    "spam": _("Spam or advertising"),
    "scam": _("Scam or fraud"),
    "abuse": _("Offensive or abusive"),
    "privacy": _("Shares someone's personal information"),
    "other": _("Something else"),
}
