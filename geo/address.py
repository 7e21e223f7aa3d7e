"""Chinese free-text addresses: normalise, parse, match against the standard address registry.

A grid office types addresses into spreadsheets the way people say them; the
registry (标准地址库) holds one standard address per building. This module turns
the first into a building of the second, or says honestly that it cannot.

Variants handled
----------------
* full-width digits, letters and signs (``１２号``, ``３＃``) — NFKC;
* spaces and punctuation anywhere (``新城镇 州背社区，人民路12号``); a space
  between two numbers separates them (``2 302`` reads as ``2-302``);
* Chinese numerals in numbered parts: ``十二号`` → ``12号``, ``三栋`` → ``3栋``,
  ``二单元`` → ``2单元``, ``三零二室`` → ``302室``, ``第三组`` → ``3组``; numerals
  inside names (``三村``, ``五一村``, ``六祖镇``) are left alone;
* building markers ``幢``, ``座``, ``号楼``, ``号栋`` and ``#楼`` → ``栋``;
* ``#`` after a number: a house number (``号``) after a road or a village group
  (``人民路12#``, ``一组5#``), a building (``栋``) anywhere else (``翠湖花园3#``);
* rooms ``室``/``房``/``号房``/``房间`` → ``室``; village groups ``组``/``小组``/
  ``村民小组`` → ``组``; unit and room as ``2单元302室``, ``2-302``, ``302房`` or a
  bare number after the unit or building; ``3-2-302`` = building, unit, room;
* missing prefixes: the province, city and county may each be omitted
  (``新城镇州背社区…``), and written without their suffix (``广东云浮新兴县``,
  ``云浮新兴县``, ``新兴新城镇``); townships and communities may also lose their
  suffix (``新城州背…``) when the name stays unmistakable (a short form is never
  read where a road or estate of that name starts: ``新城路`` stays a road);
  ``居委会``/``居委`` for ``社区`` and ``村委会``/``村委`` for ``村``;
* missing township or community: the building is still found when the rest
  (road + number, estate + building, or both) is unique in the county;
* estate before or after the road number (``翠湖花园人民路12号3栋``), road
  number without estate (``人民路12号3栋``), ``号`` for the building after an
  estate (``翠湖花园3号``);
* small typos in road, estate, township and community names (rapidfuzz ratio),
  as long as the closest registry name is clearly closest.

Promises
--------
* ``normalise`` is idempotent and maps every variant above to one canonical
  spelling: Arabic numbers, ``N号`` (house), ``N栋`` (building), ``N单元``,
  ``N室``, ``N组`` (village group).
* ``AddressIndex.match`` never guesses: a building is returned only when it is
  the one registry building consistent with every part the address gives (all
  numbers equal, names equal or — for names not in the registry — close), or
  clearly closer than every other consistent one. When two or more fit about
  equally the answer is ``ambiguous`` with the candidates and no building; when
  none fits, the answer falls back to the community, township or county the
  address names (``matched``, ``building_id=None``, ``method="fallback"``).
* Pure: stdlib, rapidfuzz. No database, no web framework.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

Level = Literal["building", "community", "township", "county", "none"]
Status = Literal["matched", "ambiguous", "unmatched"]
Method = Literal["exact", "fuzzy", "fallback", "ambiguous", "none"]

# Names not in the registry are compared with rapidfuzz's ratio (0–100). One wrong
# character in a 3-character road scores 66.7, in a 4-character estate 75.
NAME_CUTOFF = 60.0
# Township/community typos are looked for in raw text windows, so demand more.
ADMIN_CUTOFF = 70.0
# A building wins only if its score beats the next consistent one by this much.
AMBIGUITY_MARGIN = 0.2
MAX_CANDIDATES = 5
# Fallback confidence by level: the area is certain, the building is not.
_FALLBACK_SCORE = {"community": 0.6, "township": 0.4, "county": 0.2}

PROVINCES = (
    "北京市", "天津市", "上海市", "重庆市", "河北省", "山西省", "辽宁省", "吉林省",
    "黑龙江省", "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省",
    "湖北省", "湖南省", "广东省", "海南省", "四川省", "贵州省", "云南省", "陕西省",
    "甘肃省", "青海省", "台湾省", "内蒙古自治区", "广西壮族自治区", "西藏自治区",
    "宁夏回族自治区", "新疆维吾尔自治区", "香港特别行政区", "澳门特别行政区",
)  # fmt: skip
_PROVINCE_SUFFIXES = (
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
)
_COUNTY_SUFFIXES = ("自治县", "县", "区", "市", "旗")
_TOWNSHIP_SUFFIXES = ("街道办事处", "街道", "镇", "乡")
_COMMUNITY_SUFFIXES = ("社区居委会", "居委会", "社区", "村委会", "村")
# Variants people write for a community's office instead of its name's suffix.
_COMMUNITY_ALIASES = {"社区": ("居委会", "居委", "社区居委会"), "村": ("村委会", "村委")}
_TOWNSHIP_ALIASES = {"街道": ("街道办事处", "街道办"), "镇": ("镇人民政府",)}
# A short (suffix-less) name is not read where one of these follows: "新城路" is a road.
_NAME_CONTINUATIONS = (
    "路", "街", "道", "巷", "大道", "花园", "小区", "新村", "苑", "名苑", "豪庭", "雅居",
    "公寓", "大厦", "广场", "山庄", "家园", "公馆", "市场", "中学", "小学", "医院",
)  # fmt: skip
_ROAD_TAIL = re.compile(r"(?:大道|大街|路|街|巷|道|弄|里)$")
_ESTATE_THEN_ROAD = re.compile(
    r"(.+?(?:花园|小区|新村|名苑|豪庭|雅居|公寓|大厦|广场|山庄|家园|公馆|苑|庭|居|阁|城))"
    r"(.+(?:大道|大街|路|街|巷|道))"
)
_ADMIN_TAIL = re.compile(r"(?:社区|居委会|居委|村委会|村委|村|镇|乡|街道|县|区|市)$")
_ESTATE_TAIL = re.compile(
    r"(?:花园|小区|新村|名苑|豪庭|雅居|公寓|大厦|广场|山庄|家园|公馆|苑|庭|居|阁|城|宿舍)$"
)

# --- normalise ------------------------------------------------------------------------

_ZH_DIGIT = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_ZH_UNIT = {"十": 10, "百": 100, "千": 1000}
_ZH_NUM = "零〇一二两三四五六七八九十百千"
# Markers that make a preceding number a numbered part (so its numerals convert).
_MARKERS = "号楼|号栋|号房|号|栋|幢|座|单元|室|房间|房|村民小组|小组|组|楼|层|户|#"
_RE_SPACE_BETWEEN_DIGITS = re.compile(r"(?<=\d)\s+(?=\d)")
_RE_SPACE = re.compile(r"\s+")
_RE_DASH = re.compile(r"[‐‑‒–—―~〜]")
_RE_PUNCT = re.compile(r"[^\w#\-]|_")
_RE_ORDINAL = re.compile(rf"第(?=[\d{_ZH_NUM}]+(?:{_MARKERS}))")
_RE_ZH_NUMBER = re.compile(rf"[{_ZH_NUM}]+(?=(?:{_MARKERS}))")
_RE_LEADING_ZERO = re.compile(r"(?<!\d)0+(?=\d)")
_RE_BUILDING = re.compile(r"(?<=[\dA-Z])(?:号楼|号栋|栋楼|幢|座|#楼)")
_RE_ROOM = re.compile(r"(?<=\d)(?:号房|房间|房|室)")
_RE_GROUP = re.compile(r"(?<=\d)(?:村民小组|小组|组)")
_RE_HASH = re.compile(r"\d+#")
_RE_DIGIT = re.compile(r"\d")
_DISTINCTIVE = frozenset("0123456789一二三四五六七八九十东西南北中上下前后内外新旧大小")
# After these a "#" number is a house number; anywhere else a building number.
_HOUSE_CONTEXT = frozenset("路街道巷弄里组")


def chinese_to_int(numeral: str) -> int:
    """Chinese numerals to an int: ``十二`` → 12, ``二十`` → 20, ``一百零五`` → 105,
    and digit by digit when no ``十/百/千`` is present: ``三零二`` → 302."""
    if not any(ch in _ZH_UNIT for ch in numeral):
        return int("".join(str(_ZH_DIGIT[ch]) for ch in numeral))
    total, current = 0, 0
    for ch in numeral:
        if ch in _ZH_UNIT:
            total += (current or 1) * _ZH_UNIT[ch]
            current = 0
        else:
            current = _ZH_DIGIT[ch]
    return total + current


def normalise(text: str) -> str:
    """The canonical spelling of ``text`` (see the module docstring); idempotent.

    NFKC (full-width → ASCII), ASCII letters upper-cased, whitespace and
    punctuation removed (a space between two numbers becomes ``-``), Chinese
    numerals before a marker → Arabic, ``幢/座/号楼`` → ``栋``, ``房`` → ``室``,
    ``小组`` → ``组``, ``#`` → ``号`` or ``栋`` by context.
    """
    s = unicodedata.normalize("NFKC", text).upper()
    s = _RE_SPACE_BETWEEN_DIGITS.sub("-", s)
    s = _RE_SPACE.sub("", s)
    s = _RE_DASH.sub("-", s)
    s = _RE_PUNCT.sub("", s)
    s = _RE_ORDINAL.sub("", s)
    s = _RE_ZH_NUMBER.sub(lambda m: str(chinese_to_int(m.group())), s)
    s = _RE_LEADING_ZERO.sub("", s)
    s = _RE_BUILDING.sub("栋", s)
    s = _RE_ROOM.sub("室", s)
    s = _RE_GROUP.sub("组", s)
    return _RE_HASH.sub(functools.partial(_hash_marker, text=s), s)


def _hash_marker(m: re.Match[str], *, text: str) -> str:
    before = text[m.start() - 1] if m.start() > 0 else ""
    return m.group()[:-1] + ("号" if before in _HOUSE_CONTEXT else "栋")


@functools.lru_cache(maxsize=65536)
def _norm_name(value: str | None) -> str | None:
    """A registry name, normalised; ``None`` for missing or empty."""
    if value is None:
        return None
    out = normalise(value)
    return out or None


@functools.lru_cache(maxsize=65536)
def _norm_number(value: str | None, marker: str) -> str | None:
    """A registry number in canonical form: ``"12"``, ``"十二号"`` → ``"12号"``."""
    out = _norm_name(value)
    if out is None:
        return None
    if out.isdigit() or (len(out) == 1 and out.isalpha() and out.isascii()):
        return out + marker
    return out


# --- parse ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """The parts of one address, in canonical (normalised) spelling, ``None`` when absent.

    Numbered parts keep their marker: ``house_number="12号"``, ``building_no="3栋"``,
    ``unit="2单元"``, ``room="302室"``, ``village_group="3组"``. Admin names are the
    registry's full names when ``known`` recognised them (``新兴`` → ``新兴县``),
    else as written. ``extra`` holds text that fits no part (ignored by matching).
    """

    province: str | None = None
    city: str | None = None
    county: str | None = None
    township: str | None = None
    community: str | None = None
    road: str | None = None
    house_number: str | None = None
    estate: str | None = None
    building_no: str | None = None
    unit: str | None = None
    room: str | None = None
    village_group: str | None = None
    extra: str | None = None


@dataclass(frozen=True)
class AdminNames:
    """Names a parser may trust: admin areas, roads and estates (any spelling; normalised here).

    ``AddressIndex`` builds one from its registry (``AddressIndex.names``). With
    it, ``parse`` recognises parts by name rather than by suffix alone, which is
    what makes omitted suffixes and omitted levels safe to read.
    """

    counties: frozenset[str] = frozenset()
    townships: frozenset[str] = frozenset()
    communities: frozenset[str] = frozenset()
    roads: frozenset[str] = frozenset()
    estates: frozenset[str] = frozenset()
    cities: frozenset[str] = frozenset()
    provinces: frozenset[str] = frozenset(PROVINCES)

    @functools.cached_property
    def _lexicon(self) -> _Lexicon:
        return _Lexicon.build(self)


# Levels in address order.
_PROVINCE, _CITY, _COUNTY, _TOWNSHIP, _COMMUNITY = range(5)
_LEVEL_SUFFIXES = {
    _PROVINCE: _PROVINCE_SUFFIXES,
    _CITY: ("市", "地区", "自治州", "盟"),
    _COUNTY: _COUNTY_SUFFIXES,
    _TOWNSHIP: _TOWNSHIP_SUFFIXES,
    _COMMUNITY: _COMMUNITY_SUFFIXES,
}


@dataclass(frozen=True, slots=True)
class _Spelling:
    level: int
    name: str  # the normalised full name it stands for
    short: bool  # the suffix was dropped: only read where no road/estate starts


@dataclass
class _Lexicon:
    """Prefix tables for reading admin names, roads and estates off the front of a string."""

    spellings: dict[str, list[_Spelling]] = field(default_factory=dict)
    longest: int = 0
    roads: frozenset[str] = frozenset()
    estates: frozenset[str] = frozenset()
    estate_list: list[str] = field(default_factory=list)
    protected: re.Pattern[str] | None = None  # known roads/estates containing digits
    vocab_longest: int = 0
    by_level: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, names: AdminNames) -> _Lexicon:
        lex = cls()
        groups = (
            (_PROVINCE, names.provinces),
            (_CITY, names.cities),
            (_COUNTY, names.counties),
            (_TOWNSHIP, names.townships),
            (_COMMUNITY, names.communities),
        )
        for level, raw in groups:
            normalised = sorted({n for n in (_norm_name(r) for r in raw) if n})
            lex.by_level[level] = normalised
            for name in normalised:
                for spelling, short in _spellings(name, level=level):
                    lex.spellings.setdefault(spelling, []).append(_Spelling(level, name, short))
        lex.longest = max((len(s) for s in lex.spellings), default=0)
        lex.roads = frozenset(n for n in (_norm_name(r) for r in names.roads) if n)
        lex.estates = frozenset(n for n in (_norm_name(e) for e in names.estates) if n)
        lex.estate_list = sorted(lex.estates)
        with_digits = sorted((n for n in lex.roads | lex.estates if _RE_DIGIT.search(n)), key=len)
        if with_digits:
            alternatives = "|".join(re.escape(n) for n in reversed(with_digits))
            lex.protected = re.compile(f"({alternatives})")
        lex.vocab_longest = max((len(n) for n in lex.roads | lex.estates), default=0)
        return lex

    def vocab_starts(self, s: str, pos: int) -> int:
        """Length of the longest known road or estate name starting at ``pos`` (0: none)."""
        for length in range(min(self.vocab_longest, len(s) - pos), 0, -1):
            word = s[pos : pos + length]
            if word in self.roads or word in self.estates:
                return length
        return 0


def _spellings(name: str, *, level: int) -> list[tuple[str, bool]]:
    """The full name, office aliases, and the suffix-less short form (stem ≥ 2 chars)."""
    out = [(name, False)]
    for suffix in _LEVEL_SUFFIXES[level]:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            aliases = {**_COMMUNITY_ALIASES, **_TOWNSHIP_ALIASES}.get(suffix, ())
            if level in (_TOWNSHIP, _COMMUNITY):
                out += [(stem + alias, False) for alias in aliases]
            if len(stem) >= 2:
                out.append((stem, True))
            break
    return out


def parse(text: str, *, known: AdminNames | None = None) -> ParsedAddress:
    """Split ``text`` into its parts (see ``ParsedAddress``); never raises on odd input.

    With ``known`` names the admin parts are recognised by name (tolerating
    omitted levels and suffixes, and small typos); without, by their suffixes.
    """
    return _parse(normalise(text), known=known).parsed


@dataclass(frozen=True, slots=True)
class _Reading:
    parsed: ParsedAddress
    admin_sim: float  # similarity (0..1) of admin names read despite a typo
    used_short: bool  # a township/community was read from its suffix-less form


def _parse(s: str, *, known: AdminNames | None, strict: bool = False) -> _Reading:
    """Parse a normalised string; ``strict`` reads no suffix-less township/community."""
    lex = known._lexicon if known is not None else None
    if lex is not None:
        admin, pos, admin_sim, used_short = _read_admin(s, lex=lex, strict=strict)
    else:
        (admin, pos, admin_sim), used_short = _read_admin_generic(s), False
    tail = _read_tail(s[pos:], lex=lex)
    parsed = ParsedAddress(
        province=admin.get(_PROVINCE),
        city=admin.get(_CITY),
        county=admin.get(_COUNTY),
        township=admin.get(_TOWNSHIP),
        community=admin.get(_COMMUNITY),
        **tail,
    )
    return _Reading(parsed, admin_sim, used_short)


def _read_admin(s: str, *, lex: _Lexicon, strict: bool) -> tuple[dict[int, str], int, float, bool]:
    """Admin names off the front of ``s``, in order, each level at most once; also
    the least admin similarity and whether a short township/community form was read."""
    found: dict[int, str] = {}
    pos, level, sim, used_short = 0, _PROVINCE, 1.0, False
    while pos < len(s) and level <= _COMMUNITY:
        option = _best_spelling(s, pos=pos, level=level, lex=lex, strict=strict)
        if option is None and level <= _COUNTY and _CITY not in found:
            skipped = _unknown_city(s, pos=pos, lex=lex)
            if skipped:
                found[_CITY] = s[pos : pos + skipped]
                pos, level = pos + skipped, _COUNTY
                continue
        if option is None:
            fuzzy = _fuzzy_admin(s, pos=pos, level=level, lex=lex)
            if fuzzy is None:
                break
            spelling, length, ratio = fuzzy
            sim = min(sim, ratio)
        else:
            spelling, length = option
        used_short |= spelling.short and spelling.level >= _TOWNSHIP
        found[spelling.level] = spelling.name
        pos, level = pos + length, spelling.level + 1
    return found, pos, sim, used_short


def _best_spelling(
    s: str, *, pos: int, level: int, lex: _Lexicon, strict: bool = False
) -> tuple[_Spelling, int] | None:
    """The admin name at ``pos`` of level ≥ ``level``: full names before short forms,
    then the longest, then the higher level (county before township). ``strict``
    skips the short forms of townships and communities."""
    best: tuple[tuple[bool, int, int], _Spelling, int] | None = None
    for length in range(min(lex.longest, len(s) - pos), 0, -1):
        for spelling in lex.spellings.get(s[pos : pos + length], ()):
            if spelling.level < level:
                continue
            if spelling.short and (
                (strict and spelling.level >= _TOWNSHIP)
                or not _short_ok(s, pos=pos, length=length, lex=lex)
            ):
                continue
            rank = (not spelling.short, length, -spelling.level)
            if best is None or rank > best[0]:
                best = (rank, spelling, length)
    return None if best is None else (best[1], best[2])


def _short_ok(s: str, *, pos: int, length: int, lex: _Lexicon) -> bool:
    """A short form is read only where no road/estate (known or by its suffix) starts."""
    if lex.vocab_starts(s, pos) > length:
        return False
    return not s.startswith(_NAME_CONTINUATIONS, pos + length)


def _unknown_city(s: str, *, pos: int, lex: _Lexicon) -> int:
    """Length of an unknown city name at ``pos`` (``云浮``, ``云浮市``), or 0.

    Read only when 2–6 digit-free characters, not starting a known road or
    estate, are followed by a known county, township or community (full name,
    or a county's short form): what precedes those can only be a city (or noise
    that matching ignores anyway). Before a known road or estate only a name
    ending in ``市`` (2–4 characters and ``市``) is read as a city.
    """
    if lex.vocab_starts(s, pos):
        return 0
    for skip in range(2, 7):
        if pos + skip >= len(s) or s[pos + skip - 1].isdigit():
            return 0
        nxt = _best_spelling(s, pos=pos + skip, level=_COUNTY, lex=lex)
        if nxt is not None and (not nxt[0].short or nxt[0].level == _COUNTY):
            return skip
        if s[pos + skip - 1] == "市" and skip >= 3 and lex.vocab_starts(s, pos + skip):
            return skip
    return 0


def _fuzzy_admin(
    s: str, *, pos: int, level: int, lex: _Lexicon
) -> tuple[_Spelling, int, float] | None:
    """A township/community name with a typo at ``pos``: a digit-free window ending
    in the level's suffix, clearly closest to one known name (ratio ≥ ADMIN_CUTOFF)."""
    if level > _COMMUNITY or lex.vocab_starts(s, pos):
        return None
    for end in range(pos + 2, min(len(s), pos + 9) + 1):
        window = s[pos:end]
        if window[-1].isdigit():
            return None
        for target in (_TOWNSHIP, _COMMUNITY):
            if target < level or not window.endswith(_LEVEL_SUFFIXES[target]):
                continue
            hit = _closest(window, lex.by_level.get(target, []), cutoff=ADMIN_CUTOFF)
            if hit is not None:
                return _Spelling(target, hit[0], False), end - pos, hit[1]
    return None


