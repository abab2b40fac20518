from babel.messages.pofile import read_po

from mobimart.web.i18n import LOCALE_DIR, translations


def test_every_page_string_has_a_chinese_translation() -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as fh:
        template = {m.id for m in read_po(fh) if m.id}
    with (LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        zh = {m.id: m.string for m in read_po(fh) if m.id}
    untranslated = sorted(str(i) for i in template if not zh.get(i))
    assert untranslated == []


def test_catalogue_loads_and_translates() -> None:
    assert translations("zh_Hans").gettext("Sign in") == "登录"
    assert translations("en").gettext("Sign in") == "Sign in"
