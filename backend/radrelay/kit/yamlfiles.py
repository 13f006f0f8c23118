"""YAML files as data with a schema: read them, and say where a problem is.

Rules (``worklist_rules/``) and report templates (``reports_templates/``) are YAML validated by
pydantic. Whoever edits them needs each problem as ``file: path.to.field (line N): message``;
these helpers turn a pydantic error location into that line by walking the composed YAML nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = [
    "format_loc",
    "node_line",
    "problem",
    "read_yaml",
    "validation_problems",
    "yaml_files",
]

MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (check the spelling)",
    "unexpected_keyword_argument": "unknown field (check the spelling)",
}


def node_line(root: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on ``loc`` (a pydantic error location)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problem(name: str, loc: Sequence[Any], message: str, root: yaml.Node | None) -> str:
    """``name: loc (line N): message``."""
    line = node_line(root, [p for p in loc if p != "[key]"])
    where = f" (line {line})" if line else ""
    return f"{name}: {format_loc(loc)}{where}: {message}"


def validation_problems(
    name: str,
    exc: ValidationError,
    root: yaml.Node | None,
    messages: Mapping[str, str] = MESSAGES,
    clean_loc: Callable[[tuple[Any, ...]], Sequence[Any]] | None = None,
) -> list[str]:
    """One problem per pydantic error. ``messages`` replaces pydantic's wording by error type
    (``{name}`` in it takes the error's context, e.g. ``{tag}`` for a union's unknown tag);
    ``clean_loc``, if given, rewrites each location first (to drop a union's tag, say)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(clean_loc(err["loc"]) if clean_loc else err["loc"])
        wording = messages.get(err["type"])
        message = wording.format_map(err.get("ctx") or {}) if wording else err["msg"]
        message = message.removeprefix("Value error, ")
        if err["type"] not in messages and isinstance(err.get("input"), str | int | float):
            message += f" (got {err['input']!r})"
        out.append(problem(name, loc, message, root))
    return out


def read_yaml(path: Path, name: str) -> tuple[Any, yaml.Node | None, list[str]]:
    """The data, its node tree (for lines), or the reason the file cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader), []
    except UnicodeDecodeError as exc:
        return None, None, [f"{name}: (file): not UTF-8 text ({exc.reason})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        why = getattr(exc, "problem", None) or str(exc)
        return None, None, [f"{name}: {where}: not valid YAML: {why}"]


def yaml_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files directly in ``directory``, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