def _closest(word: str, choices: Sequence[str], *, cutoff: float) -> tuple[str, float] | None:
    """The choice clearly closest to ``word`` (next one ≥ 10 points behind) and
    agreeing on its distinctive characters (``_distinctive``), or None."""
    hits = process.extract(word, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=2)
    if hits and _distinctive(hits[0][0]) != _distinctive(word):
        return None
    if not hits or (len(hits) > 1 and hits[0][1] - hits[1][1] < 10):
        return None
    return hits[0][0], hits[0][1] / 100


_GENERIC_ADMIN = (
    (_CITY, re.compile(r".{2,4}?(?:市|地区|自治州|盟)")),
    (_COUNTY, re.compile(r".{1,6}?(?:自治县|县|区|市|旗)")),
    (_TOWNSHIP, re.compile(r".{1,6}?(?:街道|镇|乡)")),
    (_COMMUNITY, re.compile(r".{1,6}?(?:社区|村)")),
)


def _read_admin_generic(s: str) -> tuple[dict[int, str], int, float]:
    """Admin names by suffix alone (no registry): best effort, for display."""
    found: dict[int, str] = {}
    pos = 0
    for province in PROVINCES:
        short = _province_short(province)
        for spelling in (province, short):
            if s.startswith(spelling) and not found:
                found[_PROVINCE] = province
                pos = len(spelling)
    for level, pattern in _GENERIC_ADMIN:
        m = pattern.match(s, pos)
        if m and not _RE_DIGIT.search(m.group()) and not _ROAD_TAIL.search(m.group()[:-1]):
            found[level] = m.group()
            pos = m.end()
    return found, pos, 1.0


