"""Read the numbered rules out of ``specs/*.md``.

A rule is a level-3 heading ``### CFG-001: title`` outside fenced code blocks. A rule whose
title contains ``(informative)`` explains and is not required to have a test; every other rule
is normative.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

RULE_HEADING = re.compile(r"^###\s+(?P<id>[A-Z]+-\d{3})\b[:\s]*(?P<title>.*?)\s*$")
SPECS_ENV = "PINN_TORCH_SPECS_DIR"


@dataclass(frozen=True)
class Rule:
    """One numbered rule of the contract."""

    rule_id: str
    title: str
    file: str
    normative: bool


def find_specs_dir() -> Path:
    """Locate the specs folder.

    Order: ``$PINN_TORCH_SPECS_DIR``; the ``specs/`` beside the package (a source checkout);
    ``<prefix>/share/ptychodus-pinn-torch/specs`` (where a wheel install puts them).
    """
    candidates: list[Path] = []
    if os.environ.get(SPECS_ENV):
        candidates.append(Path(os.environ[SPECS_ENV]))
    package_dir = Path(__file__).resolve().parent.parent
    candidates.append(package_dir.parent / "specs")
    for prefix in {sys.prefix, sys.base_prefix}:
        candidates.append(Path(prefix) / "share" / "ptychodus-pinn-torch" / "specs")
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.md")):
            return candidate
    raise FileNotFoundError(
        "specs folder not found; looked in " + ", ".join(str(c) for c in candidates)
        + f". Set {SPECS_ENV} to the project's specs/ folder."
    )


def load_rules(specs_dir: Path | None = None) -> list[Rule]:
    """All rules of all ``*.md`` files in ``specs_dir``, in file then heading order.

    Raises ValueError if one rule id is defined twice.
    """
    specs_dir = find_specs_dir() if specs_dir is None else Path(specs_dir)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in sorted(specs_dir.glob("*.md")):
        in_code_block = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                in_code_block = not in_code_block
                continue
            match = None if in_code_block else RULE_HEADING.match(line)
            if not match:
                continue
            rule_id, title = match["id"], match["title"]
            if rule_id in seen:
                raise ValueError(f"rule {rule_id} defined twice: {seen[rule_id]} and {path.name}")
            seen[rule_id] = path.name
            rules.append(
                Rule(rule_id, title, path.name, normative="(informative)" not in title.lower())
            )
    return rules
