import pytest

from mobimart.catalog import domain
from mobimart.catalog.domain import VariantSpec
from mobimart.errors import DomainError


def test_variants_are_checked_as_a_set() -> None:
    checked = domain.check_variants(
        [
            VariantSpec("A-1", 100, 1, {" colour ": "red  dark"}),
            VariantSpec("A-2", 200, 0, {"colour": "blue"}),
        ]
    )
    assert checked[0].options == {"colour": "red dark"}
    assert domain.summary(checked) == (100, 1)
    cases = [
        ([], "invalid_variants"),
        ([VariantSpec("a", 1, 0), VariantSpec("A", 1, 0)], "duplicate_sku"),
        ([VariantSpec("-x", 1, 0)], "invalid_sku"),
        ([VariantSpec("x", 0, 0)], "invalid_price"),
        (
            [VariantSpec("x", 1, 0, {"a": "1"}), VariantSpec("y", 1, 0, {"b": "1"})],
            "invalid_options",
        ),
        (
            [VariantSpec("x", 1, 0, {"a": "1"}), VariantSpec("y", 1, 0, {"a": "1"})],
            "duplicate_variant",
        ),
        ([VariantSpec("x", 1, 0, {"a": ""})], "invalid_options"),
        ([VariantSpec("x", 1, 0, {str(i): "v" for i in range(4)})], "invalid_options"),
    ]
    for variants, code in cases:
        with pytest.raises(DomainError) as caught:
            domain.check_variants(variants)
        assert caught.value.code == code, variants


def test_tags_are_deduplicated_ignoring_case() -> None:
    assert domain.check_tags(["Gift", "gift ", "tea  set"]) == ["Gift", "tea set"]
    with pytest.raises(DomainError):
        domain.check_tags([str(i) for i in range(11)])
    with pytest.raises(DomainError):
        domain.check_tags(["x" * 31])


def test_slugs() -> None:
    assert domain.slugify("Café Noir & Co.") == "cafe-noir-co"
    assert domain.slugify("茶") == ""
