"""Detector for ADDRESS written in Latin script: street lines with the unit, building and place parts around them.

An address is a chain of comma- or line-separated parts around a **street
core**:

* ``number + words + street type`` (``88 Nathan Road``, ``1902 Peachtree Rd NE``);
* a European street with its number after the name (``Calle de Alcalá 142``,
  ``ul. Marszałkowska 84/92``, a compound street word such as ``Sveavägen 44``);
* ``chome-ban-go`` numbers before a district (``2-14-7 Shibuya``), ``PO Box`` numbers;
* ``words + street type`` without a number when unit parts with numbers come
  first (``No. 12, Lane 35, Section 4, ... Road``).

The chain grows leftwards over unit and building parts (``Flat B``, ``12/F``,
``Suite 1400``, ``Block C``, ``... Building``/``Mansion``/``House``, a building
named without a building word after a unit part or before a floor: ``25/F, Two IFC``,
``Nina Tower 18/F``) and
rightwards over place parts: capitalized place words, postal codes (US ZIP,
UK, Canadian, numeric ones before or after the city), unit parts written
after the street (``Apt 1105``, ``#08-112``, ``3 tr``, ``4º B``).  A sentence
end stops it.
"""

from __future__ import annotations

import re

_CAP = r"[^\W\d_a-z](?:[\w'’.-]*\w)?\.?"  # a capitalized word in any alphabet: Tsim, Da'an, Alcalá, St.
_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Parkway|Pkwy|Drive|Dr|Way|Court|Ct|Place|Pl|"
           r"Terrace|Close|Crescent|Square|Sq|Highway|Hwy|Row|Gardens|Walk|Mews|Grove|Circle|Plaza|Trail|Quay|"
           r"Wharf|Embankment|Ave\.|Vista\s+Del\s+\w+)")
_DIRECTION = r"(?:\s+(?:North|South|East|West|NE|NW|SE|SW|N|S|E|W)\b)?"
_NUMBERED_STREET = rf"(?:(?:No\.|Blk|Block)\s*)?\d{{1,5}}[A-Za-z]?,?\s+(?:(?:{_CAP}|\d+(?:st|nd|rd|th))\s+){{0,4}}?{_STREET}\b\.?{_DIRECTION}(?:\s+\d{{1,3}}\b)?"
_EU_LEAD = (r"(?:ul\.|al\.|Calle(?:\s+de(?:l|\s+la)?)?|Carrer(?:\s+de)?|Via|Viale|Piazza|Rue(?:\s+d[eu](?:s|\s+la)?)?|"
            r"Avenida|Avenue\s+de|Rua|Plac|Boulevard)")
_EU_SUFFIX = (r"(?:vägen|gatan|gata|vej|gade|veien|gaten|straße|strasse|str\.|weg|laan|straat|plein|gracht|allee|"
              r"platz|ring|gasse|utca|tie|katu)")
_HOUSE = r"\d{1,4}[A-Za-z]?(?:\s*[/-]\s*\d{1,4}[A-Za-z]?)?"
_POSTCODE = r"(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
_PLACE_WORD = r"[^\W\d_a-z][^\W\d_]*(?:['’-][^\W\d_]+)*"  # letters only, so a postcode is not a place word
_PLACE = rf"(?:{_PLACE_WORD}(?:\s+{_PLACE_WORD}){{0,3}})"
# Any street name, whatever its street word (Erickson Cliff, Bridges Dam), after a house or flat number and
# before a town and a postcode.
_POSTED_STREET = (rf"(?:\d{{1,5}}[A-Za-z]?\s+|(?:Flat|Studio|Apartment|Unit|Apt\.?|Suite)\s*[A-Za-z0-9]{{1,5}},\s*)(?:{_CAP}\s+){{0,3}}{_CAP}(?:\s+(?:Apt\.?|Suite|Unit|Ste\.?|#)\s*#?[A-Za-z0-9]{{1,5}})?"
                  rf"(?=,\s*{_PLACE},?\s+{_POSTCODE}(?![\w-]))")
_CORE = re.compile(
    rf"(?<![\w$£€.,:/-])(?:{_NUMBERED_STREET}|{_POSTED_STREET}"
    rf"|{_EU_LEAD}\s+{_CAP}(?:\s+(?:de|del|la|di|{_CAP})){{0,3}}\s+{_HOUSE}(?:\s+(?:m\.|lok\.|apt\.?)\s*\d{{1,4}})?"
    rf"|[^\W\d_a-z]\w*{_EU_SUFFIX}\s+{_HOUSE}"
    rf"|\d{{1,2}}-\d{{1,2}}-\d{{1,3}}\s+{_CAP}(?=,)"
    rf"|P\.?\s?O\.?\s+Box\s+\d{{1,6}})")
