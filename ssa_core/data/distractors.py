"""Off-topic distractor clauses (issue 24): the clause pools, how one clause is inserted into a text, and fragments of
other-class rows. Training copies a row with a distractor inserted (token target 0 on the clause, same label); the
frozen robustness sets in bench/data/robustness/ are built with the same `insert`. Torch-free.

Pool files: the JSON pool format (an object with name, role, source, licence, topics and entries, each entry an object
with "text" and optionally "topic", "polarity", "subject", "adjective"), a .jsonl file ({"text": ...} per line) or a
.txt file (one clause per line; blank lines and lines starting with # are skipped)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Position = Literal["start", "middle", "end"]
POSITIONS: tuple[Position, ...] = ("start", "middle", "end")
MAX_CLAUSE_CHARS = 300
MAX_ENTRIES = 20_000
SENTENCE_END = ".!?"
CLOSERS = "\"'”’)]"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "distractors"


class DistractorError(ValueError):
    """A distractor pool file failed to load: `source` names it, `reason` says why, `line` (1-based) where, if known.
    `str()` is "source line 3: reason" (or "source: reason")."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source, self.reason, self.line = source, reason, line
        super().__init__(f"{source} line {line}: {reason}" if line is not None else f"{source}: {reason}")


@dataclass(frozen=True)
class Distractor:
    text: str
    topic: str = ""
    polarity: Literal["positive", "negative"] | None = None


@dataclass(frozen=True)
class DistractorPool:
    name: str
    role: str  # "training" | "report" | "selection" | "evaluation" (a user's file: "training")
    source: str
    licence: str
    topics: tuple[str, ...]
    entries: tuple[Distractor, ...]

    def texts(self, polarity: str | None = None) -> list[str]:
        """The clauses, all of them or those of one polarity."""
        return [e.text for e in self.entries if polarity is None or e.polarity == polarity]


@dataclass(frozen=True)
class Insertion:
    """`text` with the clause inserted; `text[start:end]` is the clause as inserted, `position` where it went."""

    text: str
    start: int
    end: int
    position: str

    @property
    def clause(self) -> str:
        return self.text[self.start : self.end]


def _ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip(CLOSERS)[-1:] in tuple(SENTENCE_END)


# Words that open a sentence and are lowercased inside one; any other capitalised first word (a name, "U.S.",
# "TUCK") keeps its case.
_OPENER_TEXT = """
a an the this that these those my our your his her their its it we you he she they there here
what who whom whose which when where why how whoever whatever
is are was were be been do does did have has had can could will would should shall may might must
isn't aren't wasn't weren't don't doesn't didn't haven't hasn't can't couldn't won't wouldn't shouldn't
and but so or yet though although because if as at by for from in into of on to with after before since while
such oh wow well honestly frankly apparently seriously sadly luckily happily also even still just only then
apart last next every each everyone everybody nobody someone somebody all both some any no one two three
"""
OPENERS = frozenset(_OPENER_TEXT.split())


def inline_form(clause: str) -> str:
    """The clause as it reads inside another sentence: its final . ! ? dropped, and its first letter lowercased when
    the first word is a common sentence opener ("The", "Who", "Wow" ..., see OPENERS); "I", names and acronyms keep
    their case."""
    clause = clause.strip().rstrip(SENTENCE_END).rstrip()
    first = re.match(r"[A-Za-z']+", clause)
    word = first.group(0) if first else ""
    if word[:1].isupper() and (len(word) == 1 or word[1:].islower()) and word.lower() in OPENERS:
        clause = clause[0].lower() + clause[1:]
    return clause


_BOUNDARY_AFTER = re.compile(r"[,;](?=\s)|\s(?:--?|—|–)(?=\s)|—")
_BOUNDARY_BEFORE = re.compile(r"\s(?=(?:but|and|though)\s)")
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(]?[A-Z])")


