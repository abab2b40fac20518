"""Automations: trigger -> wait -> condition -> action.

An event (events.record) starts a run of every active flow it triggers for its person; the
run's unique `run_key` makes "once per person" hold under races. `run_due`, every minute,
takes the runs whose wait is over: each is claimed by a conditional UPDATE (waiting ->
running), so two workers never run one twice, then its condition (a segment rule list,
evaluated by segments' SQL for this one person) and the action.

Actions inside the database (a coupon, points) change the run's status in the same
transaction as their effect: a crash undoes both and the run is taken again. Actions outside
it (a text, a push) are at most once: the claim is committed before the gateway is called,
so a crash in between leaves the run `running` rather than texting someone twice;
`sweep_stuck` marks such runs done with result `unknown` after 10 minutes, so the console
shows them. A duplicate marketing text costs money and goodwill and may break the carrier's
rules; a lost one costs one message.

`find_abandoned_carts`, every few minutes, turns carts left alone into `cart_abandoned`
events, one per cart change and merchant in the cart."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import audience, campaigns, composing, limits, segments
from mobimart.campaigns import rules as rule_lang
from mobimart.campaigns.models import (
    Automation,
    AutomationRun,
    Geofence,
    MarketingEvent,
    QrCode,
    WifiPortal,
)
from mobimart.catalog.models import Variant
from mobimart.checkout.models import Cart, CartLine, Order
from mobimart.db import insert_or_skip, utcnow
from mobimart.engagement import points
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.infra.sms import SmsSendFailed, send_sms
from mobimart.notifications import push
from mobimart.notifications import service as notifications
from mobimart.promotions import service as promotions
from mobimart.promotions.models import Promotion
from mobimart.settings import get_settings
from mobimart.text import clean, clean_name
from mobimart.web.forms import safe_link
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams
from mobimart.web.schemas import MAX_ID

log = logging.getLogger(__name__)

TRIGGERS = ("qr_scan", "geofence_enter", "wifi_signup", "cart_abandoned", "first_order")
ACTIONS = ("sms", "push", "coupon", "points")
# The event kind (events.Kind) that each trigger listens to.
KIND_OF_TRIGGER = {
    "qr_scan": "qr_scan",
    "geofence_enter": "geofence_enter",
    "wifi_signup": "wifi_signup",
    "cart_abandoned": "cart_abandoned",
    "first_order": "order_paid",
}
TRIGGER_OF_KIND = {kind: trigger for trigger, kind in KIND_OF_TRIGGER.items()}
# Triggers that may name one subject: this QR code, this fence, this portal.
SUBJECT_OF_TRIGGER: dict[str, type[QrCode] | type[Geofence] | type[WifiPortal]] = {
    "qr_scan": QrCode,
    "geofence_enter": Geofence,
    "wifi_signup": WifiPortal,
}
MAX_WAIT_MINUTES = 30 * 24 * 60  # a month: a later follow-up is a campaign, not a reaction
MAX_AUTOMATIONS = 100  # per merchant: every matching event looks at each active one
MAX_POINTS = 100_000
RUN_BATCH = 200  # runs taken per run_due call; the tick comes back a minute later
CART_BATCH = 500
# Carts older than this are not reported any more: a week-old cart is a wish list, and the
# bound keeps each sweep to recent carts however many old ones pile up.
CART_LOOKBACK = dt.timedelta(days=7)
STATUSES = ("waiting", "running", "done", "skipped")
# Actions that cost the merchant money (a text) or give value away (a coupon, points): only
# the owner starts such a flow; staff may save one paused and pause a running one.
SPENDING_ACTIONS = ("sms", "coupon", "points")
# A run claimed for a text or a push and not settled within this long was interrupted
# between the claim and the gateway's answer (the send takes seconds): `sweep_stuck`.
STUCK_AFTER = dt.timedelta(minutes=10)


# --- what a flow is (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A flow as a merchant describes it, before it is checked against the database."""

    name: str
    trigger: str
    action: str
    action_config: Mapping[str, Any]
    trigger_subject_id: int | None = None
    wait_minutes: int = 0
    condition: Sequence[Mapping[str, Any]] = ()
    once_per_person: bool = True
    active: bool = True


def _invalid(detail: str) -> DomainError:
    return DomainError("invalid_automation", detail, 422)


