"""Real township and village/community names of a county, from jionlp's gazetteer.

Provenance and licence
----------------------
The names come from ``jionlp/dictionary/china_location.txt`` (or the same file
inside ``china_location.zip``), bundled with the PyPI package ``jionlp``
(https://github.com/dongrixinyu/JioNLP), licensed **Apache License 2.0** (see the
``LICENSE`` in jionlp's ``*.dist-info/licenses``). jionlp compiled it from the
national administrative division lists; it does not state the vintage, so names
may lag behind later mergers. We read the file directly instead of importing
jionlp, whose import is slow and prints a banner.

File format (UTF-8, ``\\r\\n`` line ends), one unit per line, depth = leading tabs:

* 0 tabs: province ``name\\tcode\\tshort``
* 1 tab:  city       ``\\tname\\tcode\\tshort``
* 2 tabs: county     ``\\t\\tname\\tcode\\tshort``
* 3 tabs: township   (name only)
* 4 tabs: village or community (name only)
"""

from __future__ import annotations

import functools
import importlib.util
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from geo.errors import InvalidInput, NotFound

LOCATION_FILE = "china_location.txt"
LOCATION_ZIP = "china_location.zip"
# A township is a placeholder (forest farm, reclamation unit) when it is named so,
# or when all it contains is a "虚拟…" (virtual) living area.
_PLACEHOLDER_TOWNSHIP_WORDS = ("林场",)
_PLACEHOLDER_CHILD_PREFIX = "虚拟"


@dataclass(frozen=True, slots=True)
class Township:
    """A township (镇/乡/街道) and its villages/communities, in gazetteer order."""

    name: str
    communities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CountyGazetteer:
    """The names of one county-level unit, in gazetteer (file) order.

    ``code`` is the 6-digit administrative division code (e.g. ``"445321"``).
    Placeholder units (forest farms, "虚拟…" living areas) are left out and
    duplicate names within one township are kept once.
    """

    code: str
    name: str
    province: str
    city: str
    townships: tuple[Township, ...]
    source: str = "jionlp china_location.txt (Apache-2.0)"

    def township_names(self) -> list[str]:
        """The township names in order."""
        return [t.name for t in self.townships]


def county_gazetteer(county_code: str) -> CountyGazetteer:
    """Return the townships and villages/communities of ``county_code``.

    Raises ``InvalidInput`` when the code is not 6 digits and ``NotFound`` when
    jionlp's gazetteer has no county-level unit with that code.
    """
    if not re.fullmatch(r"\d{6}", county_code):
        raise InvalidInput(f"county code must be 6 digits, got {county_code!r}")
    return _cached_county(county_code)


@functools.lru_cache(maxsize=64)
def _cached_county(county_code: str) -> CountyGazetteer:
    # Cache the small parsed result, not the 12 MB file (read again in ~0.1 s).
    return _parse_county(text=_location_text(), county_code=county_code)


def _location_text() -> str:
    """The whole gazetteer file as text."""
    folder = _jionlp_dictionary_dir()
    plain = folder / LOCATION_FILE
    if plain.is_file():
        return plain.read_text(encoding="utf-8")
    with zipfile.ZipFile(folder / LOCATION_ZIP) as archive:
        member = next(n for n in archive.namelist() if n.endswith(LOCATION_FILE))
        return archive.read(member).decode("utf-8")


def _jionlp_dictionary_dir() -> Path:
    """Locate ``jionlp/dictionary`` without importing jionlp (slow, noisy)."""
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the jionlp package (source of the gazetteer) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dictionary"


def _parse_county(*, text: str, county_code: str) -> CountyGazetteer:
    county = re.search(rf"^\t\t([^\t\r\n]+)\t{county_code}\t[^\r\n]*\r?$", text, flags=re.MULTILINE)
    if county is None:
        raise NotFound(f"county code {county_code} is not in jionlp's gazetteer ({LOCATION_FILE})")
    return CountyGazetteer(
        code=county_code,
        name=county.group(1),
        province=_last_header(text=text, end=county.start(), pattern=r"^([^\t\r\n]+)\t\d+\t"),
        city=_last_header(text=text, end=county.start(), pattern=r"^\t([^\t\r\n]+)\t\d+\t"),
        townships=_townships(lines=_county_body(text=text, start=county.end())),
    )


def _last_header(*, text: str, end: int, pattern: str) -> str:
    """Name on the last province/city line before ``end`` (the county's parent)."""
    name = ""
    for match in re.finditer(pattern, text[:end], flags=re.MULTILINE):
        name = match.group(1)
    return name


def _county_body(*, text: str, start: int) -> list[str]:
    """Township and village lines after a county line, up to the next county or higher."""
    # The first newline not followed by three tabs ends the county's block.
    end = re.compile(r"\n(?!\t\t\t)").search(text, start + 1)
    return text[start : end.start() if end else len(text)].splitlines()


def _townships(*, lines: list[str]) -> tuple[Township, ...]:
    towns: list[tuple[str, list[str]]] = []
    for line in lines:
        name = line.strip()
        if line.startswith("\t\t\t\t"):
            if towns and name not in towns[-1][1]:
                towns[-1][1].append(name)
        elif name:
            towns.append((name, []))
    return tuple(
        Township(name=name, communities=tuple(_real_children(children)))
        for name, children in towns
        if not _is_placeholder(name=name, children=children)
    )


def _real_children(children: list[str]) -> list[str]:
    return [c for c in children if _PLACEHOLDER_CHILD_PREFIX not in c]


def _is_placeholder(*, name: str, children: list[str]) -> bool:
    if any(word in name for word in _PLACEHOLDER_TOWNSHIP_WORDS):
        return True
    return not _real_children(children)
