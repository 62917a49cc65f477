#!/usr/bin/env python3
"""Generate unicode_tables.inc (the Unicode properties BERT's pipeline needs) from Python's
`unicodedata`. Run by CMake at build time; the output goes into the build directory.

Per code point it records:
  - CONTROL   category Cc, Cf or Co, except \\t \\n \\r (HF's `is_control`; HF keeps Cn)
  - SPACE     the White_Space property (Rust's `char::is_whitespace`): Python's str.isspace()
              less U+001C..U+001F, which Python counts as spaces and White_Space does not
  - PUNCT     BERT punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or category P*
  - MN        category Mn (nonspacing mark; dropped by strip_accents after NFD)
  - CJK       the ideograph ranges of HF's BertNormalizer (handle_chinese_chars)
  - LOWER     str.lower() of the single code point (full mapping, as Rust's char::to_lowercase)
  - NFD       the full canonical decomposition, and the canonical combining class (ccc)

HF `tokenizers` takes categories from a Unicode version older than Python's, and case mapping
from a newer one (Rust's std). Code points whose BERT-relevant properties may differ between
versions are flagged UNSTABLE_*: the properties under Unicode 3.2 (`unicodedata.ucd_3_2_0`, the
oldest database Python ships) are compared with the current ones, so any code point assigned or
re-categorised since then in a way that matters here is flagged; so is every code point whose
category changed to or from one that matters (punctuation, marks, controls, spaces), whatever
property changed, since the versions between may have had yet another; and so is every code
point unassigned today (a newer Unicode may give it a case mapping). A text containing a flagged code
point is reported as uncertain by the native tokenizer, and Python re-encodes it with HF.
"""
from __future__ import annotations

import sys
import unicodedata as ud

MAX_CP = 0x110000

# HF tokenizers' BertNormalizer ranges (note 0x2B920, not Google BERT's 0x2B820).
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

F_CONTROL, F_SPACE, F_PUNCT, F_MN, F_CJK = 1, 2, 4, 8, 16
U_CONTROL, U_SPACE, U_PUNCT, U_MARK, U_LOWER, U_UNASSIGNED = 32, 64, 128, 256, 512, 1024


def is_surrogate(cp: int) -> bool:
    return 0xD800 <= cp <= 0xDFFF


def special(category: str) -> bool:
    """Categories some BERT property depends on (punctuation, marks, controls, spaces)."""
    return category[0] == "P" or category[0] == "M" or category in ("Cc", "Cf", "Co", "Zs")


def classes(db, cp: int) -> dict:
    """The BERT-relevant properties of `cp` under the database `db` (ud or ud.ucd_3_2_0)."""
    c = chr(cp)
    cat = db.category(c)
    space = (cat == "Zs" or db.bidirectional(c) in ("WS", "B", "S")) and not 0x1C <= cp <= 0x1F
    return {
        "control": cat in ("Cc", "Cf", "Co") and c not in "\t\n\r",
        "space": space,
        "punct": (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
                  or cat.startswith("P")),
        "mark": (cat == "Mn", db.combining(c), db.normalize("NFD", c)),
        "assigned": cat != "Cn",
    }


