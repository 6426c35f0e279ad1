"""Reading a free-text persona: price range, occasions, themes, and the words it did not use.

``parse_persona(text, vocabulary=..., themes=...)`` returns an ``Intent``:

* **price range** (``min_price``, ``max_price``), from
  - "under / below / less than / cheaper than / at most / max / up to / no more than / within £10"
    and "nothing (or not) over / above / more than £2" -> at most;
  - "over / above / more than / at least / from / starting at / upwards of £50" -> at least;
  - "between £5 and £10", "from £5 to £10", "£5-£10", "£5 to 10" -> both;
  - "around / about / roughly / approximately / circa £15" and a bare "£15" -> 15 +- 20 %.
  Amounts may be written £10, 10 pounds, 10 quid, GBP 10, 7.50, 7,50, $10, 10 euros.
* **occasions** (Christmas, birthday, wedding, Valentine's Day, Easter, Halloween, Mother's and
  Father's Day, baby, anniversary, party, summer, back to school, housewarming), each adding a
  few words to the text the catalogue is searched with;
* **themes**: the build's item themes whose main word (label's first word or top keyword)
  appears in the text; their items come first among near-equal matches;
* **ignored**: words that are neither filler (a, for, shopper, looking...) nor occasions, themes
  or words of the catalogue's titles: they are left out of the search, and shown to the user.

``query`` is what is embedded: the understood words (with the occasions' words added); empty
when the text only sets a price (the previews then rank the shop's best sellers in the range).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_CUR = r"(?:£|\$|€|gbp|eur|usd)"
_UNIT = r"(?:pounds?|quid|gbp|euros?|eur|dollars?|usd|bucks)"
_NUM = r"(\d+(?:[.,]\d{1,2})?)"
_MONEY = rf"{_CUR}?\s*{_NUM}(?:\s*{_UNIT}\b)?"
_MONEY_CUR = rf"(?:{_CUR}\s*{_NUM}(?:\s*{_UNIT}\b)?|{_NUM}\s*{_UNIT}\b)"

_AT_MOST = r"under|below|less\s+than|cheaper\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than|within"
_NOT_OVER = r"(?:nothing|not|none|no\s+item)\s+(?:over|above|more\s+than|dearer\s+than|pricier\s+than|costing\s+more\s+than)"
_AT_LEAST = r"over|above|more\s+than|at\s+least|min(?:imum)?|from|starting\s+at|upwards\s+of|pricier\s+than"
_AROUND = r"around|about|roughly|approximately|approx\.?|circa|~"

# (kind, regex); tried in this order, each match removed from the text before the next
PRICE_PATTERNS = [
    ("between", re.compile(rf"\b(?:between|from)\s+{_MONEY}\s*(?:and|to|-|–)\s*{_MONEY}", re.I)),
    ("between", re.compile(rf"{_MONEY_CUR}\s*(?:-|–|to)\s*{_MONEY}", re.I)),
    ("at_most", re.compile(rf"\b{_NOT_OVER}\s+{_MONEY}", re.I)),
    ("at_most", re.compile(rf"\b(?:{_AT_MOST})\s+{_MONEY}", re.I)),
    ("at_most", re.compile(rf"<=?\s*{_MONEY}", re.I)),
    ("at_least", re.compile(rf"\b(?:{_AT_LEAST})\s+{_MONEY}", re.I)),
    ("at_least", re.compile(rf">=?\s*{_MONEY}", re.I)),
    ("around", re.compile(rf"(?:\b(?:{_AROUND})|~)\s*{_MONEY}", re.I)),
    ("around", re.compile(_MONEY_CUR, re.I)),
]
AROUND_SPREAD = 0.2

OCCASIONS = {  # name -> (words that signal it, words added to the search)
    "Christmas": (("christmas", "xmas", "festive", "advent", "santa", "noel"),
                  "christmas decoration"),
    "Birthday": (("birthday", "bday"), "birthday party"),
    "Wedding": (("wedding", "bride", "bridal", "newlyweds"), "wedding"),
    "Valentine's Day": (("valentine", "valentines"), "valentine love heart"),
    "Easter": (("easter",), "easter egg bunny"),
    "Halloween": (("halloween", "spooky"), "halloween"),
    "Mother's Day": (("mothers", "mother's", "mum", "mom"), "mother gift"),
    "Father's Day": (("fathers", "father's", "dad"), "father gift"),
    "Baby": (("baby", "newborn", "christening"), "baby"),
    "Anniversary": (("anniversary",), "anniversary gift"),
    "Party": (("party", "parties", "celebration"), "party"),
    "Summer": (("summer", "picnic", "beach"), "summer picnic"),
    "Back to school": (("school", "pupil", "teacher"), "school lunch"),
    "Housewarming": (("housewarming",), "home"),
}

FILLER = frozenset("""
a an the for and or of to in on at by with without who whom that which this these those is are
was be been being it its they them their she her he his him i me my we our you your someone
somebody person people shopper shoppers customer customers buyer buyers client clients
looking look looks searching search wants want wanted needs need needing likes like liked loves
prefers prefer buying buy buys bought shopping shop shops spend spends spending price prices
priced cost costs costing each per item items product products thing things stuff something
some any all lots lot many few more less very really quite just also only but not no nothing
none over under around about between than from up budget cheap cheaper pricey expensive nice
good great lovely pounds pound quid gbp eur usd euros dollars bucks approx roughly circa
""".split())

_WORD = re.compile(r"[a-z][a-z'’]*", re.I)


@dataclass
class Intent:
    text: str
    query: str
    min_price: float | None = None
    max_price: float | None = None
    price_phrases: list[str] = field(default_factory=list)
    occasions: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def price_ok(self, prices):
        """Bool array: prices within the range (unknown prices fail when a bound is set)."""
        import numpy as np

        p = np.asarray(prices, dtype=np.float64)
        ok = np.ones(len(p), dtype=bool)
        if self.min_price is not None:
            ok &= np.isfinite(p) & (p >= self.min_price - 1e-9)
        if self.max_price is not None:
            ok &= np.isfinite(p) & (p <= self.max_price + 1e-9)
        return ok

    def describe(self, currency: str = "£") -> str:
        """"price £5.00 to £10.00 · occasion: Christmas · themes: Candle" (what was understood)."""
        m = lambda x: f"{currency}{x:,.2f}"  # noqa: E731
        bits = []
        if self.min_price is not None and self.max_price is not None:
            bits.append(f"price {m(self.min_price)} to {m(self.max_price)}")
        elif self.max_price is not None:
            bits.append(f"price at most {m(self.max_price)}")
        elif self.min_price is not None:
            bits.append(f"price at least {m(self.min_price)}")
        if self.occasions:
            bits.append("occasion: " + ", ".join(self.occasions))
        if self.themes:
            bits.append("themes: " + ", ".join(self.themes))
        bits.append(f"searching for “{self.query}”" if self.query else
                    "no words to search for: the shop's best sellers in the range")
        return " · ".join(bits)


def _num(x: str | None) -> float | None:
    return None if x is None else float(x.replace(",", "."))


def _amounts(m: re.Match) -> list[float]:
    return [_num(g) for g in m.groups() if g is not None]


def parse_price(text: str) -> tuple[float | None, float | None, list[str], str]:
    """(min, max, phrases understood, text without them)."""
    lo = hi = None
    phrases: list[str] = []
    rest = text
    for kind, rx in PRICE_PATTERNS:
        while True:
            m = rx.search(rest)
            if not m:
                break
            vals = _amounts(m)
            if not vals:
                break
            if kind == "between" and len(vals) >= 2:
                a, b = sorted(vals[:2])
                lo = a if lo is None else max(lo, a)
                hi = b if hi is None else min(hi, b)
            elif kind == "at_most":
                hi = vals[0] if hi is None else min(hi, vals[0])
            elif kind == "at_least":
                lo = vals[0] if lo is None else max(lo, vals[0])
            elif kind == "around" and lo is None and hi is None:
                lo, hi = round(vals[0] * (1 - AROUND_SPREAD), 2), round(vals[0] * (1 + AROUND_SPREAD), 2)
            phrases.append(m.group(0).strip())
            rest = rest[:m.start()] + " " + rest[m.end():]
    return lo, hi, phrases, re.sub(r"\s+", " ", rest).strip()


def _forms(w: str) -> set[str]:
    """A word and its singular candidates: "candles" -> {candles, candle, candl}."""
    w = w.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    out = {w}
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        out.add(w[:-1])
        if w.endswith("es"):
            out.add(w[:-2])
        if w.endswith("ies"):
            out.add(w[:-3] + "y")
        if w.endswith("ves"):
            out |= {w[:-3] + "f", w[:-3] + "fe"}
    return out


def vocabulary_of(titles) -> frozenset:
    """Words of the catalogue's titles with their singular forms (what a search can match)."""
    out = set()
    for t in titles:
        for w in _WORD.findall(str(t)):
            out |= _forms(w)
    return frozenset(out)