def _province_short(name: str) -> str:
    for suffix in _PROVINCE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


_RE_TOKEN = re.compile(r"([A-Z])(栋)|(\d+)(号|栋|单元|室|组|楼|层|户)?|(-)|([^\d\-]+)")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["num", "dash", "text"]
    value: str
    marker: str = ""


def _tokens(tail: str, *, protected: re.Pattern[str] | None = None) -> list[_Token]:
    """Numbers (with their marker), dashes and text; ``protected`` names (known
    roads/estates with digits, e.g. ``1号路``) stay whole text."""
    pieces = protected.split(tail) if protected is not None else [tail]
    out: list[_Token] = []
    for k, piece in enumerate(pieces):
        if k % 2 == 1:  # a protected name (split keeps the separators at odd places)
            _add_text(out, piece)
            continue
        for m in _RE_TOKEN.finditer(piece):
            if m.group(1):
                out.append(_Token("num", m.group(1), "栋"))
            elif m.group(3):
                out.append(_Token("num", m.group(3), m.group(4) or ""))
            elif m.group(5):
                out.append(_Token("dash", "-"))
            else:
                _add_text(out, m.group(6))
    return out


def _add_text(out: list[_Token], text: str) -> None:
    if out and out[-1].kind == "text":
        out[-1] = _Token("text", out[-1].value + text)
    else:
        out.append(_Token("text", text))