def _link(value: Any) -> str:
    """Where the message's link goes, "/" when none is given; `web.forms.safe_link` decides
    what may be."""
    return safe_link(str(value or "/"))


def _template(value: Any, *, what: str, required: bool, limit: int) -> str:
    text = clean(str(value or ""), limit + 1).strip()
    if required and not text:
        raise _invalid(f"The {what} is empty.")
    if len(text) > limit:
        raise _invalid(f"The {what} has at most {limit} characters.")
    try:
        composing.check(text)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return text


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes "²", which int() refuses."""
    return text.isascii() and text.isdigit() and len(text) <= 12


def check_config(action: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The action's settings, cleaned; a 422 saying what is wrong otherwise.

    sms: {"text", "link"?}; push: {"title", "body"?, "link"?}; coupon: {"promotion_id",
    "link"?}; points: {"points"}. Texts may use {name}, {shop} and {link}."""
    known = {
        "sms": {"text", "link"},
        "push": {"title", "body", "link"},
        "coupon": {"promotion_id", "link"},
        "points": {"points"},
    }
    if action not in known:
        raise _invalid(f"The action is one of {', '.join(ACTIONS)}.")
    unknown = sorted(set(config) - known[action])
    if unknown:
        raise _invalid(f"Unknown setting for {action}: {', '.join(unknown)}.")
    if action == "sms":
        text = _template(config.get("text"), what="text", required=True, limit=300)
        size = limits.sms_size(composing.with_opt_out(text))
        if size.parts > composing.MAX_SMS_PARTS:
            raise _invalid(f"The text is too long: {size.parts} SMS parts.")
        return {"text": text, "link": _link(config.get("link"))}
    if action == "push":
        return {
            "title": _template(config.get("title"), what="title", required=True, limit=80),
            "body": _template(config.get("body"), what="body", required=False, limit=200),
            "link": _link(config.get("link")),
        }
    if action == "coupon":
        promotion_id = config.get("promotion_id")
        if isinstance(promotion_id, str) and _is_number(promotion_id):
            promotion_id = int(promotion_id)
        if (
            not isinstance(promotion_id, int)
            or isinstance(promotion_id, bool)
            or not 1 <= promotion_id <= MAX_ID
        ):
            raise _invalid(_("Pick the coupon to give (its id)."))
        return {"promotion_id": promotion_id, "link": _link(config.get("link"))}
    amount = config.get("points")
    if isinstance(amount, str) and _is_number(amount):
        amount = int(amount)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_POINTS:
        raise _invalid(f"Points are a whole number from 1 to {MAX_POINTS}.")
    return {"points": amount}


def check_spec(spec: Spec) -> None:
    """What can be checked without the database."""
    if spec.trigger not in TRIGGERS:
        raise _invalid(f"The trigger is one of {', '.join(TRIGGERS)}.")
    if spec.trigger_subject_id is not None and spec.trigger not in SUBJECT_OF_TRIGGER:
        raise _invalid(_("Only QR scan, geofence and Wi-Fi triggers can name one subject."))
    if not 0 <= spec.wait_minutes <= MAX_WAIT_MINUTES:
        raise _invalid(f"Wait from 0 to {MAX_WAIT_MINUTES} minutes.")
    if spec.condition:
        try:
            segments.parse_rules("all", list(spec.condition))
        except ValueError:  # a number int() refuses ("²") gets past the rule checks
            raise _invalid(_("A condition's number is not a whole number.")) from None


def check_may_start(action: str, *, by_owner: bool) -> None:
    """Staff may not start a flow that spends (SPENDING_ACTIONS): 403."""
    if not by_owner and action in SPENDING_ACTIONS:
        raise Forbidden(
            _("Only the merchant's owner can start a flow that sends texts, coupons or points.")
        )


def run_key(*, automation_id: int, user_id: int, event_id: int, once_per_person: bool) -> str:
    key = f"{automation_id}:{user_id}"
    return key if once_per_person else f"{key}:{event_id}"


# --- managing flows ----------------------------------------------------------------------------