def main(out_path: str) -> None:
    cps = [cp for cp in range(MAX_CP) if not is_surrogate(cp)]
    flags = [0] * MAX_CP
    ccc = [0] * MAX_CP
    lower: dict[int, str] = {}
    nfd: dict[int, str] = {}
    cjk = bytearray(MAX_CP)
    for lo, hi in CJK_RANGES:
        cjk[lo:hi + 1] = b"\x01" * (hi - lo + 1)

    for cp in cps:
        c = chr(cp)
        new = classes(ud, cp)
        old = classes(ud.ucd_3_2_0, cp)
        f = 0
        f |= F_CONTROL if new["control"] else 0
        f |= F_SPACE if new["space"] else 0
        f |= F_PUNCT if new["punct"] else 0
        f |= F_MN if new["mark"][0] else 0
        f |= F_CJK if cjk[cp] else 0
        f |= U_CONTROL if new["control"] != old["control"] else 0
        f |= U_SPACE if new["space"] != old["space"] else 0
        f |= U_PUNCT if new["punct"] != old["punct"] else 0
        f |= U_MARK if new["mark"] != old["mark"] else 0
        # A category that changed to or from one that matters here may have passed through
        # others in the versions between (U+111C9 went Cn, Po, Mn): any property may differ.
        cat_new, cat_old = ud.category(c), ud.ucd_3_2_0.category(c)
        if cat_new != cat_old and (special(cat_new) or special(cat_old)):
            f |= U_CONTROL | U_SPACE | U_PUNCT | U_MARK
        lo = c.lower()
        # Unicode 3.2 gave an unassigned code point no case mapping.
        if lo != c and not old["assigned"]:
            f |= U_LOWER
        f |= U_UNASSIGNED if not new["assigned"] else 0
        flags[cp] = f
        ccc[cp] = ud.combining(c)
        if lo != c:
            lower[cp] = lo
        d = ud.normalize("NFD", c)
        if d != c:
            nfd[cp] = d

    # A mapping is only as stable as the code points it produces.
    for table, bit in ((nfd, U_MARK), (lower, U_LOWER)):
        for cp, s in table.items():
            if any(flags[ord(x)] & (U_CONTROL | U_SPACE | U_PUNCT | U_MARK | U_LOWER | U_UNASSIGNED)
                   for x in s):
                flags[cp] |= bit

    # Sanity: White_Space as derived must be the 25 code points of PropList.txt.
    spaces = [cp for cp in cps if flags[cp] & F_SPACE]
    assert len(spaces) == 25 and 0x20 in spaces and 0x3000 in spaces and 0x1C not in spaces, spaces

    # Each code point maps to a record (flags, ccc, lower mapping, decomposition); records are
    # deduplicated, then laid out in a two-stage table of 256-code-point blocks.
    data: list[int] = []  # lower and nfd sequences, concatenated
    seq_index: dict[str, int] = {}

    def seq(s: str) -> tuple[int, int]:
        if not s:
            return 0, 0
        if s not in seq_index:
            seq_index[s] = len(data)
            data.extend(ord(x) for x in s)
        return seq_index[s], len(s)

    records: list[tuple] = [(0, 0, 0, 0, 0, 0)]
    record_index = {records[0]: 0}
    per_cp = [0] * MAX_CP
    for cp in cps:
        lo_off, lo_len = seq(lower.get(cp, ""))
        d_off, d_len = seq(nfd.get(cp, ""))
        rec = (flags[cp], ccc[cp], lo_len, d_len, lo_off, d_off)
        if rec not in record_index:
            record_index[rec] = len(records)
            records.append(rec)
        per_cp[cp] = record_index[rec]
    # Surrogates never reach the tables (the UTF-8 decoder turns them into U+FFFD); they keep
    # record 0.
    blocks: list[tuple] = []
    block_index: dict[tuple, int] = {}
    stage1 = []
    for b in range(MAX_CP // 256):
        blk = tuple(per_cp[b * 256:(b + 1) * 256])
        if blk not in block_index:
            block_index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(block_index[blk])
    assert len(records) < 65536 and len(blocks) < 65536 and len(data) < 65536

    def rows(values, per_line=16):
        values = list(values)
        return ",\n".join("  " + ", ".join(str(v) for v in values[i:i + per_line])
                          for i in range(0, len(values), per_line))

    out = [
        f"// Generated by engine/tokenizer/gen_unicode_tables.py from Python {sys.version.split()[0]}'s",
        f"// unicodedata (Unicode {ud.unidata_version}); do not edit.",
        f'#define IGNITE_UNICODE_VERSION "{ud.unidata_version}"',
        f"static const std::uint16_t kStage1[{len(stage1)}] = {{\n{rows(stage1)}\n}};",
        f"static const std::uint16_t kStage2[{len(blocks) * 256}] = {{\n"
        + rows(v for blk in blocks for v in blk) + "\n};",
        f"static const CodePointProps kRecords[{len(records)}] = {{\n"
        + ",\n".join("  {%d, %d, %d, %d, %d, %d}" % r for r in records) + "\n};",
        f"static const char32_t kSequences[{max(len(data), 1)}] = {{\n{rows(data or [0])}\n}};",
        "",
    ]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
