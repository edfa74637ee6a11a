"""Retrieval for the `rag` and `tuned+rag` baselines of `tunesmith eval`: a dense ranking (MiniLM sentence
embeddings through sentence-transformers: mean pooling over the attention mask, then L2-normalised) and a BM25
ranking (bm25s) of the same texts, fused by reciprocal-rank fusion. The texts are training pairs, or ~200-word
passages of your own documents (`--docs`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import TunesmithError
from .metrics import contains

RRF_K = 60  # the constant in 1/(k + rank): Cormack, Clarke and Buettcher (SIGIR 2009) use 60, and so does most code
DEPTH = 100  # each ranking's top this many take part in the fusion
CHUNK_WORDS, CHUNK_OVERLAP = 200, 50  # a passage of --docs, and the words it shares with the one before it
DOC_SUFFIXES = (".txt", ".md")
Embed = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) rows of length 1


def chunk_words(text: str, size: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Passages of `size` whitespace-separated words, each starting `size - overlap` words after the one
    before; the last one ends with the text (so it may be shorter)."""
    words, step = text.split(), max(1, size - overlap)
    out = []
    for start in range(0, len(words), step):
        out.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    return out


def read_docs(path: str | Path, size: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Passages of a plain-text file, or of every .txt/.md file under a folder (by path order), each file
    chunked on its own."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in DOC_SUFFIXES)
        if not files:
            raise TunesmithError(f"{p}: no .txt or .md files in this folder (--docs)")
    elif p.is_file():
        files = [p]
    else:
        raise TunesmithError(f"{p}: --docs not found (give a text file, or a folder of .txt/.md files)")
    passages = []
    for f in files:
        try:
            passages += chunk_words(f.read_text(encoding="utf-8-sig"), size, overlap)
        except UnicodeDecodeError:
            raise TunesmithError(f"{f}: not UTF-8 text (--docs)") from None
    if not passages:
        raise TunesmithError(f"{p}: the documents hold no text (--docs)")
    return passages


def sentence_embedder(name: str = "minilm-l6", batch_size: int = 64) -> Embed:
    """texts -> L2-normalised sentence embeddings from a model alias, folder or hub id (sentence-transformers:
    the folder's own pooling, mean pooling for a plain Hugging Face encoder)."""
    from sentence_transformers import SentenceTransformer

    from ..models.registry import resolve_model

    model = SentenceTransformer(str(resolve_model(name)))

    def embed(texts: list[str]) -> np.ndarray:
        vecs = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    return embed


def _words(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


class BM25:
    """Okapi BM25 (bm25s, Lucene's variant, k1 1.5, b 0.75) over lower-cased words of two or more characters,
    English stop words removed, no stemming."""

    def __init__(self, texts: list[str]):
        import bm25s

        self.n = len(texts)
        self.index = bm25s.BM25()
        self.index.index(_words(texts), show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        ids = self.index.get_tokens_ids(_words([query])[0])
        if not ids:  # no word of the query is in any text
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self.index.get_scores_from_ids(ids), dtype=np.float32)


def top(scores: np.ndarray, depth: int = DEPTH, positive: bool = False) -> list[int]:
    """Indices of the highest scores, best first, ties in index order; `positive`: only scores above 0."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:depth]
    return [int(i) for i in order if not positive or scores[i] > 0]


def rrf(rankings: list[list[int]], k: int = RRF_K) -> list[int]:
    """Reciprocal-rank fusion: each item scores the sum of 1 / (k + rank) over the rankings it is in (rank 1 =
    first); best first, ties broken by the item's index."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(score, key=lambda i: (-score[i], i))


METHODS = ("hybrid", "dense", "bm25")  # both rankings fused by RRF (the default), or one of them alone


def check_method(method: str) -> None:
    if method not in METHODS:
        raise TunesmithError(f"unknown retrieval method '{method}' (known: {', '.join(METHODS)})")


def describe(method: str, embedder: str = "minilm-l6") -> str:
    """How `method` ranks, for a log line: "BM25 + minilm-l6", "minilm-l6" or "BM25"."""
    return {"hybrid": f"BM25 + {embedder}", "dense": embedder, "bm25": "BM25"}.get(method, method)


class Retriever:
    """BM25 (unless `bm25` is False) and, with `embed`, dense rankings of `texts`, fused by RRF when both."""

    def __init__(self, texts: list[str], embed: Embed | None = None, bm25: bool = True):
        if not texts:
            raise TunesmithError("nothing to retrieve from: no training pairs or passages")
        if not bm25 and embed is None:
            raise ValueError("a retriever needs BM25 or an embedder")
        self.texts, self.embed = list(texts), embed
        self.bm25 = BM25(self.texts) if bm25 else None
        self.vectors = embed(self.texts) if embed else None

    def search(self, queries: list[str], k: int, method: str = "hybrid") -> list[list[int]]:
        """The top `k` text indices per query, best first: by every ranking held (`hybrid`), or by the one
        `method` names (dense, bm25) when both are held."""
        check_method(method)
        bm25 = self.bm25 if method != "dense" else None
        embed = self.embed if method != "bm25" else None
        if bm25 is None and embed is None:
            raise ValueError(f"this retriever holds no {method} ranking")
        qv = embed(list(queries)) if embed and queries else None
        out = []
        for i, q in enumerate(queries):
            rankings = [top(bm25.scores(q), positive=True)] if bm25 else []
            if qv is not None:
                rankings.append(top(self.vectors @ qv[i]))
            out.append(rrf(rankings)[:k])
        return out


def retriever(texts: list[str], method: str = "hybrid", embedder: str = "minilm-l6") -> Retriever:
    """A Retriever by METHODS name; the embedder (an alias, folder or hub id) is loaded only when used."""
    check_method(method)
    embed = sentence_embedder(embedder) if method != "bm25" else None
    return Retriever(texts, embed, bm25=method != "dense")


def recall_at_k(retrieved: list[list[str]], musts: list[list[str]]) -> tuple[float | None, int]:
    """(share of rows with must_contain whose retrieved texts include one that contains all of the row's
    needles, by `metrics.contains`; the number of such rows). (None, 0) when no row has must_contain."""
    hits = [max((contains(t, m) for t in texts), default=0.0) for texts, m in zip(retrieved, musts) if m]
    return (sum(hits) / len(hits) if hits else None), len(hits)
