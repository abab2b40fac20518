"""Search relevance and speed on the Home Depot product-search data, against SQLite FTS5.

    python -m bench.search [--data DIR] [--judgments PATH] [--seed N]

Indexes every product title through the project's search index, runs every judged query and
scores NDCG@10 (gain = mean human relevance, unjudged results gain 0). The baseline in the same
run: SQLite FTS5, tokenizer `porter unicode61`, the query as an OR of its alphanumeric terms,
ranked by bm25(). Then again with every query given one seeded random edit (insert, delete,
substitute or swap) in one word of five letters or more.

Summary: search ndcg10=X baseline_ndcg10=Y ratio=X/Y typo_ndcg10=X2 typo_baseline_ndcg10=Y2
         typo_ratio=X2/Y2 p95_ms=Z
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import random
import re
import resource
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, say
from mobimart.search.engine import SearchIndex

DATA = ROOT.parent / "shared" / "data" / "search"
Judgments = dict[str, dict[int, float]]


def ndcg10(ranked: list[int], relevance: dict[int, float]) -> float:
    dcg = sum(relevance.get(doc, 0.0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
    ideal = sorted(relevance.values(), reverse=True)[:10]
    best = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / best if best else 0.0


def one_typo(query: str, rng: random.Random) -> str:
    words = [w for w in query.split() if len(w) >= 5]
    if not words:
        return query
    word = rng.choice(words)
    i = rng.randrange(len(word))
    op = rng.choice("idsw")
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if op == "i":
        typo = word[:i] + letter + word[i:]
    elif op == "d":
        typo = word[:i] + word[i + 1 :]
    elif op == "s":
        typo = word[:i] + letter + word[i + 1 :]
    else:
        i = min(i, len(word) - 2)
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return query.replace(word, typo, 1)


def fts5_baseline(products: list[tuple[int, str]]) -> Callable[[str], list[int]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE p USING fts5(title, tokenize='porter unicode61')")
    db.executemany("INSERT INTO p(rowid, title) VALUES (?, ?)", products)

    def search(query: str) -> list[int]:
        terms = re.findall(r"[A-Za-z0-9]+", query)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = db.execute("SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT 10", (match,))
        return [r[0] for r in rows]

    return search


def evaluate(
    search: Callable[[str], list[int]], queries: list[tuple[str, dict[int, float]]]
) -> float:
    return sum(ndcg10(search(q), rels) for q, rels in queries) / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--judgments", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with gzip.open(args.data / "products.csv.gz", "rt", encoding="utf-8") as fh:
        products = [(int(r["product_uid"]), r["product_title"]) for r in csv.DictReader(fh)]
    judgments: Judgments = defaultdict(dict)
    with gzip.open(args.judgments or args.data / "judgments-dev.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            judgments[r["search_term"]][int(r["product_uid"])] = float(r["relevance"])
    queries = list(judgments.items())
    rng = random.Random(args.seed)
    typo_queries = [(one_typo(q, rng), rels) for q, rels in queries]
    say(f"{len(products):,} products, {len(queries):,} judged queries")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    index = SearchIndex()
    for doc_id, title in products:
        index.add(doc_id, {"title": title})
    build_s = time.perf_counter() - started
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    say(f"index built in {build_s:.1f} s, peak memory +{peak_mb:.0f} MB")

    latencies: list[float] = []

    def timed(query: str) -> list[int]:
        t = time.perf_counter()
        found = index.search(query, limit=10)
        latencies.append(time.perf_counter() - t)
        return found

    ours = evaluate(timed, queries)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    say(f"mobimart NDCG@10 {ours:.4f}  (p50 {p50:.2f} ms, p95 {p95:.2f} ms)")
    baseline = fts5_baseline(products)
    base = evaluate(baseline, queries)
    say(f"FTS5 bm25 NDCG@10 {base:.4f}")
    ours_typo = evaluate(lambda q: index.search(q, limit=10), typo_queries)
    base_typo = evaluate(baseline, typo_queries)
    say(f"with one typo per query: mobimart {ours_typo:.4f}, FTS5 {base_typo:.4f}")
    print(
        f"search ndcg10={ours:.4f} baseline_ndcg10={base:.4f} ratio={ours / base:.3f} "
        f"typo_ndcg10={ours_typo:.4f} typo_baseline_ndcg10={base_typo:.4f} "
        f"typo_ratio={ours_typo / base_typo:.3f} p95_ms={p95:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
