"""Search relevance and speed on the Home Depot product-search data, against SQLite FTS5.

    python -m bench.search [--data DIR] [--judgments PATH] [--seed N] [--engine-only]

Imports every product into a fresh SQLite database through the catalogue importer, lets the
search service build its index from it, runs every judged query through the service (a
database session per query, as a request has) and scores NDCG@10 (gain = mean human
relevance, unjudged results gain 0). The baseline in the same run: SQLite FTS5, tokenizer
`porter unicode61`, the query as an OR of its alphanumeric terms,
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


Search = Callable[[str], list[int]]


def _engine(products: list[tuple[int, str]]) -> tuple[Search, list[float], float]:
    started = time.perf_counter()
    index = SearchIndex()
    for doc_id, title in products:
        index.add(doc_id, {"title": title})
    build_s = time.perf_counter() - started
    latencies: list[float] = []

    def search(query: str) -> list[int]:
        t = time.perf_counter()
        found = index.search(query, limit=10)
        latencies.append(time.perf_counter() - t)
        return found

    return search, latencies, build_s


def _service(products: list[tuple[int, str]]) -> tuple[Search, list[float], float]:
    """The real path: importer -> database -> change feed -> index -> search service."""
    import asyncio
    import os
    import tempfile

    var = Path(tempfile.mkdtemp(prefix="mobimart-bench-search-"))
    os.environ.update(
        {"MOBIMART_VAR_DIR": str(var), "MOBIMART_DATABASE_URL": f"sqlite+aiosqlite:///{var}/s.db"}
    )
    from mobimart.catalog.importing import import_products
    from mobimart.db import Database
    from mobimart.demo import load as demo
    from mobimart.migrate import upgrade
    from mobimart.search import service as search_service
    from mobimart.settings import get_settings

    get_settings.cache_clear()
    url = os.environ["MOBIMART_DATABASE_URL"]
    upgrade(url)
    loop = asyncio.new_event_loop()
    database = Database(url)

    async def load() -> dict[int, int]:
        await demo.load(database)  # an approved merchant (and its 80 demo products)
        async with database.session() as s:
            from mobimart.merchants.service import get

            merchant = await get(s, merchant_id=1)
            rows = ["name,price,stock"] + [
                f'"{t.replace(chr(34), chr(39))}",1,1' for _, t in products
            ]
            started = time.perf_counter()
            report = await import_products(s, merchant=merchant, lines=rows, publish=True)
            say(
                f"imported {report.imported:,} products in {time.perf_counter() - started:.1f} s"
                f" ({len(report.errors)} refused: {report.errors[:1]})"
            )
            refused = {line - 2 for line, _ in report.errors}  # line 1 is the header
            from sqlalchemy import select

            from mobimart.catalog.models import Product

            ids = list(await s.scalars(select(Product.id).order_by(Product.id)))
        imported = [uid for i, (uid, _) in enumerate(products) if i not in refused]
        ours = ids[-len(imported) :]  # after the demo's, in file order
        return dict(zip(ours, imported, strict=True))

    uid_of = loop.run_until_complete(load())

    async def first_query() -> None:
        async with database.session() as s:
            await search_service.search(s, query="warm up", limit=10)

    started = time.perf_counter()
    loop.run_until_complete(first_query())  # the index is built from the database here
    build_s = time.perf_counter() - started
    latencies: list[float] = []

    async def query(q: str) -> list[int]:
        t = time.perf_counter()
        async with database.session() as s:
            found = await search_service.search(s, query=q, limit=10)
        latencies.append(time.perf_counter() - t)
        return [uid_of.get(p.id, -1) for p in found]

    return (lambda q: loop.run_until_complete(query(q))), latencies, build_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--judgments", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--engine-only", action="store_true", help="query the in-memory index without the service"
    )
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
    if args.engine_only:
        search_fn, latencies, build_s = _engine(products)
    else:
        search_fn, latencies, build_s = _service(products)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    say(f"index built in {build_s:.1f} s, peak memory +{peak_mb:.0f} MB")
    ours = evaluate(search_fn, queries)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    say(f"mobimart NDCG@10 {ours:.4f}  (p50 {p50:.2f} ms, p95 {p95:.2f} ms per query)")
    baseline = fts5_baseline(products)
    base = evaluate(baseline, queries)
    say(f"FTS5 bm25 NDCG@10 {base:.4f}")
    ours_typo = evaluate(search_fn, typo_queries)
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