def _read_tail(tail: str, *, lex: _Lexicon | None) -> dict[str, str | None]:
    """Road, numbers, estate, unit, room and village group from what follows the admin names."""
    parts: dict[str, str | None] = {}
    extra: list[str] = []
    tokens = _tokens(tail, protected=lex.protected if lex is not None else None)
    previous = ""  # what the last token was: "road", "estate", "text" or a marker
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "text":
            previous = _read_text(
                token.value, tokens=tokens[i + 1 :], parts=parts, extra=extra, lex=lex
            )
        elif token.kind == "num":
            run = _number_run(tokens, i)
            if len(run) > 1:
                _read_dashed(run, parts=parts)
                i += 2 * len(run) - 1
                previous = "室"
                continue
            previous = _read_number(token, previous=previous, parts=parts, extra=extra)
        i += 1
    parts["extra"] = "".join(extra) or None
    return parts


def _number_run(tokens: list[_Token], start: int) -> list[str]:
    """Bare numbers joined by dashes from ``start`` (``2-302``, ``3-2-302``)."""
    run = [tokens[start].value] if tokens[start].marker == "" else []
    j = start + 1
    while run and j + 1 < len(tokens) and tokens[j].kind == "dash":
        nxt = tokens[j + 1]
        if nxt.kind != "num" or nxt.marker not in ("", "室"):
            break
        run.append(nxt.value)
        j += 2
    return run


