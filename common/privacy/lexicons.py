"""Name vocabularies for the NAME detector, taken from Faker's locale providers (MIT licence).

Faker's ``person`` providers list the given names and surnames common in each
locale, compiled from public name statistics -- a source with clear
provenance, never a list built from leaked personal data.  This module reads
them once, at import:

* :data:`FIRST_NAMES` / :data:`LAST_NAMES`: case-folded Latin-script given
  names and surnames across the locales a bank's customers come from
  (English-speaking, European, Latin American, African, South and South-East
  Asian);
* :data:`CN_SURNAMES`: single and compound Chinese surnames (simplified and
  traditional, ``zh_CN`` and ``zh_TW``);
* :data:`CN_GIVEN_CHARS`: characters of Chinese given names;
* :data:`EVERYDAY_WORDS`: everyday English words (Faker's ``en_US`` lorem
  vocabulary, job titles, street suffixes and business words, month and day names), which a capitalized word must not be to
  count as a name without a known-name list behind it.

The synthetic generator (:mod:`common.data.synthetic`) keeps its own lists, so
recall measured on generated data is not recall on this vocabulary; the
independent evaluation set (``tests/data/pii_eval``) shares neither.
"""

from __future__ import annotations

import calendar
import importlib
import unicodedata
from functools import lru_cache

import pycountry

from common.privacy import pii

_LATIN_LOCALES = (
    "en_US en_GB en_IE en_IN en_NG en_KE en_PK en_NZ de_DE de_AT de_CH fr_FR fr_BE es_ES es_MX es_AR pt_BR pt_PT "
    "it_IT nl_NL nl_BE pl_PL cs_CZ sk_SK sv_SE no_NO da_DK fi_FI id_ID tr_TR vi_VN ro_RO hu_HU hr_HR sl_SI lt_LT "
    "lv_LV et_EE ga_IE sw zu_ZA yo_NG ig_NG ha_NG tw_GH").split()
_CN_LOCALES = ("zh_CN", "zh_TW")
_ROMANIZED_LOCALES = ("zh_CN", "zh_TW", "ja_JP")  # Faker lists these scripts' names in Latin letters too
# Given names and surnames that are also everyday English words; they count only after a cue.
COMMON_WORDS: frozenset[str] = frozenset(
    "will may grace long young white best rich north street chase joy hope amber bank card service april june "
    "august summer winter rose faith sunny hunter king page price rice cash law mark bill sterling penny star "
    "dear hi hello thanks thank regards please sorry yes no ok okay can could would should just also still the "
    "and but for from with our your my this that they we he she it is are was were have has had do does did "
    "not any all new good great fine well love lane park hill dale wood ford field brook green brown black gray "
    "grey gold silver case major miles early lord pope guy son man van del la le de da di du el al bin ben san "
    "santa ha ho lee li ma bo an".split())


def _provider_module(module: str):
    return importlib.import_module(module).Provider


def _provider(locale: str):
    return _provider_module(f"faker.providers.person.{locale}")


