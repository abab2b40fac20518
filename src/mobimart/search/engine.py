"""An in-memory product search index. Pure (no I/O); the search service feeds it.

Ranking is BM25 over weighted fields, plus
- adjacent query words found adjacent in the title (indexed as word pairs),
- query words found in the title's head (what the product is, before "with/for/in"),
- a coordination factor: the share of query words a product matches,
and query words are corrected against the catalogue vocabulary (one edit, symmetric-delete
lookup) when they are not in it, split or joined when that makes known words, and expanded by
synonyms. Measured on 54,667 product titles: see bench/search.py and bench/RESULTS.md.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from mobimart.search.analysis import analyze, head, stem, surface_words

FIELD_WEIGHTS = {"title": 1.0, "brand": 0.8, "category": 0.6, "tags": 0.6, "description": 0.2}
K1, B = 1.2, 0.5
PAIR_WEIGHT = 0.5
HEAD_WEIGHT = 0.3
COORDINATION = 1.0
MIN_TYPO_LENGTH = 4

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass
class _Postings:
    slots: dict[int, float] = field(default_factory=dict)
    compiled: tuple[I32, F32] | None = None

    def arrays(self) -> tuple[I32, F32]:
        if self.compiled is None:
            self.compiled = (
                np.fromiter(self.slots.keys(), dtype=np.int32, count=len(self.slots)),
                np.fromiter(self.slots.values(), dtype=np.float32, count=len(self.slots)),
            )
        return self.compiled


class SearchIndex:
    def __init__(self) -> None:
        self._postings: dict[str, _Postings] = defaultdict(_Postings)
        self._slot_of: dict[int, int] = {}
        self._doc_of: list[int] = []
        self._terms_of: list[list[str]] = []
        self._surface_of: list[list[str]] = []
        self._length = np.zeros(1024, dtype=np.float32)
        self._live = np.zeros(1024, dtype=bool)
        self._total_length = 0.0
        self._docs = 0
        self._surface_df: Counter[str] = Counter()
        self._deletes: dict[str, set[str]] = defaultdict(set)
        self._sorted_vocab: list[str] | None = None
        self._synonyms: dict[str, list[tuple[str, int | None]]] = {}
        self._owner = np.zeros(1024, dtype=np.int64)

    # --- documents -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._docs

    def add(self, doc_id: int, fields: dict[str, str], owner: int = 0) -> None:
        """Index (or re-index) one product of `owner` (its merchant, whose synonyms apply to
        it). Takes effect for the next query."""
        self.remove(doc_id)
        weighted: defaultdict[str, float] = defaultdict(float)
        length = 0.0
        for name, text in fields.items():
            weight = FIELD_WEIGHTS.get(name, 0.0)
            if not weight or not text:
                continue
            terms = analyze(text)
            for term in terms:
                weighted[term] += weight
            length += weight * len(terms)
            if name == "title":
                for a, b in pairwise(terms):
                    weighted[f"{a} {b}"] += 1.0
                for term in set(analyze(head(text))):
                    weighted["^" + term] = 1.0
        surface = sorted({w for text in fields.values() if text for w in surface_words(text)})

        slot = len(self._doc_of)
        self._slot_of[doc_id] = slot
        self._doc_of.append(doc_id)
        self._terms_of.append(list(weighted))
        self._surface_of.append(surface)
        if slot >= len(self._length):
            self._length = np.resize(self._length, slot * 2)
            self._live = np.resize(self._live, slot * 2)
            self._owner = np.resize(self._owner, slot * 2)
            self._live[slot:] = False
        self._length[slot] = length
        self._owner[slot] = owner
        self._live[slot] = True
        self._total_length += length
        self._docs += 1
        for term, tf in weighted.items():
            postings = self._postings[term]
            postings.slots[slot] = tf
            postings.compiled = None
        for word in surface:
            if self._surface_df[word] == 0:
                self._learn_word(word)
            self._surface_df[word] += 1

    def remove(self, doc_id: int) -> None:
        slot = self._slot_of.pop(doc_id, None)
        if slot is None:
            return
        self._live[slot] = False
        self._total_length -= float(self._length[slot])
        self._docs -= 1
        for term in self._terms_of[slot]:
            postings = self._postings[term]
            postings.slots.pop(slot, None)
            postings.compiled = None
        for word in self._surface_of[slot]:
            self._surface_df[word] -= 1
        self._terms_of[slot], self._surface_of[slot] = [], []

    def _learn_word(self, word: str) -> None:
        self._sorted_vocab = None
        if len(word) >= MIN_TYPO_LENGTH and word.isascii() and word.isalpha():
            self._deletes[word].add(word)
            for d in _deletes(word):
                self._deletes[d].add(word)

    def set_synonyms(self, groups: Sequence[tuple[Sequence[str], int | None]]) -> None:
        """Each group's words find each other ("fridge", "refrigerator"): (words, owner),
        where a merchant's group (owner = its id) reaches only its own products and a
        platform group (None) every product."""
        self._synonyms = defaultdict(list)
        for words, owner in groups:
            stems = [" ".join(analyze(w)) for w in words]
            for s in stems:
                self._synonyms[s] += [(o, owner) for o in stems if o and o != s]
        self._synonyms = dict(self._synonyms)

    # --- queries ---------------------------------------------------------------------------

    def _known(self, word: str) -> bool:
        return self._surface_df.get(word, 0) > 0

    def correct(self, word: str) -> str:
        """The most common catalogue word one edit away, for a word the catalogue lacks."""
        if self._known(word) or len(word) < MIN_TYPO_LENGTH or not word.isalpha():
            return word
        candidates = set(self._deletes.get(word, ()))
        for d in _deletes(word):
            candidates |= self._deletes.get(d, set())
        live = [c for c in candidates if self._known(c)]
        return max(live, key=lambda c: (self._surface_df[c], c)) if live else word

    def _query_terms(self, query: str) -> list[str]:
        words = surface_words(query)
        joined: list[str] = []
        i = 0
        while i < len(words):
            if i + 1 < len(words):
                first, second = words[i], words[i + 1]
                either_unknown = not (self._known(first) and self._known(second))
                if either_unknown and self._known(first + second):
                    joined.append(first + second)  # "deck over" -> "deckover", before correcting
                    i += 2
                    continue
            joined.append(words[i])
            i += 1
        return [stem(part) for word in joined for part in self._split(self.correct(word))]

    def _split(self, word: str) -> list[str]:
        """ "showerhead" -> "shower head" when only the parts are catalogue words."""
        if self._known(word) or not word.isalpha() or len(word) < 6:
            return [word]
        for cut in range(3, len(word) - 2):
            if self._known(word[:cut]) and self._known(word[cut:]):
                return [word[:cut], word[cut:]]
        return [word]

    def _bm25(self, term: str) -> tuple[I32, F32] | None:
        postings = self._postings.get(term)
        if postings is None or not postings.slots:
            return None
        slots, tf = postings.arrays()
        df = len(slots)
        idf = math.log(1 + (self._docs - df + 0.5) / (df + 0.5))
        avg = self._total_length / max(self._docs, 1)
        norm = K1 * (1 - B + B * self._length[slots] / avg)
        return slots, (idf * tf * (K1 + 1) / (tf + norm)).astype(np.float32)

    def _term_scores(self, term: str, size: int) -> F32:
        dense = np.zeros(size, dtype=np.float32)
        for key, weight in ((term, 1.0), ("^" + term, HEAD_WEIGHT)):
            found = self._bm25(key)
            if found is not None:
                dense[found[0]] += weight * found[1]
        return dense

    def search(self, query: str, *, limit: int = 10, allowed: set[int] | None = None) -> list[int]:
        """Product ids, best first. `allowed` restricts to a filtered set (facets, shop)."""
        terms = list(dict.fromkeys(self._query_terms(query)))
        if not terms or not self._docs:
            return []
        size = len(self._doc_of)
        scores = np.zeros(size, dtype=np.float32)
        matched = np.zeros(size, dtype=np.float32)
        for term in terms:
            best = self._term_scores(term, size)
            for synonym, owner in self._synonyms.get(term, []):  # a product's best word counts
                other = self._term_scores(synonym, size)
                if owner is not None:
                    other[self._owner[:size] != owner] = 0
                np.maximum(best, other, out=best)
            scores += best
            matched += best > 0
        for a, b in pairwise(terms):
            found = self._bm25(f"{a} {b}")
            if found is not None:
                scores[found[0]] += PAIR_WEIGHT * found[1]
        scores *= (matched / len(terms)) ** COORDINATION
        scores[~self._live[:size]] = 0
        if allowed is not None:
            mask = np.zeros(size, dtype=bool)
            mask[[self._slot_of[d] for d in allowed if d in self._slot_of]] = True
            scores[~mask] = 0
        k = min(limit, size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [self._doc_of[s] for s in top if scores[s] > 0]

    def suggest(self, prefix: str, *, limit: int = 8) -> list[str]:
        """Catalogue words starting with the prefix, most common first."""
        words = surface_words(prefix)
        if not words:
            return []
        last = words[-1]
        if self._sorted_vocab is None:
            self._sorted_vocab = sorted(self._surface_df)
        vocab = self._sorted_vocab
        start = bisect.bisect_left(vocab, last)
        found: list[str] = []
        for word in vocab[start:]:
            if not word.startswith(last):
                break
            if self._known(word):
                found.append(word)
        return sorted(found, key=lambda w: (-self._surface_df[w], w))[:limit]
