"""Writes the frozen robustness sets (issue 24) into bench/data/robustness/: every row of a dev or test split once, with
one off-topic clause inserted by ssa_core.data.distractors.insert, the position cycling start, middle, end.

    PYTHONPATH=. python bench/build_robustness_sets.py [--data /work/shared/data]

    movie-selection.jsonl            movie dev rows + a selection.json clause of the polarity opposite to the label
    movie-eval-a.jsonl               movie test rows + an eval-a.json clause of the opposite polarity
    movie-eval-b.jsonl               movie test rows + an eval-b.json clause of the opposite polarity
    trec6-selection-fragments.jsonl  trec6 dev rows + 3-8 consecutive words of a dev row of another class
    trec6-eval-fragments.jsonl       trec6 test rows + 3-8 consecutive words of a test row of another class

Row: {"id": row number in the split (0-based), "text", "label" (the gold label, unchanged), "original", "clause" (as
inserted), "position" (where it went), "pool", "start", "end" (text[start:end] == clause)}. The clauses of a polarity
are used in turn from a seeded shuffle, so each is used about equally often. The selection sets choose settings; the
evaluation sets only measure; neither ever feeds training.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ssa_core.data.distractors import POSITIONS, insert, load_pool, other_class_fragment

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench/data/robustness"
POOLS = OUT / "pools"
OPPOSITE = {"positive": "negative", "negative": "positive"}


def read_rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def row(index: int, original: dict[str, str], clause: str, position: str, pool: str) -> dict[str, object]:
    done = insert(original["text"], clause, position)
    return {"id": index, "text": done.text, "label": original["label"], "original": original["text"],
            "clause": done.clause, "position": done.position, "pool": pool, "start": done.start, "end": done.end}


def movie_set(rows: list[dict[str, str]], pool_path: Path, seed: str) -> list[dict[str, object]]:
    pool = load_pool(pool_path)
    rng = random.Random(seed)
    clauses = {polarity: pool.texts(polarity) for polarity in ("positive", "negative")}
    for texts in clauses.values():
        rng.shuffle(texts)
    used = {"positive": 0, "negative": 0}
    out = []
    for index, original in enumerate(rows):
        polarity = OPPOSITE[original["label"]]
        clause = clauses[polarity][used[polarity] % len(clauses[polarity])]
        used[polarity] += 1
        out.append(row(index, original, clause, POSITIONS[index % 3], pool.name))
    return out


def fragment_set(rows: list[dict[str, str]], seed: str, pool: str) -> list[dict[str, object]]:
    rng = random.Random(seed)
    pairs = [(r["text"], r["label"]) for r in rows]
    return [row(index, original, other_class_fragment(pairs, index, rng), POSITIONS[index % 3], pool)
            for index, original in enumerate(rows)]


def build(data: Path) -> dict[str, list[dict[str, object]]]:
    movie, trec = data / "movie-sentiment", data / "trec6"
    return {
        "movie-selection.jsonl": movie_set(read_rows(movie / "dev.jsonl"), POOLS / "selection.json",
                                           "robustness-movie-selection"),
        "movie-eval-a.jsonl": movie_set(read_rows(movie / "test.jsonl"), POOLS / "eval-a.json",
                                        "robustness-movie-eval-a"),
        "movie-eval-b.jsonl": movie_set(read_rows(movie / "test.jsonl"), POOLS / "eval-b.json",
                                        "robustness-movie-eval-b"),
        "trec6-selection-fragments.jsonl": fragment_set(read_rows(trec / "dev.jsonl"), "robustness-trec6-selection",
                                                        "trec6-dev-fragments"),
        "trec6-eval-fragments.jsonl": fragment_set(read_rows(trec / "test.jsonl"), "robustness-trec6-eval",
                                                   "trec6-test-fragments"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    for name, rows in build(args.data).items():
        path = OUT / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
