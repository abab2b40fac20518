"""Automations' pure parts: action settings, run keys, and the console form's reading."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.campaigns import automations
from mobimart.campaigns.automations_pages import form_spec
from mobimart.errors import DomainError


@pytest.mark.parametrize(
    ("action", "config", "cleaned"),
    [
        ("sms", {"text": "Hi {name} "}, {"text": "Hi {name}", "link": "/"}),
        (
            "push",
            {"title": "At {shop}", "link": "https://example.com/x"},
            {"title": "At {shop}", "body": "", "link": "https://example.com/x"},
        ),
        ("coupon", {"promotion_id": "7"}, {"promotion_id": 7, "link": "/"}),
        ("points", {"points": 50}, {"points": 50}),
    ],
)
def test_config_cleaned(action: str, config: dict[str, Any], cleaned: dict[str, Any]) -> None:
    assert automations.check_config(action, config) == cleaned


@pytest.mark.parametrize(
    ("action", "config"),
    [
        ("sms", {}),
        ("sms", {"text": "{nam}"}),
        ("sms", {"text": "长" * 301}),
        ("sms", {"text": "Hi", "link": "//evil.example/x"}),
        ("sms", {"text": "Hi", "link": "http://plain.example/x"}),
        ("push", {"title": ""}),
        ("push", {"title": "x", "icon": "y"}),
        ("coupon", {"promotion_id": True}),
        ("coupon", {"promotion_id": 2**40}),
        ("points", {"points": automations.MAX_POINTS + 1}),
        ("points", {"points": "-3"}),
        ("points", {"points": "²"}),
        ("coupon", {"promotion_id": "٣"}),
        ("email", {}),
    ],
)
def test_config_refused(action: str, config: dict[str, Any]) -> None:
    with pytest.raises(DomainError):
        automations.check_config(action, config)


def test_long_sms_refused_by_parts() -> None:
    # 300 characters of Chinese and the opt-out hint are five UCS-2 parts (67 a part): fine.
    automations.check_config("sms", {"text": "长" * 300})
    # Emoji take two UTF-16 units each: 200 of them are seven parts, over the six allowed.
    with pytest.raises(DomainError, match="SMS parts"):
        automations.check_config("sms", {"text": "😀" * 200})


def test_run_key() -> None:
    once = automations.run_key(automation_id=3, user_id=9, event_id=40, once_per_person=True)
    each = automations.run_key(automation_id=3, user_id=9, event_id=40, once_per_person=False)
    assert (once, each) == ("3:9", "3:9:40")
    # The column holds 60 characters: three ids of PostgreSQL's integer fit.
    longest = automations.run_key(
        automation_id=2**31 - 1, user_id=2**31 - 1, event_id=2**31 - 1, once_per_person=False
    )
    assert len(longest) <= 60


def test_every_trigger_has_an_event_kind() -> None:
    from mobimart.campaigns.events import Kind

    assert {Kind(kind) for kind in automations.KIND_OF_TRIGGER.values()} <= set(Kind)
    assert set(automations.KIND_OF_TRIGGER) == set(automations.TRIGGERS)


def test_form_read() -> None:
    spec = form_spec(
        {
            "name": "Welcome",
            "trigger": "geofence_enter",
            "subject": "geofence_enter:12",
            "wait": "3",
            "wait_unit": "days",
            "cond_kind": "bought_from_shop",
            "cond_days": "",
            "cond_not": "on",
            "action": "push",
            "push_title": "Hi",
            "link": "",
        }
    )
    assert spec.trigger_subject_id == 12
    assert spec.wait_minutes == 3 * 24 * 60
    assert list(spec.condition) == [{"kind": "bought_from_shop", "days": "30", "not": True}]
    assert dict(spec.action_config) == {"title": "Hi"}
    assert spec.once_per_person is False


@pytest.mark.parametrize(
    "form",
    [
        {"trigger": "qr_scan", "subject": "wifi_signup:3"},
        {"trigger": "qr_scan", "subject": "qr_scan:x"},
        {"trigger": "qr_scan", "wait": "-1"},
        {"trigger": "qr_scan", "wait": "²"},
        {"trigger": "qr_scan", "subject": "qr_scan:²"},
        {"trigger": "qr_scan", "cond_kind": "joined_wifi"},
        {"trigger": "qr_scan", "cond_kind": "scanned_qr", "cond_days": "²", "name": "x"},
    ],
)
def test_form_refused(form: dict[str, str]) -> None:
    with pytest.raises(DomainError):
        automations.check_spec(form_spec(form))


_FORM_FIELDS = (
    "name",
    "trigger",
    "subject",
    "wait",
    "wait_unit",
    "cond_kind",
    "cond_channel",
    "cond_days",
    "cond_not",
    "action",
    "sms_text",
    "push_title",
    "push_body",
    "promotion_id",
    "points",
    "link",
    "once_per_person",
)
_values = st.one_of(st.text(max_size=40), st.integers(), st.booleans(), st.none())


@given(
    action=st.sampled_from([*automations.ACTIONS, "other"]),
    config=st.dictionaries(
        st.sampled_from(["text", "link", "title", "body", "promotion_id", "points", "x"]),
        _values,
        max_size=4,
    ),
)
def test_config_answers_any_input_with_a_readable_refusal(
    action: str, config: dict[str, Any]
) -> None:
    """Whatever a form or a client sends, the answer is cleaned settings or a 422."""
    refused = 0
    try:
        cleaned = automations.check_config(action, config)
    except DomainError as exc:
        refused = exc.status
    else:
        assert action in automations.ACTIONS
        assert set(cleaned) <= {"text", "link", "title", "body", "promotion_id", "points"}
    assert refused in (0, 422)


@given(form=st.dictionaries(st.sampled_from(list(_FORM_FIELDS)), st.text(max_size=20)))
def test_form_answers_any_input_with_a_readable_refusal(form: dict[str, str]) -> None:
    refused = 0
    try:
        spec = form_spec(form)
    except DomainError as exc:
        refused = exc.status
    else:
        assert spec.wait_minutes >= 0
    assert refused in (0, 422)
