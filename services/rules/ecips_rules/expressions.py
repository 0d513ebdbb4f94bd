"""Compiling rule conditions (CEL) and checking what they refer to.

The CEL library reports syntax errors but not references to fields that do
not exist (a map lookup fails only when evaluated, and ``false && x.typo``
never evaluates ``x.typo``). So every ``enterprise.a.b`` path in a condition
is checked against :data:`ecips_rules.variables.VARIABLES`, every identifier
and function against what is defined, and the condition is tried on sample
enterprises; each problem is reported in words.
"""

from __future__ import annotations

import re
from typing import Any, Final

import cel

from ecips_rules.variables import VARIABLES, FieldTree, Path

# The named functions and macros of the CEL standard library that the engine
# implements; operators (``_&&_``, ``@in`` ...) are always allowed.
STANDARD_FUNCTIONS: Final[frozenset[str]] = frozenset(
    {
        "size", "has", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bool", "bytes", "dyn", "type",
        "timestamp", "duration", "max", "min",
        "all", "exists", "exists_one", "map", "filter",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
        "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_COMPREHENSION = re.compile(
    rf"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*({_IDENTIFIER})\s*,"
)
_ROOT = re.compile(rf"(?<![\w.])({'|'.join(VARIABLES)})\b")
_SEGMENT = re.compile(rf"\s*\.\s*({_IDENTIFIER})")


class ExpressionError(ValueError):
    """A condition that does not compile or names something undefined."""


_NO_DATE = (
    "conditions do not see the date: time enters a rule through since_from, delay "
    "and a fixed duration, or through time-derived fields such as enterprise.penalties.this_year"
)


def compile_condition(expression: str) -> tuple[cel.Program, frozenset[Path]]:
    """Compile and check one condition; returns the program and the field
    paths (below ``enterprise``) it reads. Raises :class:`ExpressionError`."""
    try:
        program = cel.compile(expression)
    except Exception as exc:  # the engine raises ValueError, but be safe
        raise ExpressionError(f"the condition does not compile: {_first_line(exc)}") from exc
    problems, paths = check_references(expression, program)
    if problems:
        raise ExpressionError("; ".join(problems))
    return program, frozenset(paths)


def evaluate(program: cel.Program, context: cel.Context | dict[str, Any]) -> bool:
    """Run a compiled condition; it must answer a boolean."""
    try:
        result = program.execute(context)
    except Exception as exc:
        raise ExpressionError(f"the condition failed: {_first_line(exc)}") from exc
    if not isinstance(result, bool):
        raise ExpressionError(
            f"the condition must be true or false, it gave {type(result).__name__} {result!r}"
        )
    return result


def check_references(expression: str, program: cel.Program) -> tuple[list[str], set[Path]]:
    """Problems with what the condition names, and the paths it reads."""
    problems: list[str] = []
    paths: set[Path] = set()
    code = _blank_strings(expression)
    bound = set(_COMPREHENSION.findall(code))
    for name in program.variables():
        if name in VARIABLES or name in bound:
            continue
        if name == "today":
            problems.append(f"unknown variable 'today': {_NO_DATE}")
            continue
        known = ", ".join(VARIABLES)
        problems.append(f"unknown variable {name!r} (conditions may use {known})")
    for name in program.functions():
        if name[0] in "_@!" or name in STANDARD_FUNCTIONS:
            continue
        problems.append(f"unknown function {name!r}")
    for match in _ROOT.finditer(code):
        problem, path = _check_path(code, match.group(1), match.end())
        if problem:
            problems.append(problem)
        else:
            paths.add(path)
    return list(dict.fromkeys(problems)), paths


def _check_path(code: str, root: str, position: int) -> tuple[str | None, Path]:
    """Walks ``root.a.b`` in the code; returns a problem or the path below root."""
    node: str | FieldTree = VARIABLES[root]
    path = root
    parts: list[str] = []
    while True:
        segment = _SEGMENT.match(code, position)
        if segment is None:
            break
        name = segment.group(1)
        after = segment.end()
        if code[after:].lstrip().startswith("("):
            break  # a method call such as .contains(...) or .exists(...)
        if not isinstance(node, dict):
            return f"{path} is a {node.rstrip('?')}, it has no field {name!r}", ()
        if name not in node:
            known = ", ".join(sorted(node))
            return f"unknown field {path}.{name} (known fields of {path}: {known})", ()
        node = node[name]
        path = f"{path}.{name}"
        parts.append(name)
        position = after
    if code[position:].lstrip().startswith("["):
        return f"use field selection ({path}.<field>) rather than an index on {path}", ()
    return None, tuple(parts)


def _blank_strings(expression: str) -> str:
    """The expression with the contents of string literals blanked out, so a
    literal such as ``"enterprise.x"`` is not read as a reference."""
    out: list[str] = []
    i = 0
    n = len(expression)
    while i < n:
        char = expression[i]
        if char not in "'\"":
            out.append(char)
            i += 1
            continue
        quote = expression[i : i + 3] if expression[i : i + 3] in ("'''", '"""') else char
        raw = i > 0 and expression[i - 1] in "rR"
        end = i + len(quote)
        while end < n and not expression.startswith(quote, end):
            end += 2 if expression[end] == "\\" and not raw else 1
        out.append(quote + " " * (min(end, n) - i - len(quote)) + quote)
        i = end + len(quote)
    return "".join(out)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
