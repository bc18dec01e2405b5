"""specs/CFG.md's field table (CFG-100) is the one generated from config/fields.py."""

from __future__ import annotations

from pathlib import Path

from ptychodus_pinn_torch.config import fields

SPEC = Path(__file__).resolve().parent.parent / "specs" / "CFG.md"


def test_cfg_md_holds_the_generated_field_table() -> None:
    text = SPEC.read_text(encoding="utf-8")
    begin, end = text.index(fields.TABLE_BEGIN), text.index(fields.TABLE_END)
    assert text[begin:end + len(fields.TABLE_END)] == fields.markdown_table(), (
        "regenerate the table: python -c 'from ptychodus_pinn_torch.config import fields; "
        "print(fields.markdown_table())'")
    counts = fields.status_counts()
    assert f"Counts: {counts['acts']} act, {counts['carried']} carried" in text