def _middle_cut(text: str) -> tuple[int, int] | None:
    """(left end, right start) of the boundary nearest the middle: between two sentences, after a comma, semicolon or
    dash, or before " but ", " and ", " though "; else the word boundary nearest the middle. None: a single word."""
    middle = len(text) / 2
    cuts = [(m.start(), m.end()) for m in _BOUNDARY_AFTER.finditer(text)]
    cuts += [(m.start(), m.end()) for m in _BOUNDARY_BEFORE.finditer(text)]
    cuts += [(m.start(), m.end()) for m in _SENTENCE_BOUNDARY.finditer(text)]
    cuts = [c for c in cuts if text[: c[0]].strip() and text[c[1] :].strip()]
    if not cuts:
        cuts = [(m.start(), m.end()) for m in re.finditer(r"\s+", text)]
        cuts = [c for c in cuts if text[: c[0]].strip(",;") and text[c[1] :].strip()]
    return min(cuts, key=lambda c: (abs(c[0] - middle), c[0])) if cuts else None


def insert(text: str, clause: str, position: str) -> Insertion:
    """`clause` inserted into `text`, with its character span in the result.

    start: clause + ". " (" " where it ends with . ! ?) + text, the text's first letter kept as it is.
    end: text + " " (". " where the text lacks final punctuation) + clause.
    middle: at the clause boundary nearest the middle (after a comma, semicolon or dash, or before " but ", " and ",
    " though "), else at the word boundary nearest the middle, as ", clause," (the boundary's own mark kept after it);
    the clause takes its `inline_form` there. Between two sentences it goes in whole as a sentence of its own. A
    one-word text takes the clause at the end (position "end")."""
    text, clause = text.strip(), clause.strip()
    if not clause:
        raise ValueError("the clause is empty")
    if position == "start":
        glue = " " if clause[-1] in SENTENCE_END else ". "
        return Insertion(clause + glue + text, 0, len(clause), "start")
    cut = _middle_cut(text) if position == "middle" else None
    if position == "end" or (position == "middle" and cut is None):
        left = text + (" " if _ends_sentence(text) else ". ") if text else ""
        return Insertion(left + clause, len(left), len(left) + len(clause), "end")
    if position != "middle":
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}, not {position!r}")
    assert cut is not None
    left, mark, right = text[: cut[0]].rstrip(), text[cut[0] : cut[1]].strip(), text[cut[1] :].lstrip()
    if left[-1:] in tuple(SENTENCE_END) and not mark:  # between two sentences: the clause as a sentence of its own
        glue = " " if clause[-1] in SENTENCE_END else ". "
        start = len(left) + 1
        return Insertion(f"{left} {clause}{glue}{right}", start, start + len(clause), "middle")
    inner = inline_form(clause)
    trail = mark if mark in {";", "--", "-", "—", "–"} else ","
    sep = " " if trail in {"--", "-", "—", "–"} else ""
    new = f"{left}, {inner}{sep}{trail} {right}"
    start = len(left) + 2
    return Insertion(new, start, start + len(inner), "middle")


def other_class_fragment(rows_texts_labels: Sequence[tuple[str, str]], index: int, rng: random.Random,
                         min_words: int = 3, max_words: int = 8) -> str:
    """min_words..max_words consecutive words of a row whose label differs from row `index`'s, drawn with `rng`; the
    fragment starts and ends on a word with a letter or digit (not a lone "?" or ","). ValueError: no such row."""
    label = rows_texts_labels[index][1]

    def usable(words: list[str]) -> list[tuple[int, int]]:
        alnum = [any(ch.isalnum() for ch in w) for w in words]
        return [(s, n) for n in range(min_words, max_words + 1) for s in range(len(words) - n + 1)
                if alnum[s] and alnum[s + n - 1]]

    candidates = [i for i, (_, other) in enumerate(rows_texts_labels) if other != label]
    rng.shuffle(candidates)
    for i in candidates:
        words = rows_texts_labels[i][0].split()
        windows = usable(words)
        if windows:
            lengths = sorted({n for _, n in windows})
            n = rng.choice(lengths)
            s = rng.choice([s for s, m in windows if m == n])
            return " ".join(words[s : s + n])
    raise ValueError(f"no row of another class than {label!r} has {min_words} words")


# loading ------------------------------------------------------------------------------------------------------------