def _names(locales: tuple[str, ...] | list[str], attrs: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for locale in locales:
        provider = _provider(locale)
        for attr in attrs:
            out.update(getattr(provider, attr, ()))
    return out


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Case-folded, accents stripped: ``Ciarán`` and ``Ciaran`` look up alike."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.casefold()) if not unicodedata.combining(c))


FIRST_NAMES: frozenset[str] = frozenset(
    fold(n) for n in _names(_LATIN_LOCALES, ("first_names", "first_names_male", "first_names_female"))
    | _names(_ROMANIZED_LOCALES, ("first_romanized_names",)) if n.isalpha() or "-" in n or "'" in n)
"""Given names of the Latin-script locales (:func:`fold`-ed)."""

ENGLISH_GIVEN_NAMES: frozenset[str] = frozenset(
    fold(n) for n in _names([loc for loc in _LATIN_LOCALES if loc.startswith("en_")],
                            ("first_names", "first_names_male", "first_names_female")) if n.isalpha())
"""Given names of the English-speaking locales: the English names Chinese speakers also go by (Tony, Jessica)."""

_LAST_ATTRS = ("last_names", "last_names_male", "last_names_female", "male_last_names", "female_last_names",
               "unisex_last_names")
_SURNAME_LIST = {fold(n) for n in _names(_LATIN_LOCALES, _LAST_ATTRS) | _names(_ROMANIZED_LOCALES, ("last_romanized_names",))
                 if n.replace("-", "").replace("'", "").isalpha()}
LAST_NAMES: frozenset[str] = frozenset(
    _SURNAME_LIST | {n[:-1] + "a" for n in _SURNAME_LIST if n.endswith(("ski", "cki"))})  # Kowalski, Kowalska
"""Surnames of the Latin-script locales, and romanized Chinese and Japanese surnames (:func:`fold`-ed)."""

def _everyday_words() -> set[str]:
    company = _provider_module("faker.providers.company.en_US")
    phrases = [*_provider_module("faker.providers.lorem.en_US").word_list, *calendar.month_name[1:], *calendar.day_name,
               *_provider_module("faker.providers.job.en_US").jobs, *_provider_module("faker.providers.address.en_US").street_suffixes,
               *(p for group in (*company.catch_phrase_words, *company.bsWords) for p in group)]
    return {w.strip(",()").casefold() for p in phrases for w in p.split()} | set(COMMON_WORDS)


EVERYDAY_WORDS: frozenset[str] = frozenset(_everyday_words())
"""Everyday English words: a capitalized one (``Summer``, ``However``) is no name by its shape alone."""

CN_SURNAMES: frozenset[str] = frozenset(_names(_CN_LOCALES, ("last_names",))) | pii.CN_SURNAMES
"""Chinese surnames (one or two characters): Faker's and the common ones of :mod:`common.privacy.pii`."""

# The compound surnames of the classic 百家姓 (Hundred Family Surnames, public domain); Faker lists only a few.
_BAIJIAXING_COMPOUND = (
    "万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 公孙 仲孙 轩辕 "
    "令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空 亓官 司寇 子车 颛孙 端木 巫马 公西 漆雕 乐正 壤驷 公良 拓跋 夹谷 "
    "宰父 谷梁 段干 百里 东郭 南门 呼延 归海 羊舌 微生 梁丘 左丘 东门 西门 第五 南宫 独孤 慕容").split()
CN_COMPOUND_SURNAMES: tuple[str, ...] = tuple(sorted({s for s in CN_SURNAMES if len(s) > 1} | set(_BAIJIAXING_COMPOUND)))
"""Two-character Chinese surnames."""

CN_GIVEN_CHARS: frozenset[str] = frozenset("".join(_names(_CN_LOCALES, ("first_names", "first_names_male",
                                                                        "first_names_female")))) | pii.CN_GIVEN_NAME_CHARS
"""Characters of Chinese given names."""

_COUNTRY_NAMES = [name.replace(",", " ").split() for c in pycountry.countries
                  for name in (c.name, getattr(c, "common_name", c.name))]
COUNTRY_WORDS: frozenset[str] = frozenset(
    w.casefold() for words in _COUNTRY_NAMES for w in words
    if len(w) > 3 and (len(words) == 1 or (w.casefold() not in FIRST_NAMES and w.casefold() not in LAST_NAMES)))
"""Words of country names (ISO 3166, :mod:`pycountry`): ``France`` after *from* is a place, not a person.

A word of a longer country name that is also a given name or surname
(Helena of Saint Helena, Martin of Saint Martin) stays a possible name."""

PLACE_NAMES: frozenset[str] = frozenset(
    n.casefold() for n in (*(c.name for c in pycountry.countries), *(s.name for s in pycountry.subdivisions))
    if " " in n)
"""Multi-word names of countries and their subdivisions (:mod:`pycountry`): ``Hong Kong`` is a place, not a person."""
