#!/usr/bin/env python3
"""Reference BM25 scores for bench/metrics/bm25_test.ts, written independently of bench/metrics/bm25.ts.

Okapi BM25 with Lucene's Robertson-Sparck Jones idf, log(1 + (N - df + 0.5) / (df + 0.5)), the classic
(k1 + 1) numerator, exact document lengths, and Anserini/Pyserini's defaults k1 = 0.9, b = 0.4.
Tokens: lowercase, maximal runs of letters or digits (re.findall(r"[^\\W_]+")). Repeated query terms
count once per occurrence. Standard library only. Run: python3 scripts/bm25_reference.py
"""
import math
import re

DOCS = [
    ("d1", "The cat sat on the mat."),
    ("d2", "A dog chased the cat; the cat ran."),
    ("d3", "Dogs and cats: friends or foes?"),
    ("d4", "The Café served crème brûlée to the cat-lover."),
    ("d5", "Nothing relevant here, 42 times over."),
]
QUERIES = [("q1", "cat"), ("q2", "the cat cat"), ("q3", "dog crème 42"), ("q4", "unicorn")]
K1, B = 0.9, 0.4


def tokens(text):
    return re.findall(r"[^\W_]+", text.lower())


def main():
    toks = {d: tokens(t) for d, t in DOCS}
    n = len(DOCS)
    avgdl = sum(len(t) for t in toks.values()) / n
    df = {}
    for t in toks.values():
        for term in set(t):
            df[term] = df.get(term, 0) + 1
    for qid, q in QUERIES:
        out = []
        for d, _ in DOCS:
            s = 0.0
            for term in tokens(q):  # every occurrence of a repeated query term adds its weight again
                tf = toks[d].count(term)
                if tf == 0:
                    continue
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                s += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(toks[d]) / avgdl))
            out.append(f"{d}: {s!r}")
        print(qid, "{ " + ", ".join(out) + " }")


if __name__ == "__main__":
    main()