def parse_persona(text: str, *, vocabulary=None, themes: dict[str, list[str]] | None = None) -> Intent:
    """Read a persona text (see the module doc). ``vocabulary``: ``vocabulary_of(titles)``;
    ``themes``: {theme label: keywords} of the build (both optional)."""
    lo, hi, phrases, rest = parse_price(text)
    words = _WORD.findall(rest)
    low = [w.lower().replace("’", "'") for w in words]
    occasions, extra = [], []
    for name, (signals, adds) in OCCASIONS.items():
        if any(_forms(w) & set(signals) for w in low):
            occasions.append(name)
            extra.append(adds)
    theme_words: dict[str, set] = {}
    for label, kws in (themes or {}).items():
        # a theme is recognised by its main word (the label's first word, its top keyword):
        # the other keywords ("gift", "decoration") are shared by too many themes
        main = (_WORD.findall(label) or [""])[:1] + list(kws or [])[:1]
        theme_words[label] = set().union(*[_forms(k) for k in main if k])
    forms = [_forms(w) for w in low]
    theme_hits = [label for label, keys in theme_words.items() if any(f & keys for f in forms)]
    occasion_words = {s for sig, _ in OCCASIONS.values() for s in sig}
    all_theme = set().union(*theme_words.values()) if theme_words else set()
    kept, ignored = [], []
    for w, lw, f in zip(words, low, forms):
        if f & FILLER:
            continue
        if f & occasion_words or f & all_theme or vocabulary is None or f & vocabulary:
            kept.append(w)
        elif len(lw) >= 2:
            ignored.append(w)
    seen = {k.lower() for k in kept}
    q_words = kept + [x for x in " ".join(extra).split() if x.lower() not in seen]
    query = " ".join(q_words).strip()
    return Intent(text=text, query=query, min_price=lo, max_price=hi, price_phrases=phrases,
                  occasions=occasions, themes=theme_hits, ignored=list(dict.fromkeys(ignored)))