def _read_dashed(run: list[str], *, parts: dict[str, str | None]) -> None:
    """``2-302`` is unit-room; ``3-2-302`` building-unit-room (a building only if none yet)."""
    if len(run) >= 3 and "building_no" not in parts:
        parts["building_no"] = run[-3] + "栋"
    parts.setdefault("unit", run[-2] + "单元")
    parts.setdefault("room", run[-1] + "室")


def _read_number(
    token: _Token, *, previous: str, parts: dict[str, str | None], extra: list[str]
) -> str:
    """Assign one numbered token; return its marker as the new ``previous``."""
    value, marker = token.value, token.marker
    slot = {"栋": "building_no", "单元": "unit", "室": "room", "组": "village_group"}.get(marker)
    if marker == "号":
        # After an estate name (or a second 号) it names the building: 翠湖花园3号.
        after_estate = previous == "estate" or "house_number" in parts
        slot = "building_no" if after_estate and "building_no" not in parts else "house_number"
        marker = "栋" if slot == "building_no" else "号"
    elif marker == "":
        slot, marker = _bare_number_slot(previous=previous, parts=parts)
    if slot is None or slot in parts:
        extra.append(value + token.marker)
        return token.marker or "?"
    parts[slot] = value + marker
    return marker


def _bare_number_slot(*, previous: str, parts: dict[str, str | None]) -> tuple[str | None, str]:
    """A number without marker: a house number after a road (人民路12), a room after
    a unit, building or house number (3栋302); otherwise not guessed."""
    if previous == "road" and "house_number" not in parts:
        return "house_number", "号"
    if previous in ("单元", "栋", "号") and "room" not in parts:
        return "room", "室"
    return None, ""


def _read_text(
    text: str,
    *,
    tokens: list[_Token],
    parts: dict[str, str | None],
    extra: list[str],
    lex: _Lexicon | None,
) -> str:
    """Read a name segment as road and/or estate; return ``road``, ``estate`` or ``text``.

    What is neither (an unknown admin name, a remark) goes to ``extra``: an
    estate is only read where a building number follows or the name looks
    like an estate (known, close to a known one, or with an estate suffix).
    """
    road, estate, leftover = _split_names(text, lex=lex)
    if leftover is not None:
        extra.append(leftover)
    building_follows = bool(tokens) and tokens[0].kind == "num" and tokens[0].marker in ("栋", "号")
    doubtful = road is not None or not building_follows or bool(_ADMIN_TAIL.search(estate or ""))
    if estate is not None and doubtful and not _estate_like(estate, lex):
        extra.append(estate)
        estate = None
    if road is not None and "road" not in parts:
        parts["road"] = road
    if estate is not None and "estate" not in parts:
        parts["estate"] = estate
    if road is not None and (estate is None or text.endswith(road)):
        return "road"
    return "estate" if estate is not None else "text"