_BARE_STREET = re.compile(rf"(?:{_CAP}\s+){{0,3}}(?:\d+(?:st|nd|rd|th)\s+)?{_STREET}\b\.?{_DIRECTION}")
_SEP = r"(?:,[ \t]*\n?[ \t]*|[ \t]*\n[ \t]*)"
_UNIT = (r"(?:(?:Flat|Studio|Unit|Suite|Ste|Room|Rm|Apt|Apartment|Shop|Blk|Block|Tower|Floor|Level|Lvl|No\.|Lane|Alley|"
         r"Section|Sec\.|Wing|House)\s*#?[A-Za-z0-9]{1,5}(?:[/-][A-Za-z0-9]{1,5})?"
         r"|\d{1,3}\s*/\s*F|\d{1,3}F|#\d{1,3}-\d{1,5}|\d+\s*(?:tr|º|ª|o|a)(?:\s*[A-Z]\b)?|m\.\s*\d{1,4}"
         rf"|(?:{_CAP}\s+){{1,3}}(?:Building|Bldg|House|Mansion|Tower|Centre|Center|Court|Place|Plaza|Estate|Hall|"
         r"Garden|Gardens|Shing|Residence|Apartments|Villa)(?:\s+\d{1,3})?)")
_FLOOR = r"(?:\d{1,3}\s*/\s*F|\d{1,3}F|(?:Floor|Level|Room|Rm|Unit|Suite)\s*[A-Za-z0-9]{1,5})"
# A building named without a building word (Two IFC), right after a unit part or right before a floor part.
_NOT_NAMED = r"(?!(?:Dear|Hi|Hello|Attn|To|From|Re|Please|Thanks|Send|Mail|Office|Address)\b)"
_NAMED = rf"(?:{_NOT_NAMED}{_CAP}\s+){{0,2}}{_NOT_NAMED}{_CAP}"
_LEFT = re.compile(rf"(?:(?:{_UNIT}{_SEP})+(?:{_NAMED}{_SEP}(?:{_UNIT}{_SEP})*)?|{_NAMED}[ \t]+{_FLOOR}{_SEP}(?:{_UNIT}{_SEP})*)$")
_POSTAL = (rf"(?:{_POSTCODE}"
           r"|\d{3}\s?\d{2}|\d{2}-\d{3}|\d{3}-\d{4}|\d{3,6})")
_RIGHT_PART = re.compile(
    rf"{_SEP}(?:{_UNIT}|{_POSTAL}\s+{_PLACE}|{_PLACE}(?:,?\s+{_POSTAL})?|{_POSTAL})(?=[,.;:!?)\s]|$)")
_NOT_PLACE = re.compile(r"(?i:thanks|thank|regards|please|my|the|and|but|i|we|it|he|she|they|you|this|that|ref|tel|"
                        r"phone|email|name|dob|card|account|iban|id|hkid|ssn|best|cheers|sincerely)$")
_MAX_RIGHT = 5


def _extend_right(work: str, end: int) -> int:
    for _ in range(_MAX_RIGHT):
        m = _RIGHT_PART.match(work, end)
        if not m:
            break
        first = re.match(r"[,\s]*([\w'’#.]+)", m.group())
        if first and _NOT_PLACE.match(first.group(1).rstrip(".")):
            break
        end = m.end()
    return end


def _extend_left(work: str, start: int) -> int:
    m = _LEFT.search(work, max(0, start - 120), start)
    return m.start() if m else start


def detect_en_address(work: str) -> list[tuple[int, int]]:
    """Spans of Latin-script addresses (street core with its unit, building and place parts)."""
    spans = []
    for core in _CORE.finditer(work):
        spans.append((_extend_left(work, core.start()), _extend_right(work, core.end())))
    for street in _BARE_STREET.finditer(work):  # No. 12, Lane 35, Section 4, Ren'ai Road: units first
        left = _extend_left(work, street.start())
        if left < street.start() and re.search(r"\d", work[left:street.start()]):
            spans.append((left, _extend_right(work, street.end())))
    return spans
