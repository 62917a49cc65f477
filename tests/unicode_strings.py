"""A seeded generator of hostile strings for tokenizer parity tests: many scripts, accents and
combining marks (including non-Mn marks with a combining class, which canonical ordering moves),
controls and zero-width characters, emoji and ZWJ sequences, CJK on and around the ideograph
ranges, very long words, runs of every Unicode space, punctuation of every kind, added-token
look-alikes, and random code points from the whole range (no surrogates)."""
from __future__ import annotations

import random
import sys
import unicodedata as ud
from functools import lru_cache

SCRIPTS = {
    "latin": [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)],
    "cyrillic": [(0x400, 0x4FF)],
    "greek": [(0x370, 0x3FF), (0x1F00, 0x1FFF)],
    "arabic": [(0x600, 0x6FF), (0x750, 0x77F), (0xFB50, 0xFDFF)],
    "devanagari": [(0x900, 0x97F)],
    "thai": [(0xE00, 0xE7F)],
    "cjk": [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF),
            (0x2B700, 0x2B9FF), (0x2CE90, 0x2CEBF), (0x2F800, 0x2FA1F), (0x3000, 0x303F)],
    "hangul": [(0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F)],
    "kana": [(0x3040, 0x30FF), (0xFF61, 0xFF9F), (0x31F0, 0x31FF)],
    "fullwidth": [(0xFF01, 0xFF5E)],
    "armenian_hebrew": [(0x530, 0x5FF)],
    "special_case": [(0x130, 0x131), (0xDF, 0xDF), (0x149, 0x149), (0x1C4, 0x1CC), (0x390, 0x390),
                     (0x3A3, 0x3A3), (0x1E9E, 0x1E9E), (0x212A, 0x212B), (0x2126, 0x2126), (0xFB00, 0xFB06)],
}
CONTROLS = ([chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
            + list("\u200b\u200c\u200d\u200e\u200f\ufeff\u00ad\u2060\u2061\u2062\u2063\u2064\u180e\ufffd"
                   "\u061c\u202a\u202e\u2066\u2069\ue000\uf8ff") + ["\U000f0000", "\U000e0001", "\U000e0041"])
EMOJI = [(0x1F600, 0x1F64F), (0x1F300, 0x1F5FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF), (0x2600, 0x27BF)]
SKIN = [chr(c) for c in range(0x1F3FB, 0x1F400)]
ADDED = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[CL", "SEP]", "[MASK", "[[CLS]]", "[cls]", "[Mask]"]
WORDS = ["the", "running", "unaffable", "tokenization", "Straße", "naïve", "café", "résumé", "ÉCOLE",
         "İstanbul", "ΟΔΥΣΣΕΥΣ", "Москва", "北京", "東京都", "서울", "ภาษาไทย", "हिन्दी", "العربية",
         "ﬁnance", "Ǆemal", "ǅ", "x²", "½", "Ⅻ", "ℌ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ｆｕｌｌ", "123,456.78", "e-mail",
         "C++", "don't", "U.S.A.", "#hashtag", "@user", "http://example.com/a?b=c&d=e"]


@lru_cache(maxsize=None)
def _tables() -> dict[str, list[str]]:
    spaces, punct, symbols, marks, ccc_non_mn, old_marks, old_punct = [], [], [], [], [], [], []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cat = ud.category(c)
        if c.isspace() or cat == "Zs":
            spaces.append(c)
        if cat.startswith("P"):
            punct.append(c)
        elif cat.startswith("S"):
            symbols.append(c)
        if cat in ("Mn", "Me"):
            marks.append(c)
        # Code points whose category is the same in Unicode 3.2: their properties are stable.
        stable = ud.ucd_3_2_0.category(c) == cat
        if (cat in ("Mn", "Me") or ud.combining(c)) and stable:
            old_marks.append(c)
        if (cat.startswith("P") or cat.startswith("S")) and stable:
            old_punct.append(c)
        if ud.combining(c) and cat != "Mn":
            ccc_non_mn.append(c)
    spaces += ["\u200b", "\u180e", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x1f"]
    return {"spaces": spaces, "punct": punct, "symbols": symbols, "marks": marks, "ccc_non_mn": ccc_non_mn,
            "old_marks": old_marks, "old_punct": old_punct}


def _from_ranges(rng: random.Random, ranges: list[tuple[int, int]]) -> str:
    """An assigned code point of the ranges, mostly (unassigned ones come from _random_cp)."""
    for _ in range(8):
        lo, hi = rng.choice(ranges)
        c = chr(rng.randint(lo, hi))
        if ud.category(c) != "Cn":
            break
    return c


def _random_cp(rng: random.Random) -> str:
    while True:
        r = rng.random()
        if r < 0.5:
            cp = rng.randint(0x80, 0xFFFF)
        elif r < 0.8:
            cp = rng.randint(0x10000, 0x3FFFF)
        else:
            cp = rng.randint(0, 0x10FFFF)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def _emoji(rng: random.Random) -> str:
    e = _from_ranges(rng, EMOJI)
    r = rng.random()
    if r < 0.2:
        e += rng.choice(SKIN)
    elif r < 0.35:
        e += "\ufe0f"
    elif r < 0.6:  # ZWJ sequence
        e += "".join("\u200d" + _from_ranges(rng, EMOJI) for _ in range(rng.randint(1, 3)))
    elif r < 0.7:  # flag
        e = chr(0x1F1E6 + rng.randrange(26)) + chr(0x1F1E6 + rng.randrange(26))
    elif r < 0.75:  # keycap
        e = rng.choice("0123456789#*") + "\ufe0f\u20e3"
    return e


def _word(rng: random.Random, vocab: list[str]) -> str:
    r = rng.random()
    if r < 0.35:
        w = rng.choice(vocab)
    elif r < 0.55:
        w = "".join(rng.choice(vocab) for _ in range(rng.randint(2, 5)))
    elif r < 0.75:
        w = rng.choice(WORDS)
    else:
        script = SCRIPTS[rng.choice(list(SCRIPTS))]
        w = "".join(_from_ranges(rng, script) for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.15:
        w = w.upper()
    elif rng.random() < 0.1:
        w = w.title()
    return w


def _accented(rng: random.Random, base: str, wild: bool) -> str:
    t = _tables()
    out = []
    for c in base:
        out.append(c)
        if rng.random() < 0.4:
            pool = (t["ccc_non_mn"] if rng.random() < 0.2 else t["marks"]) if wild else t["old_marks"]
            out.extend(rng.choice(pool) for _ in range(rng.randint(1, 4)))
    s = "".join(out)
    r = rng.random()
    return ud.normalize("NFD", s) if r < 0.3 else ud.normalize("NFC", s) if r < 0.5 else s


def _long_word(rng: random.Random, vocab: list[str]) -> str:
    n = rng.choice([95, 99, 100, 101, 102, 150, 300, rng.randint(100, 1000)])
    if rng.random() < 0.5:
        w = ""
        while len(w) < n:
            w += rng.choice(vocab)
        return w[:n]
    script = SCRIPTS[rng.choice(list(SCRIPTS))]
    return "".join(_from_ranges(rng, script) for _ in range(n))


def random_string(rng: random.Random, vocab: list[str]) -> str:
    """Two strings in five are wild: random code points from the whole range, and marks and
    punctuation of any Unicode version. The others keep to code points whose properties have
    not changed since Unicode 3.2, which the native tokenizer handles without deferring to HF."""
    t = _tables()
    wild = rng.random() < 0.4
    parts: list[str] = []
    for _ in range(rng.randint(1, 14)):
        r = rng.random()
        if r < 0.30:
            p = _word(rng, vocab)
        elif r < 0.40:
            p = _accented(rng, _word(rng, vocab), wild)
        elif r < 0.47:
            p = "".join(rng.choice(CONTROLS) for _ in range(rng.randint(1, 3)))
        elif r < 0.53:
            p = _emoji(rng)
        elif r < 0.60:
            p = "".join(_from_ranges(rng, SCRIPTS["cjk"]) for _ in range(rng.randint(1, 6)))
        elif r < 0.63:
            p = _long_word(rng, vocab)
        elif r < 0.70:
            p = "".join(rng.choice(t["spaces"]) for _ in range(rng.randint(1, 6)))
        elif r < 0.78:
            pool = (t["punct"] if rng.random() < 0.7 else t["symbols"]) if wild else t["old_punct"]
            p = "".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
        elif r < 0.81:
            p = rng.choice(ADDED)
        elif r < 0.86 and wild:
            p = "".join(_random_cp(rng) for _ in range(rng.randint(1, 5)))
        elif r < 0.90:
            p = str(rng.randint(0, 10 ** rng.randint(1, 12)))
        else:
            p = _word(rng, vocab)
        parts.append(p)
        sep = rng.random()
        if sep < 0.6:
            parts.append(" ")
        elif sep < 0.7:
            parts.append(rng.choice(t["spaces"]))
    return "".join(parts)


def random_strings(n: int, seed: int, vocab: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [random_string(rng, vocab) for _ in range(n)]
