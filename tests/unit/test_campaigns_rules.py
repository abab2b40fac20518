"""The segment rule language: validation with readable errors, what each rule reads, windows."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.campaigns import rules
from mobimart.campaigns.rules import RuleError


def test_a_valid_segment_round_trips() -> None:
    raw = [
        {"kind": "bought_in_category", "category_id": 7, "days": 30},
        {"kind": "has_consent", "channel": "sms"},
        {"kind": "scanned_qr", "days": 14, "not": True},
        {"kind": "viewed_product", "days": 3},
    ]
    parsed = rules.parse("all", raw)
    assert parsed.to_list() == raw
    assert parsed.conditions[2].negate
    assert parsed.conditions[3].int_value("product_id") is None  # optional, left out


def test_form_strings_become_numbers() -> None:
    parsed = rules.parse(
        "any", [{"kind": "in_geofence", "geofence_id": " 12 ", "days": "7", "not": "on"}]
    )
    (c,) = parsed.conditions
    assert c.values == {"geofence_id": 12, "days": 7}
    assert c.negate


@pytest.mark.parametrize(
    ("match", "conditions", "message"),
    [
        ("most", [{"kind": "follows_shop"}], "Match must be all or any."),
        ("all", [], "A segment needs 1 to 20 conditions."),
        ("all", [{"kind": "follows_shop"}] * 21, "A segment needs 1 to 20 conditions."),
        ("all", "has_consent", "Rules must be a list of conditions."),
        ("all", [3], "Condition 1: expected an object with a kind."),
        ("all", [{"kind": "liked"}], "Condition 1: kind must be one of bought_in_category,"),
        (
            "all",
            [{"kind": "follows_shop"}, {"kind": "bought_in_category", "days": 3}],
            "Condition 2 (bought_in_category): category_id is required.",
        ),
        (
            "all",
            [{"kind": "scanned_qr", "days": 0}],
            "Condition 1 (scanned_qr): days must be a whole number from 1 to 3650.",
        ),
        ("all", [{"kind": "scanned_qr", "days": 3651}], "from 1 to 3650"),
        ("all", [{"kind": "scanned_qr", "days": True}], "days must be a whole number"),
        ("all", [{"kind": "scanned_qr", "days": 2.5}], "days must be a whole number"),
        ("all", [{"kind": "scanned_qr", "days": "²"}], "days must be a whole number"),
        ("all", [{"kind": "scanned_qr", "days": "٣"}], "days must be a whole number"),
        ("all", [{"kind": "scanned_qr", "days": "9" * 30}], "days must be a whole number"),
        (
            "all",
            [{"kind": "has_consent", "channel": "fax"}],
            "Condition 1 (has_consent): channel must be one of sms, push, in_app.",
        ),
        (
            "all",
            [{"kind": "first_channel", "channel": "tv"}],
            "channel must be one of qr, sms, wifi, geo, direct.",
        ),
        ("all", [{"kind": "follows_shop", "colour": 1}], "unknown parameter colour."),
        ("all", [{"kind": "follows_shop", "not": "maybe"}], "not must be true or false."),
    ],
)
def test_mistakes_are_explained(match: Any, conditions: Any, message: str) -> None:
    with pytest.raises(RuleError) as error:
        rules.parse(match, conditions)
    assert message in str(error.value)


def test_each_rule_says_which_events_it_reads() -> None:
    parsed = rules.parse(
        "all",
        [
            {"kind": "bought_from_shop", "days": 30},
            {"kind": "first_channel", "channel": "wifi"},
            {"kind": "has_consent", "channel": "sms"},
        ],
    )
    assert parsed.reads == {
        "order_paid",
        "qr_scan",
        "link_click",
        "wifi_signup",
        "geofence_enter",
        rules.CONSENT,
    }
    assert rules.parse("all", [{"kind": "follows_brand", "brand_id": 1}]).reads == {rules.FOLLOW}
    assert "product_view" in rules.parse("all", [{"kind": "viewed_product", "days": 1}]).reads


def test_windows_and_entry_by_ageing() -> None:
    plain = rules.parse("all", [{"kind": "joined_wifi", "portal_id": 1}])
    assert plain.windowed == ()
    assert not plain.entry_by_ageing
    recent = rules.parse("all", [{"kind": "clicked_campaign", "days": 5}])
    assert [c.days for c in recent.windowed] == [5]
    assert not recent.entry_by_ageing
    lapsed = rules.parse("all", [{"kind": "bought_from_shop", "days": 90, "not": True}])
    assert lapsed.entry_by_ageing  # people join by time passing: the sweep re-evaluates


def test_every_kind_has_a_spec_with_reads() -> None:
    for kind, spec in rules.SPECS.items():
        assert spec.kind == kind
        assert spec.reads
        assert spec.windowed == any(p.name == "days" for p in spec.params)


_condition = st.sampled_from(rules.KINDS).flatmap(
    lambda kind: st.fixed_dictionaries(
        {
            "kind": st.just(kind),
            **{
                p.name: (
                    st.sampled_from(p.choices)
                    if p.is_text
                    else st.integers(1, min(p.maximum, 10**6))
                )
                for p in rules.SPECS[kind].params
                if p.required
            },
        },
        optional={"not": st.booleans()},
    )
)


@given(st.sampled_from(rules.MATCHES), st.lists(_condition, min_size=1, max_size=20))
def test_valid_rules_parse_and_round_trip(match: str, conditions: list[dict[str, Any]]) -> None:
    parsed = rules.parse(match, conditions)
    again = rules.parse(match, parsed.to_list())
    assert again == parsed
    assert len(parsed.conditions) == len(conditions)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=8,
    )
)
def test_anything_else_is_a_rule_error_not_a_crash(junk: Any) -> None:
    with contextlib.suppress(RuleError):
        rules.parse("all", junk)
