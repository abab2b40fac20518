from mobimart.search.analysis import analyze, head, surface_words
from mobimart.search.engine import SearchIndex

CATALOGUE = {
    1: "Delta Vero 1-Handle Shower Faucet Trim Kit in Chrome",
    2: "Moen Kitchen Faucet with Pull Down Sprayer",
    3: "Faucet Repair Kit for Delta Shower Valves",
    4: "3/4 in. x 10 ft. Copper Pipe",
    5: "Whirlpool 25 cu. ft. French Door Refrigerator in Stainless Steel",
    6: "BEHR Premium DeckOver 1 gal. Wood and Concrete Coating",
    7: "LED Showerhead with Handheld Sprayer",
    8: "不锈钢 保温杯 500ml",
}


def build() -> SearchIndex:
    index = SearchIndex()
    for doc_id, title in CATALOGUE.items():
        index.add(doc_id, {"title": title})
    return index


def test_units_and_numbers_meet_however_they_are_written() -> None:
    assert analyze("3/4 in. pipe") == analyze('3/4" pipe') == analyze("3/4-inch pipe")
    assert analyze("25 cu. ft.") == analyze("25 cuft")
    assert "inch" in surface_words("1/2 in.")


def test_head_is_what_the_product_is() -> None:
    assert head("Faucet Repair Kit for Delta Shower Valves") == "Faucet Repair Kit"


def test_the_product_named_by_the_query_ranks_first() -> None:
    index = build()
    assert index.search("shower faucet")[0] == 1
    assert index.search("faucet repair kit")[0] == 3
    assert index.search("kitchen faucet")[0] == 2


def test_adjacent_words_beat_scattered_ones() -> None:
    index = build()
    results = index.search("shower faucet")
    # 1 has "Shower Faucet" adjacent; 3 has both words apart.
    assert results.index(1) < results.index(3)


def test_one_typo_in_a_long_word_is_forgiven() -> None:
    index = build()
    for typo in ("refrigerater", "refrigeator", "refirgerator", "rrefrigerator"):
        assert index.search(typo)[:1] == [5], typo
    assert index.correct("faucte") == "faucet"
    assert index.correct("zzzzzz") == "zzzzzz"


def test_units_in_the_query_find_the_product() -> None:
    assert build().search('3/4" copper pipe 10 foot')[0] == 4


def test_joined_and_split_words() -> None:
    index = build()
    assert index.search("deck over")[0] == 6  # joined: "deckover"
    assert index.search("showerhead")[0] == 7
    assert index.search("shower head")[0] == 7


def test_synonyms_find_each_other() -> None:
    index = build()
    assert 5 not in index.search("fridge")
    index.set_synonyms([(["fridge", "refrigerator"], None)])
    assert index.search("fridge")[0] == 5


def test_a_merchants_synonyms_reach_only_its_products() -> None:
    index = SearchIndex()
    index.add(1, {"title": "Refrigerator magnet"}, owner=10)
    index.add(2, {"title": "Refrigerator shelf"}, owner=20)
    index.set_synonyms([(["fridge", "refrigerator"], 10)])
    assert index.search("fridge") == [1]
    index.set_synonyms([])
    assert index.search("fridge") == []


def test_chinese_query_is_segmented() -> None:
    index = build()
    assert index.search("保温杯") == [8]
    assert index.search("不锈钢杯子")[0] == 8


def test_incremental_add_update_and_remove() -> None:
    index = build()
    assert index.search("garden hose") == []
    index.add(9, {"title": "Flexzilla Garden Hose 50 ft."})
    assert index.search("garden hose") == [9]
    index.add(9, {"title": "Flexzilla Water Hose 50 ft."})  # re-indexed, not duplicated
    assert index.search("garden hose") == [9]
    assert index.search("water hose") == [9]
    assert len(index) == 9
    index.remove(9)
    assert index.search("hose") == []
    assert len(index) == 8
    assert index.correct("flexzila") == "flexzila"  # its words left the vocabulary


def test_fields_filters_and_limit() -> None:
    index = SearchIndex()
    index.add(1, {"title": "Cordless Drill", "brand": "DeWalt", "description": "20V battery"})
    index.add(2, {"title": "Hammer Drill", "brand": "Bosch"})
    assert index.search("dewalt drill")[0] == 1
    assert index.search("drill", allowed={2}) == [2]
    assert len(index.search("drill", limit=1)) == 1
    assert index.search("") == []


def test_suggestions_complete_the_last_word() -> None:
    index = build()
    assert index.suggest("sho")[:2] == ["shower", "showerhead"]
    assert index.suggest("kitchen fau") == ["faucet"]
    assert index.suggest("qqq") == []