def _entry(value: Any, source: str, line: int | None, where: str = "") -> Distractor:
    prefix = f"{where}: " if where else ""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise DistractorError(source, f"{prefix}an entry must be an object with \"text\" or a string", line)
    if "text" not in value:
        raise DistractorError(source, f"{prefix}missing \"text\"", line)
    text = value["text"]
    if not isinstance(text, str):
        raise DistractorError(source, f"{prefix}text must be a string", line)
    text = text.strip()
    if not text:
        raise DistractorError(source, f"{prefix}text is empty", line)
    if len(text) > MAX_CLAUSE_CHARS:
        raise DistractorError(source, f"{prefix}text is longer than {MAX_CLAUSE_CHARS} characters ({len(text)})",
                              line)
    polarity = value.get("polarity")
    if polarity not in (None, "positive", "negative"):
        raise DistractorError(source, f"{prefix}polarity must be \"positive\" or \"negative\", not {polarity!r}",
                              line)
    topic = value.get("topic") or ""
    if not isinstance(topic, str):
        raise DistractorError(source, f"{prefix}topic must be a string", line)
    return Distractor(text, topic, polarity)


def _check_count(entries: Sequence[Distractor], source: str) -> None:
    if not entries:
        raise DistractorError(source, "the file has no distractors")
    if len(entries) > MAX_ENTRIES:
        raise DistractorError(source, f"more than {MAX_ENTRIES} distractors ({len(entries)})")


def parse_pool(content: str, kind: str, source: str, name: str = "distractors") -> DistractorPool:
    """A pool from the text of a file: `kind` "json", "jsonl" or "txt"."""
    if not content.strip():
        raise DistractorError(source, "the file is empty")
    meta: dict[str, Any] = {}
    entries: list[Distractor] = []
    if kind == "json":
        try:
            data = json.loads(content)
        except json.JSONDecodeError as error:
            raise DistractorError(source, f"not valid JSON: {error.msg}", error.lineno) from None
        if isinstance(data, dict):
            meta = data
            raw = data.get("entries")
            if not isinstance(raw, list):
                raise DistractorError(source, "a pool object needs an \"entries\" list")
        elif isinstance(data, list):
            raw = data
        else:
            raise DistractorError(source, "expected a pool object or a list of entries")
        if len(raw) > MAX_ENTRIES:
            raise DistractorError(source, f"more than {MAX_ENTRIES} distractors ({len(raw)})")
        entries = [_entry(value, source, None, f"entry {i}") for i, value in enumerate(raw, 1)]
    elif kind == "jsonl":
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DistractorError(source, f"not valid JSON: {error.msg}", number) from None
            entries.append(_entry(value, source, number))
            if len(entries) > MAX_ENTRIES:
                break
    elif kind == "txt":
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                entries.append(_entry(line, source, number))
                if len(entries) > MAX_ENTRIES:
                    break
    else:
        raise DistractorError(source, f"unknown pool format {kind!r} (json, jsonl or txt)")
    _check_count(entries, source)
    topics = meta.get("topics") or sorted({e.topic for e in entries if e.topic})
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise DistractorError(source, "topics must be a list of strings")
    strings = {key: meta.get(key, default) for key, default in
               (("name", name), ("role", "training"), ("source", ""), ("licence", ""))}
    for key, value in strings.items():
        if not isinstance(value, str):
            raise DistractorError(source, f"{key} must be a string")
    return DistractorPool(strings["name"], strings["role"], strings["source"], strings["licence"], tuple(topics),
                          tuple(entries))


def load_pool(path: str | Path, source: str | None = None) -> DistractorPool:
    """The pool in `path` (.json, .jsonl, or anything else read as .txt); errors name `source` (default: the file
    name). DistractorError: empty file or text, text over 300 characters, bad JSON, missing "text", over 20000."""
    path = Path(path)
    source = source or path.name
    suffix = path.suffix.lower().lstrip(".")
    kind = suffix if suffix in {"json", "jsonl"} else "txt"
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DistractorError(source, "the file is not UTF-8 text") from None
    return parse_pool(content, kind, source, name=path.stem)


def shipped_pool(role: Literal["training", "report"]) -> DistractorPool:
    """The pool shipped in the package: ssa_core/samples/distractors/offtopic-{role}.json."""
    if role not in ("training", "report"):
        raise ValueError(f"shipped pools are 'training' and 'report', not {role!r}")
    return load_pool(SAMPLES / f"offtopic-{role}.json")