async def _check_references(session: AsyncSession, *, merchant_id: int | None, spec: Spec) -> None:
    """The subject and the coupon must be the merchant's own."""
    if spec.trigger_subject_id is not None:
        table = SUBJECT_OF_TRIGGER[spec.trigger]
        subject = (
            await session.execute(
                select(table.merchant_id).where(table.id == spec.trigger_subject_id)
            )
        ).first()
        if subject is None or subject[0] != merchant_id:
            raise _invalid(_("The trigger's subject is not one of yours."))
    if spec.action == "coupon":
        promotion = await session.get(Promotion, spec.action_config["promotion_id"])
        if promotion is None or promotion.merchant_id != merchant_id or not promotion.code:
            raise _invalid(_("The coupon is not one of yours (a promotion with a code)."))


async def subjects(
    session: AsyncSession, *, merchant_id: int | None
) -> dict[str, list[tuple[int, str]]]:
    """The merchant's QR codes, geofences and Wi-Fi portals a flow may narrow to, by
    trigger, as (id, name): what the console's form offers."""
    out: dict[str, list[tuple[int, str]]] = {}
    named = {
        "qr_scan": QrCode.label,
        "geofence_enter": Geofence.name,
        "wifi_signup": WifiPortal.name,
    }
    for trigger, table in SUBJECT_OF_TRIGGER.items():
        owner = (
            table.merchant_id.is_(None) if merchant_id is None else table.merchant_id == merchant_id
        )
        rows = await session.execute(
            select(table.id, named[trigger]).where(owner).order_by(table.id.desc()).limit(200)
        )
        out[trigger] = [(int(i), str(n)) for i, n in rows]
    return out


async def create(
    session: AsyncSession, *, merchant_id: int | None, spec: Spec, by_owner: bool = True
) -> Automation:
    """Check and save a flow (commits). `by_owner` False (a staff member): a spending flow
    is saved only paused."""
    if spec.active:
        check_may_start(spec.action, by_owner=by_owner)
    name = clean_name(spec.name, 80)
    if not name:
        raise _invalid(_("Give the automation a name."))
    config = check_config(spec.action, spec.action_config)
    spec = dataclasses.replace(spec, action_config=config)
    check_spec(spec)
    await _check_references(session, merchant_id=merchant_id, spec=spec)
    count = await session.scalar(
        select(func.count()).select_from(Automation).where(_scope(merchant_id))
    )
    if int(count or 0) >= MAX_AUTOMATIONS:
        raise Conflict("too_many_automations", f"At most {MAX_AUTOMATIONS} automations.")
    automation = Automation(
        merchant_id=merchant_id,
        name=name,
        trigger=spec.trigger,
        trigger_subject_id=spec.trigger_subject_id,
        wait_minutes=spec.wait_minutes,
        condition=[dict(c) for c in spec.condition],
        action=spec.action,
        action_config=config,
        once_per_person=spec.once_per_person,
        active=spec.active,
    )
    session.add(automation)
    await session.commit()
    return automation


def _scope(merchant_id: int | None) -> Any:
    if merchant_id is None:
        return Automation.merchant_id.is_(None)
    return Automation.merchant_id == merchant_id


async def get(session: AsyncSession, *, merchant_id: int | None, automation_id: int) -> Automation:
    automation = await session.scalar(
        select(Automation).where(Automation.id == automation_id, _scope(merchant_id))
    )
    if automation is None:
        raise NotFound("Automation")
    return automation


async def listed(
    session: AsyncSession, *, merchant_id: int | None, page: PageParams
) -> list[Automation]:
    query = select(Automation).where(_scope(merchant_id))
    if page.before_id is not None:
        query = query.where(Automation.id < page.before_id)
    return list(await session.scalars(query.order_by(Automation.id.desc()).limit(page.fetch)))


