"""Reading a business scope (经营范围) the way a registration clerk does.

Pure text functions: normalise the scope, keep the part that can need a
post-registration approval (the 许可项目 section of a 2021-style scope, or the
whole text of an older one), cut it into clauses, and take the exclusion
wording ("不含…", "除…外", "…除外") out of each clause before looking for an
activity. What an activity looks like is data (the approval catalogue).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Top-level clause separators (after NFKC full-width ；，： are ASCII; 、 and 。 stay).
_SEPARATORS = frozenset(";,、。:")
# Verbs that head a list in older scopes ("销售：A、B、C").
_LIST_VERBS = frozenset(
    {"销售", "零售", "批发", "批发零售", "批发兼零售", "经营", "生产", "加工", "制造", "生产销售"}
)
_OPEN = "("
_CLOSE = ")"
_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")"})

# Section headings of a scope. Only the licensed section triggers approvals.
_SECTION = re.compile(r"(许可经营项目|许可项目|一般经营项目|一般项目)[:]?")
_LICENSED_HEADINGS = frozenset({"许可经营项目", "许可项目"})

# Standard sentences that say nothing about the activities.
_BOILERPLATE = re.compile(
    r"依法须经批准的项目[^;。]*?(?:经营活动|为准)"
    r"|除依法须经批准的项目外[^;。]*?经营活动"
    r"|具体经营项目以[^;。]*?为准"
)
# A bracket group that excludes what it names.
_EXCLUSION_PREFIXES = (
    "不含",
    "除",
    "不包括",
    "不涉及",
    "不得",
    "不从事",
    "未经",
    "严禁",
    "禁止",
    "国家禁止",
)
# A bare "除…外" / "除…以外" outside brackets.
_BARE_EXCEPT = re.compile(r"除[^()]{1,40}?(?:以外|外)")
# A trailing bare "不含…" / "不包括…" outside brackets.
_BARE_WITHOUT = re.compile(r"(?:不含|不包括|不涉及)[^()]*$")
# A bracket group that is only a hint or boilerplate about approvals.
_APPROVAL_HINT = re.compile(r"批准|许可证|许可后|审批")


@dataclass(frozen=True, slots=True)
class Clause:
    """One activity of the scope: its text as written (normalised) and what is
    left of it once the exclusion wording is removed."""

    text: str
    positive: str


def normalise(text: str) -> str:
    """NFKC (full-width punctuation, letters and digits to half-width), brackets
    unified to ASCII parentheses, line breaks as clause separators, no spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_BRACKETS)
    text = re.sub(r"[\r\n]+", ";", text)
    return re.sub(r"\s+", "", text)


def licensed_part(text: str) -> str:
    """The part of a normalised scope that can need an approval.

    With section headings (2021 style, or the older 许可经营项目/一般经营项目),
    the text under the licensed headings plus anything before the first heading;
    without headings, everything.
    """
    headings = list(_SECTION.finditer(text))
    if not headings:
        return text
    parts = [text[: headings[0].start()]]
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        if heading.group(1) in _LICENSED_HEADINGS:
            parts.append(text[heading.end() : end])
    return ";".join(p for p in parts if p)


def split_clauses(text: str) -> list[str]:
    """Cut at separators outside brackets; unbalanced brackets never swallow the rest.

    Older scopes put the verb first: "零售：卷烟、雪茄烟；…". The verb then goes
    with every item of its list ("卷烟零售", "雪茄烟零售") until the next ";" or "。".
    """
    clauses: list[str] = []
    verb = ""
    depth = 0
    current: list[str] = []

    def close() -> str:
        clause = "".join(current).strip()
        current.clear()
        return clause

    for char in text:
        if char == _OPEN:
            depth += 1
        elif char == _CLOSE:
            depth = max(0, depth - 1)
        if depth > 0 or char not in _SEPARATORS:
            current.append(char)
            continue
        clause = close()
        if char == ":" and clause in _LIST_VERBS:
            verb = clause
            continue
        if clause:
            clauses.append(clause + verb if verb else clause)
        if char in ";。":
            verb = ""
    clause = close()
    if clause:
        clauses.append(clause + verb if verb else clause)
    return clauses


def _groups(clause: str) -> list[tuple[int, int]]:
    """(start, end) of each outermost bracket group, brackets included."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    for index, char in enumerate(clause):
        if char == _OPEN:
            if depth == 0:
                start = index
            depth += 1
        elif char == _CLOSE and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, index + 1))
    return spans


def _drops(group: str) -> bool:
    inner = group[1:-1]
    return (
        inner.startswith(_EXCLUSION_PREFIXES)
        or inner.endswith("除外")
        or _APPROVAL_HINT.search(inner) is not None
    )


def positive_text(clause: str) -> str:
    """The clause without what it excludes (and without approval boilerplate)."""
    kept: list[str] = []
    cursor = 0
    for start, end in _groups(clause):
        kept.append(clause[cursor:start])
        if not _drops(clause[start:end]):
            kept.append(clause[start:end])
        cursor = end
    kept.append(clause[cursor:])
    text = "".join(kept)
    text = _BARE_EXCEPT.sub("", text)
    text = _BARE_WITHOUT.sub("", text)
    if text.endswith("除外"):
        return ""  # "危险化学品除外" on its own names nothing the enterprise does
    return text


def clauses(scope: str) -> list[Clause]:
    """The clauses of a business scope that can need a post-registration approval."""
    text = _BOILERPLATE.sub("", normalise(scope))
    return [Clause(c, positive_text(c)) for c in split_clauses(licensed_part(text))]