def _estate_like(name: str, lex: _Lexicon | None) -> bool:
    """Known, with an estate suffix (新村 included), or — unless it ends like an admin
    name — within ``NAME_CUTOFF`` of a known estate (a mistyped one)."""
    if lex is not None and name in lex.estates:
        return True
    if _ESTATE_TAIL.search(name):
        return True
    if lex is None or _ADMIN_TAIL.search(name):
        return False
    hit = process.extractOne(name, lex.estate_list, scorer=fuzz.ratio, score_cutoff=NAME_CUTOFF)
    return hit is not None


def _split_names(text: str, *, lex: _Lexicon | None) -> tuple[str | None, str | None, str | None]:
    """``翠湖花园人民路`` → road ``人民路``, estate ``翠湖花园`` and what is left over:
    known roads first, then known estates, then suffixes (estate suffix, road suffix)."""
    if lex is not None:
        road = _longest_known(text, lex.roads, longest=lex.vocab_longest)
        if road is not None:
            rest = text.replace(road, "", 1)
            return road, rest or None, None
        estate = _longest_known(text, lex.estates, longest=lex.vocab_longest)
        if estate is not None:
            rest = text.replace(estate, "", 1)
            if rest and _ROAD_TAIL.search(rest):
                return rest, estate, None
            return None, estate, rest or None
    m = _ESTATE_THEN_ROAD.fullmatch(text)
    if m:
        return m.group(2), m.group(1), None
    if _ROAD_TAIL.search(text):
        return text, None, None
    return None, text, None


def _longest_known(text: str, vocab: frozenset[str], *, longest: int) -> str | None:
    """The longest ``vocab`` word inside ``text`` (leftmost on ties); words are at
    most ``longest`` characters, which keeps this linear in ``len(text)``."""
    best: str | None = None
    for start in range(len(text)):
        for end in range(min(len(text), start + longest), start + (len(best) if best else 0), -1):
            if text[start:end] in vocab:
                best = text[start:end]
                break
    return best


# --- the registry and the index ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryAddress:
    """One standard address (标准地址): a building and its address parts, WGS84 lon/lat.

    Parts may be spelled any way ``normalise`` understands (``三组``, ``12号``,
    ``3栋``); ``None`` or ``""`` means the building has no such part.
    """

    building_id: int
    county: str | None
    township: str | None
    community: str | None
    road: str | None
    house_number: str | None
    estate: str | None
    building_no: str | None
    village_group: str | None
    lon: float
    lat: float
    province: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """The answer for one address.

    * ``status="matched", level="building"``: ``building_id`` (and its ``lon``/``lat``)
      is the one registry building consistent with the address.
    * ``status="matched", level`` community/township/county: ``method="fallback"``;
      no building fitted, the address names that area (queue it for review).
    * ``status="ambiguous"``: two or more buildings fit about equally; no
      ``building_id``; ``level`` is the deepest area all of them share.
    * ``status="unmatched", level="none"``: nothing recognisable.

    ``score`` (0..1) is the confidence in what ``level`` names; ``candidates``
    the best ≤ 5 ``(building_id, score)`` for a review queue, best first;
    ``parsed`` the parts read with the registry's names (unit and room included).
    """

    level: Level
    status: Status
    building_id: int | None
    county: str | None
    township: str | None
    community: str | None
    score: float
    candidates: tuple[tuple[int, float], ...]
    method: Method
    lon: float | None = None
    lat: float | None = None
    parsed: ParsedAddress | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    """A registry building with normalised parts; ``area`` indexes ``AddressIndex._areas``."""

    building_id: int
    county: str | None
    township: str | None
    community: str | None
    road: str | None
    house: str | None
    estate: str | None
    building: str | None
    group: str | None
    area: int
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class _Area:
    """A community (or a township's buildings without community), with display names."""

    county: str | None
    township: str | None
    community: str | None
    key: tuple[str | None, str | None, str | None]


@dataclass(slots=True)
class _Query:
    parsed: ParsedAddress
    admin_sim: float
    areas: frozenset[int] | None  # the communities the address names (None: not named)
    roads: dict[str, float] | None  # registry road → similarity (None: no road given)
    estates: dict[str, float] | None