async def run_counts(
    session: AsyncSession, *, automation_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Runs per flow and status, in one query."""
    out: dict[int, dict[str, int]] = {a: dict.fromkeys(STATUSES, 0) for a in automation_ids}
    if not automation_ids:
        return out
    rows = await session.execute(
        select(AutomationRun.automation_id, AutomationRun.status, func.count())
        .where(AutomationRun.automation_id.in_(list(automation_ids)))
        .group_by(AutomationRun.automation_id, AutomationRun.status)
    )
    for automation_id, status, count in rows:
        out[automation_id][status] = int(count)
    return out


async def set_active(
    session: AsyncSession,
    *,
    merchant_id: int | None,
    automation_id: int,
    active: bool,
    by_owner: bool = True,
) -> Automation:
    """Pausing stops new runs; waiting ones are skipped when due, not run. Anyone may pause;
    resuming a spending flow is the owner's (`by_owner`)."""
    automation = await get(session, merchant_id=merchant_id, automation_id=automation_id)
    if active and not automation.active:
        check_may_start(automation.action, by_owner=by_owner)
    automation.active = active
    await session.commit()
    return automation


async def delete_automation(
    session: AsyncSession, *, merchant_id: int | None, automation_id: int
) -> None:
    automation = await get(session, merchant_id=merchant_id, automation_id=automation_id)
    await session.execute(delete(Automation).where(Automation.id == automation.id))
    await session.commit()


async def runs(
    session: AsyncSession,
    *,
    merchant_id: int | None,
    automation_id: int,
    page: PageParams,
    status: str | None = None,
) -> list[AutomationRun]:
    await get(session, merchant_id=merchant_id, automation_id=automation_id)
    query = select(AutomationRun).where(AutomationRun.automation_id == automation_id)
    if status is not None:
        query = query.where(AutomationRun.status == status)
    if page.before_id is not None:
        query = query.where(AutomationRun.id < page.before_id)
    return list(await session.scalars(query.order_by(AutomationRun.id.desc()).limit(page.fetch)))


# --- starting runs -----------------------------------------------------------------------------


async def _is_first_order(
    session: AsyncSession, *, event: MarketingEvent, merchant_id: int | None
) -> bool:
    """The person's first paid order at the merchant (anywhere, for a platform flow): no other
    order of theirs has been paid there. Parallel first orders may both pass; the run key keeps
    it to one run per person."""
    others = [
        Order.user_id == event.user_id,
        Order.paid_at.is_not(None),
        Order.id != event.subject_id,
    ]
    if merchant_id is not None:
        others.append(Order.merchant_id == merchant_id)
    return not await session.scalar(select(exists().where(*others)))


async def on_event(session: AsyncSession, *, event: MarketingEvent) -> None:
    """Start a run of every active flow this event triggers for its person."""
    trigger = TRIGGER_OF_KIND.get(event.kind)
    if trigger is None or event.user_id is None:
        return  # product views and clicks trigger nothing: no query for them
    scope: ColumnElement[bool] = Automation.merchant_id.is_(None)
    if event.merchant_id is not None:
        scope = or_(scope, Automation.merchant_id == event.merchant_id)
    matching = list(
        await session.scalars(
            select(Automation).where(
                Automation.trigger == trigger,
                Automation.active.is_(True),
                scope,
                or_(
                    Automation.trigger_subject_id.is_(None),
                    Automation.trigger_subject_id == event.subject_id,
                ),
            )
        )
    )
    for automation in matching:
        if trigger == "first_order" and not await _is_first_order(
            session, event=event, merchant_id=automation.merchant_id
        ):
            continue
        await session.execute(
            insert_or_skip(session, AutomationRun, index_elements=["run_key"]).values(
                automation_id=automation.id,
                user_id=event.user_id,
                run_key=run_key(
                    automation_id=automation.id,
                    user_id=event.user_id,
                    event_id=event.id,
                    once_per_person=automation.once_per_person,
                ),
                event_id=event.id,
                status="waiting",
                result="",
                due_at=event.at + dt.timedelta(minutes=automation.wait_minutes),
                created_at=utcnow(),
            )
        )


# --- running them ------------------------------------------------------------------------------


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _settle(session: AsyncSession, run_id: int, status: str, result: str) -> None:
    await session.execute(
        update(AutomationRun)
        .where(AutomationRun.id == run_id)
        .values(status=status, result=result[:60], done_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _condition_holds(
    session: AsyncSession, automation: Automation, user_id: int, now: dt.datetime
) -> bool:
    """The condition, in the segment rule language, for this one person: the same SQL a
    segment of the merchant's would run, narrowed to them."""
    if not automation.condition:
        return True
    try:
        parsed = rule_lang.parse("all", automation.condition)
    except ValueError:  # RuleError, or a number the rule checks let through
        return False  # saved before a rule changed meaning: never act on a rule not understood
    picked = segments.compile_rules(
        parsed, merchant_id=automation.merchant_id, now=now, user_ids=[user_id]
    )
    return (await session.scalar(picked.limit(1))) is not None


async def _cart_recovered(
    session: AsyncSession, run: AutomationRun, automation: Automation
) -> bool:
    """A cart_abandoned run is moot once the cart changed or the person ordered at the shop
    after the event."""
    event = await session.get(MarketingEvent, run.event_id) if run.event_id else None
    if event is None:
        return True
    cart = await session.scalar(select(Cart).where(Cart.user_id == run.user_id))
    if cart is None or cart.updated_at > event.at:
        return True
    ordered = select(Order.id).where(Order.user_id == run.user_id, Order.created_at > event.at)
    if automation.merchant_id is not None:
        ordered = ordered.where(Order.merchant_id == automation.merchant_id)
    return (await session.scalar(ordered.limit(1))) is not None


async def _values(
    session: AsyncSession, automation: Automation, user: User, template: str, link: str
) -> dict[str, str]:
    shop = await campaigns.sender_name(session, automation.merchant_id)  # as campaigns sign
    if link.startswith("/"):
        link = get_settings().base_url.rstrip("/") + link
    return {
        "name": composing.name_or_greeting(user.display_name, template),
        "shop": shop,
        "link": link,
    }


async def _claim(session: AsyncSession, run_id: int, now: dt.datetime) -> bool:
    """waiting -> running, if nobody took it first; the first write of the transaction."""
    claimed = await session.execute(
        update(AutomationRun)
        .where(
            AutomationRun.id == run_id,
            AutomationRun.status == "waiting",
            AutomationRun.due_at <= now,
        )
        .values(status="running", due_at=now)  # a running run's due_at: when it was taken
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def _run_one(session: AsyncSession, run_id: int, now: dt.datetime) -> bool:
    if not await _claim(session, run_id, now):
        await session.rollback()
        return False
    row = (
        await session.execute(
            select(AutomationRun, Automation, User)
            .join(Automation, Automation.id == AutomationRun.automation_id)
            .join(User, User.id == AutomationRun.user_id)
            .where(AutomationRun.id == run_id)
        )
    ).first()
    assert row is not None  # claimed in this transaction
    run, automation, user = row
    try:
        if not automation.active:
            raise _Skip("paused")
        if user.deleted_at is not None:
            raise _Skip("account_deleted")
        if automation.trigger == "cart_abandoned" and await _cart_recovered(
            session, run, automation
        ):
            raise _Skip("cart_recovered")
        if not await _condition_holds(session, automation, user.id, now):
            raise _Skip("condition")
        await _act(session, run, automation, user, now)
    except _Skip as skip:
        await _settle(session, run_id, "skipped", skip.reason)
        await session.commit()
    return True


async def _act(
    session: AsyncSession, run: AutomationRun, automation: Automation, user: User, now: dt.datetime
) -> None:
    config = automation.action_config
    if automation.action in ("sms", "push"):
        verdict = (
            await audience.screen(session, channel=automation.action, user_ids=[user.id], now=now)
        )[user.id]
        if verdict is not None:
            raise _Skip(verdict.value)
    if automation.action == "sms":
        assert user.phone is not None  # screened: a person without a number has no_address
        quiet = limits.QuietHours.parse(get_settings().quiet_hours)
        later = quiet.next_allowed(now, limits.zone_for_number(user.phone))
        if later is not None:  # deferred, not dropped: back to waiting until the window ends
            await session.execute(
                update(AutomationRun)
                .where(AutomationRun.id == run.id)
                .values(status="waiting", due_at=later, result="quiet_hours")
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return
        template = composing.with_opt_out(config["text"])
        values = await _values(session, automation, user, template, config.get("link", "/"))
        text = composing.render(template, values)
        await session.commit()  # the claim first: at most once (see the module's docstring)
        try:
            await send_sms(session, to=user.phone, text=text)
        except SmsSendFailed:
            await _settle(session, run.id, "done", "sms_failed")
        else:
            await _settle(session, run.id, "done", "sms_sent")
        await session.commit()
    elif automation.action == "push":
        link = config.get("link", "/")
        values = await _values(session, automation, user, config["title"], link)
        title = composing.render(config["title"], values)
        body = composing.render(config.get("body", ""), values)
        await session.commit()  # the claim first: at most once
        delivered = await push.deliver(session, user_id=user.id, title=title, body=body, link=link)
        await _settle(session, run.id, "done", "push_sent" if delivered else "push_undelivered")
        await session.commit()
    elif automation.action == "coupon":
        try:
            copy = await promotions.issue_single_use(
                session, promotion_id=int(config["promotion_id"])
            )
        except NotFound:
            raise _Skip("coupon_unavailable") from None
        await notifications.notify(
            session,
            user_id=user.id,
            kind="system",
            title=_("A coupon for you"),
            body=f"{copy.name}: {copy.code}",
            link=config.get("link", "/"),
        )
        await _settle(session, run.id, "done", f"coupon:{copy.code}")
        await session.commit()  # the coupon, its notice and the run's status together
    else:
        await points.award(
            session,
            user_id=user.id,
            merchant_id=automation.merchant_id,
            delta=int(config["points"]),
            reason=f"automation {automation.id}",
            key=f"automation-run:{run.id}",
        )
        await _settle(session, run.id, "done", f"points:{config['points']}")
        await session.commit()


async def run_due(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Run (or skip) the runs whose wait is over, up to RUN_BATCH; returns how many this
    call took. Safe to call from several workers at once: each run is taken by one."""
    now = now or utcnow()
    due = list(
        await session.scalars(
            select(AutomationRun.id)
            .where(AutomationRun.status == "waiting", AutomationRun.due_at <= now)
            .order_by(AutomationRun.due_at, AutomationRun.id)
            .limit(RUN_BATCH)
        )
    )
    await session.rollback()  # end the read: each run is its own transaction
    taken = 0
    for run_id in due:
        if await _run_one(session, run_id, now):
            taken += 1
    return taken


async def sweep_stuck(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Runs taken for a text or a push more than STUCK_AFTER ago and never settled: the
    worker stopped between the claim and the gateway's answer, so the message went out once
    or not at all. They become done with result `unknown`, never run again (at most once),
    and the runs page shows them. Commits; returns how many. Call it every few minutes."""
    now = now or utcnow()
    swept = await session.execute(
        update(AutomationRun)
        .where(AutomationRun.status == "running", AutomationRun.due_at < now - STUCK_AFTER)
        .values(status="done", result="unknown", done_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return int(swept.rowcount)  # type: ignore[attr-defined]


# --- abandoned carts ---------------------------------------------------------------------------


async def find_abandoned_carts(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Carts of signed-in people with lines, untouched for settings.cart_abandoned_after_hours
    and without an order placed since: one cart_abandoned event per merchant in the cart
    (subject: the cart), once per cart change — a cart already reported after its last
    change is not reported again. Commits; returns how many events were recorded."""
    from mobimart.campaigns import events  # events imports this module for on_event

    now = now or utcnow()
    before = now - dt.timedelta(hours=get_settings().cart_abandoned_after_hours)
    reported = exists().where(
        MarketingEvent.kind == "cart_abandoned",
        MarketingEvent.subject_id == Cart.id,
        MarketingEvent.user_id == Cart.user_id,
        MarketingEvent.merchant_id == Variant.merchant_id,
        MarketingEvent.at >= Cart.updated_at,
    )
    ordered = exists().where(Order.user_id == Cart.user_id, Order.created_at >= Cart.updated_at)
    rows = (
        await session.execute(
            select(Cart.id, Cart.user_id, Variant.merchant_id)
            .join(CartLine, CartLine.cart_id == Cart.id)
            .join(Variant, Variant.id == CartLine.variant_id)
            .where(
                Cart.user_id.is_not(None),
                Cart.updated_at <= before,
                Cart.updated_at > now - CART_LOOKBACK,
                and_(~reported, ~ordered),
            )
            .distinct()
            .order_by(Cart.id, Variant.merchant_id)
            .limit(CART_BATCH)
        )
    ).all()
    for cart_id, user_id, merchant_id in rows:
        await events.record(
            session,
            kind=events.Kind.cart_abandoned,
            user_id=user_id,
            merchant_id=merchant_id,
            subject_id=cart_id,
            at=now,
        )
    await session.commit()
    return len(rows)
