"""Words for a group of items: class-based TF-IDF over their titles (as in BERTopic's c-TF-IDF).

Every theme's titles are one "document". A term's weight in theme c is

    w(t, c) = tf(t, c) * log(1 + A / f(t))

with tf(t, c) the term's count in c divided by c's term count, f(t) its count over all themes and
A the mean number of terms per theme: frequent in this theme, rare elsewhere. Terms are words of
three letters or more (lower case, digits and punctuation dropped, generic filler words such as
colours, sizes and "set"/"pack" ignored) and the bigrams of consecutive kept words.

A theme's label is its best bigram when that bigram is in at least ``bigram_share`` of the
theme's titles and weighs at least half the best word's weight, else its best word, and the
second word joined with "&" when it adds a different idea; labels are made distinct.

A label must describe the theme's items: its words must be in at least ``MIN_COVER`` (a quarter)
of the theme's titles. A word rare in the shop can weigh most in a theme while naming few of its
items (on Online Retail, "Diamante" was in 5 % of its 280 titles, a grab bag of globes, pencils
and rubbers). Then the best word that does cover a quarter names it; where no word does, the
theme is mixed and says so: "Mixed: pencil, rubber" (its two most frequent words), and segment
names never use it (``is_mixed``).
"""

from __future__ import annotations

import math
import re
from collections import Counter

# Generic words that describe a variant, not what an item is (colours, sizes, packaging) plus
# common English function words. Nothing shop-specific.
STOPWORDS = frozenset("""
a an and the of in on with for to from by at or as is are be this that it its our your you
set sets pack packs piece pieces pcs pc assorted asst small large big mini jumbo medium new
design designs style styles red blue pink green white black ivory cream yellow purple gold
silver grey gray orange brown colour colours color colors dark light pale bright mixed multi
one two three four five six ten dozen size sizes cm mm inch inches ml kg box
""".split())

_WORD = re.compile(r"[a-z]+")
MIN_COVER = 0.25
MIXED = "Mixed: "


def is_mixed(label) -> bool:
    """Whether a theme label says the theme is mixed (no word names a quarter of its items)."""
    return str(label or "").startswith(MIXED)


def _cover(label: str, titles: list[str]) -> float:
    """Share of ``titles`` holding a word of ``label`` (a word, a phrase or "a & b")."""
    want = [set(_WORD.findall(part.lower())) for part in label.split("&")]
    if not titles or not any(want):
        return 0.0
    hit = 0
    for t in titles:
        words = set(_WORD.findall(str(t).lower()))
        hit += any(w and w <= words for w in want)
    return hit / len(titles)


def terms(title: str) -> list[str]:
    """The words and bigrams of a title that can carry a theme's meaning."""
    words = [w for w in _WORD.findall(str(title).lower()) if len(w) >= 3 and w not in STOPWORDS]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def ctfidf(docs: dict[int, list[str]]) -> dict[int, list[tuple[str, float, int]]]:
    """{theme: [(term, weight, titles containing it)] best first} for {theme: titles}."""
    counts: dict[int, Counter] = {}
    titles_with: dict[int, Counter] = {}
    for c, titles in docs.items():
        cnt, present = Counter(), Counter()
        for t in titles:
            ts = terms(t)
            cnt.update(ts)
            present.update(set(ts))
        counts[c], titles_with[c] = cnt, present
    total = Counter()
    for cnt in counts.values():
        total.update(cnt)
    sizes = {c: sum(cnt.values()) for c, cnt in counts.items()}
    A = (sum(sizes.values()) / len(sizes)) if sizes else 0.0
    out = {}
    for c, cnt in counts.items():
        n = sizes[c] or 1
        scored = [(t, (k / n) * math.log(1.0 + A / total[t]), titles_with[c][t])
                  for t, k in cnt.items()]
        scored.sort(key=lambda r: (-r[1], r[0]))
        out[c] = scored
    return out


def _pretty(term: str) -> str:
    return term[:1].upper() + term[1:]


def _covering_label(words: list[tuple[str, float, int]], n_titles: int) -> str:
    """The best-weighted word in at least ``MIN_COVER`` of the titles, else "Mixed: " and the
    two words in most titles (weight breaking ties)."""
    wide = [w for w in words if w[2] / n_titles >= MIN_COVER]
    if wide:
        return wide[0][0]
    common = sorted(words, key=lambda w: (-w[2], -w[1], w[0]))[:2]
    return MIXED + ", ".join(w[0] for w in common) if common else "Mixed items"


def label_themes(docs: dict[int, list[str]], *, bigram_share: float = 0.25,
                 n_keywords: int = 5) -> dict[int, dict]:
    """{theme: {label, keywords}} for {theme: titles}; labels are distinct, keywords are the
    theme's best terms (words first seen in a bigram are not repeated)."""
    weights = ctfidf(docs)
    out: dict[int, dict] = {}
    for c, scored in weights.items():
        n_titles = max(1, len(docs[c]))
        words = [r for r in scored if " " not in r[0]]
        bigrams = [r for r in scored if " " in r[0] and r[2] / n_titles >= bigram_share]
        best_w = words[0] if words else None
        label = None
        if bigrams and (best_w is None or bigrams[0][1] >= 0.5 * best_w[1]):
            label = bigrams[0][0]
            # extend to a three-word phrase found in most of the bigram's titles
            tri = Counter()
            for t in docs[c]:
                w = [x for x in _WORD.findall(str(t).lower()) if len(x) >= 3 and x not in STOPWORDS]
                for a, b, d in zip(w, w[1:], w[2:]):
                    if f"{a} {b}" == label or f"{b} {d}" == label:
                        tri[f"{a} {b} {d}"] += 1
            if tri:
                phrase, n3 = tri.most_common(1)[0]
                if n3 >= 0.8 * bigrams[0][2]:
                    label = phrase
        elif best_w is not None:
            label = best_w[0]
            second = next((w for w in words[1:4] if w[2] >= max(2, 0.1 * n_titles)
                           and w[0] not in label and label not in w[0]), None)
            if second is not None and second[1] >= 0.35 * best_w[1]:
                label = f"{label} & {second[0]}"
        if label is not None and _cover(label, docs[c]) < MIN_COVER:
            label = _covering_label(words, n_titles)
        keywords: list[str] = []
        for t, _, _ in scored:
            if len(keywords) >= n_keywords:
                break
            if any(t in k or k in t for k in keywords):
                continue
            keywords.append(t)
        out[c] = {"label": _pretty(label) if label else None, "keywords": keywords}
    # distinct labels: a repeated label gets its theme's next keyword not already in it
    seen: dict[str, int] = {}
    for c in sorted(out, key=lambda c: (-len(docs[c]), c)):
        lab = out[c]["label"] or "Other items"
        if lab.lower() in seen:
            extra = next((k for k in out[c]["keywords"] if k not in lab.lower()), None)
            lab = f"{lab} ({extra})" if extra else lab
            i = 2
            base = lab
            while lab.lower() in seen:
                lab = f"{base} {i}"
                i += 1
        seen[lab.lower()] = c
        out[c]["label"] = lab
    return out