class AddressIndex:
    """The standard address registry of one or more counties, ready for matching.

    Built once (linear in the registry: about 0.1 s per 10,000 buildings); each
    ``match`` is a handful of dictionary lookups plus, for names not in the
    registry, one rapidfuzz scan of the road or estate names.
    """

    def __init__(self, addresses: Sequence[RegistryAddress]) -> None:
        self._entries: list[_Entry] = []
        self._areas: list[_Area] = []
        area_ids: dict[tuple[str | None, str | None, str | None], int] = {}
        self._keys: dict[str, defaultdict[tuple[str | None, ...], list[int]]] = {
            k: defaultdict(list)
            for k in ("exact", "road_house", "estate_building", "group_house", "area_house")
        }
        self._by_name: dict[str, defaultdict[str, list[int]]] = {
            k: defaultdict(list) for k in ("road", "estate")
        }
        self._community_areas: defaultdict[str, set[int]] = defaultdict(set)
        raw: dict[str, set[str]] = defaultdict(set)
        for address in addresses:
            entry = self._entry(address, area_ids=area_ids)
            self._add(entry)
            for name in ("province", "city", "county", "township", "community", "road", "estate"):
                value = getattr(address, name)
                if value:
                    raw[name].add(value)
        self.names = AdminNames(
            provinces=frozenset(PROVINCES) | raw["province"],
            cities=frozenset(raw["city"]),
            counties=frozenset(raw["county"]),
            townships=frozenset(raw["township"]),
            communities=frozenset(raw["community"]),
            roads=frozenset(raw["road"]),
            estates=frozenset(raw["estate"]),
        )
        self._roads = sorted(self._by_name["road"])
        self._estates = sorted(self._by_name["estate"])

    @classmethod
    def build(cls, addresses: Sequence[RegistryAddress]) -> AddressIndex:
        """The index of ``addresses`` (same as the constructor)."""
        return cls(addresses)

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(
        self,
        address: RegistryAddress,
        *,
        area_ids: dict[tuple[str | None, str | None, str | None], int],
    ) -> _Entry:
        key = (
            _norm_name(address.county),
            _norm_name(address.township),
            _norm_name(address.community),
        )
        area = area_ids.get(key)
        if area is None:
            area = area_ids[key] = len(self._areas)
            display = (address.county or None, address.township or None, address.community or None)
            self._areas.append(_Area(*display, key=key))
        return _Entry(
            building_id=address.building_id,
            county=key[0],
            township=key[1],
            community=key[2],
            road=_norm_name(address.road),
            house=_norm_number(address.house_number, "号"),
            estate=_norm_name(address.estate),
            building=_norm_number(address.building_no, "栋"),
            group=_norm_number(address.village_group, "组"),
            area=area,
            lon=float(address.lon),
            lat=float(address.lat),
        )

    def _add(self, e: _Entry) -> None:
        i = len(self._entries)
        self._entries.append(e)
        keys = self._keys
        keys["exact"][
            (e.township, e.community, e.road, e.house, e.estate, e.building, e.group)
        ].append(i)
        if e.house is not None:
            keys["area_house"][(str(e.area), e.house)].append(i)
            if e.road is not None:
                keys["road_house"][(e.road, e.house)].append(i)
            if e.group is not None:
                keys["group_house"][(e.group, e.house)].append(i)
        if e.estate is not None and e.building is not None:
            keys["estate_building"][(e.estate, e.building)].append(i)
        if e.road is not None:
            self._by_name["road"][e.road].append(i)
        if e.estate is not None:
            self._by_name["estate"][e.estate].append(i)
        if e.community is not None:
            self._community_areas[e.community].add(e.area)

    # --- matching -----------------------------------------------------------------------

    def parse(self, text: str) -> ParsedAddress:
        """``parse(text, known=self.names)``."""
        return parse(text, known=self.names)

    def match(self, text: str) -> AddressMatch:
        """The registry building ``text`` names, or the honest reason why not (see ``AddressMatch``)."""
        s = normalise(text)
        reading = _parse(s, known=self.names)
        answer = self._answer(self._query(reading))
        if answer.level != "building" and reading.used_short:
            # A short name may have been the start of a mistyped estate or road
            # ("凤凰名院" is not 凤凰村): read it again without short forms.
            strict = _parse(s, known=self.names, strict=True)
            second = self._answer(self._query(strict))
            if second.level == "building" or second.status == "ambiguous":
                answer, reading = second, strict
        return dataclasses.replace(answer, parsed=reading.parsed)

    def _answer(self, query: _Query) -> AddressMatch:
        """Exact key first, then every consistent building, then the named area."""
        exact = self._exact(query)
        if exact is not None:
            return exact
        fits = self._fits(query)
        if not fits:
            return self._fallback(query)
        best_score, best = fits[0]
        if len(fits) == 1 or best_score - fits[1][0] >= AMBIGUITY_MARGIN:
            return self._building(best, score=best_score, method="fuzzy", fits=fits)
        return self._ambiguous(fits)

    def _query(self, reading: _Reading) -> _Query:
        p, admin_sim = reading.parsed, reading.admin_sim
        if p.extra is not None:
            admin_sim *= 0.9  # some text was ignored: a little less sure
        areas: frozenset[int] | None = None
        if p.community is not None:
            named = self._community_areas.get(p.community, set())
            in_township = {a for a in named if p.township in (None, self._areas[a].key[1])}
            areas = frozenset(in_township)
        return _Query(
            parsed=p,
            admin_sim=admin_sim,
            areas=areas,
            roads=_resolve(p.road, choices=self._roads, exact=self._by_name["road"]),
            estates=_resolve(p.estate, choices=self._estates, exact=self._by_name["estate"]),
        )

    def _exact(self, q: _Query) -> AddressMatch | None:
        """The fast path: every part present and spelled as in the registry."""
        p = q.parsed
        if q.areas is None or len(q.areas) != 1:
            return None
        township = self._areas[next(iter(q.areas))].key[1]
        key = (
            township,
            p.community,
            p.road,
            p.house_number,
            p.estate,
            p.building_no,
            p.village_group,
        )
        hits = self._keys["exact"].get(key, [])
        if len(hits) != 1 or self._fit(self._entries[hits[0]], q) <= 0:
            return None
        return self._building(hits[0], score=q.admin_sim, method="exact", fits=[])

    def _candidate_rows(self, q: _Query) -> set[int]:
        """Rows sharing a numbered key with the address (or a name, when no number is given)."""
        p, keys = q.parsed, self._keys
        rows: set[int] = set()
        if p.house_number is not None:
            for road in q.roads or ():
                rows.update(keys["road_house"].get((road, p.house_number), ()))
            if p.village_group is not None:
                rows.update(keys["group_house"].get((p.village_group, p.house_number), ()))
            for area in q.areas or ():
                rows.update(keys["area_house"].get((str(area), p.house_number), ()))
        if p.building_no is not None:
            for estate in q.estates or ():
                rows.update(keys["estate_building"].get((estate, p.building_no), ()))
        if not rows:
            for kind, names in (("road", q.roads), ("estate", q.estates)):
                for name in names or ():
                    rows.update(self._by_name[kind].get(name, ()))
        return rows

    def _fits(self, q: _Query) -> list[tuple[float, int]]:
        """Consistent rows with their scores, best first (ties: lower row first)."""
        fits = []
        for row in self._candidate_rows(q):
            score = self._fit(self._entries[row], q)
            if score > 0:
                fits.append((score, row))
        fits.sort(key=lambda f: (-f[0], f[1]))
        return fits

    def _fit(self, e: _Entry, q: _Query) -> float:
        """0 when ``e`` contradicts a part of the address, else the product of name similarities."""
        p = q.parsed
        if p.county is not None and e.county != p.county:
            return 0.0
        if p.township is not None and e.township != p.township:
            return 0.0
        if q.areas is not None and e.area not in q.areas:
            return 0.0
        numbers = (
            (p.house_number, e.house),
            (p.building_no, e.building),
            (p.village_group, e.group),
        )
        if any(given is not None and given != have for given, have in numbers):
            return 0.0
        score = q.admin_sim
        for names, have in ((q.roads, e.road), (q.estates, e.estate)):
            if names is not None:
                score *= names.get(have, 0.0) if have is not None else 0.0
        return score

    # --- answers --------------------------------------------------------------------------

    def _building(
        self, row: int, *, score: float, method: Method, fits: list[tuple[float, int]]
    ) -> AddressMatch:
        e = self._entries[row]
        area = self._areas[e.area]
        candidates = self._candidates(fits) if fits else ((e.building_id, round(score, 3)),)
        return AddressMatch(
            level="building",
            status="matched",
            building_id=e.building_id,
            county=area.county,
            township=area.township,
            community=area.community,
            score=round(score, 3),
            candidates=candidates,
            method=method,
            lon=e.lon,
            lat=e.lat,
        )

    def _candidates(self, fits: list[tuple[float, int]]) -> tuple[tuple[int, float], ...]:
        return tuple(
            (self._entries[row].building_id, round(score, 3))
            for score, row in fits[:MAX_CANDIDATES]
        )

    def _ambiguous(self, fits: list[tuple[float, int]]) -> AddressMatch:
        areas = {self._entries[row].area for _, row in fits}
        level, county, township, community = self._common_area(areas)
        return AddressMatch(
            level=level,
            status="ambiguous",
            building_id=None,
            county=county,
            township=township,
            community=community,
            score=round(fits[0][0], 3),
            candidates=self._candidates(fits),
            method="ambiguous",
        )

    def _common_area(
        self, areas: Iterable[int], *, deepest: Level = "community"
    ) -> tuple[Level, str | None, str | None, str | None]:
        """The deepest level (at most ``deepest``) all ``areas`` share, with display names."""
        chosen = [self._areas[a] for a in areas]
        first = chosen[0]
        same_community = all(a.key == first.key for a in chosen)
        if same_community and first.community is not None and deepest == "community":
            return "community", first.county, first.township, first.community
        same_township = all(a.key[:2] == first.key[:2] for a in chosen)
        if same_township and first.township is not None and deepest != "county":
            return "township", first.county, first.township, None
        if all(a.key[0] == first.key[0] for a in chosen) and first.county is not None:
            return "county", first.county, None, None
        return "none", None, None, None

    def _fallback(self, q: _Query) -> AddressMatch:
        """No building fits: answer with the area the address names.

        ``matched`` at that level when the name is unambiguous; ``ambiguous`` at
        the deepest shared level when it is not (a community name found in two
        townships, the address naming neither).
        """
        p = q.parsed
        named: Level
        if q.areas:
            areas, named = sorted(q.areas), "community"
        elif p.township is not None:
            areas, named = self._areas_where(county=p.county, township=p.township), "township"
        elif p.county is not None:
            areas, named = self._areas_where(county=p.county, township=None), "county"
        else:
            return _NONE
        if not areas:
            return _NONE
        level, county, township, community = self._common_area(areas, deepest=named)
        if level == "none":
            return _NONE
        status: Status = "matched" if level == named else "ambiguous"
        return AddressMatch(
            level=level,
            status=status,
            building_id=None,
            county=county,
            township=township,
            community=community,
            score=round(_FALLBACK_SCORE.get(level, 0.0) * q.admin_sim, 3),
            candidates=(),
            method="fallback" if status == "matched" else "ambiguous",
        )

    def _areas_where(self, *, county: str | None, township: str | None) -> list[int]:
        return [
            i
            for i, a in enumerate(self._areas)
            if county in (None, a.key[0]) and township in (None, a.key[1])
        ]


_NONE = AddressMatch(
    level="none",
    status="unmatched",
    building_id=None,
    county=None,
    township=None,
    community=None,
    score=0.0,
    candidates=(),
    method="none",
)


def _resolve(
    name: str | None, *, choices: Sequence[str], exact: Mapping[str, list[int]]
) -> dict[str, float] | None:
    """Registry names a written name may stand for, with similarity 0..1.

    A name spelled as in the registry stands for itself only (a real, different
    name is never "close enough"); an unknown one for every registry name within
    ``NAME_CUTOFF``.
    """
    if name is None:
        return None
    if name in exact:
        return {name: 1.0}
    hits = process.extract(name, choices, scorer=fuzz.ratio, score_cutoff=NAME_CUTOFF, limit=None)
    mark = _distinctive(name)
    return {hit[0]: hit[1] / 100 for hit in hits if _distinctive(hit[0]) == mark}


def _distinctive(name: str) -> str:
    """The characters that make neighbouring names different places: 人民北路 is not
    人民路, 建设二路 not 建设一路, 小稳村 not 大稳村. Fuzzy matches must agree on them."""
    return "".join(sorted(ch for ch in name if ch in _DISTINCTIVE))
