"""ssa_core.data.distractors: inserting a clause (span, words kept in order, each position), fragments of other-class
rows, and loading pool files (JSON pool, .jsonl, .txt) with their errors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssa_core.data.distractors import (
    MAX_ENTRIES,
    POSITIONS,
    DistractorError,
    inline_form,
    insert,
    load_pool,
    other_class_fragment,
    shipped_pool,
)

CLAUSE = "The referee was dreadful."
TEXTS = [
    "It is a fine film, and I loved it.",
    "A warm, funny movie; full of heart.",
    "Great fun but too long.",
    "Smart science fiction for grown ups with only a few false steps along the way",
    "Good. Really good film overall!",
    "What is a Mexican hairless ?",
    "It is -- oddly -- moving.",
    "TUCK EVERLASTING is a charmer.",
]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def assert_preserved(original: str, clause: str, position: str) -> None:
    done = insert(original, clause, position)
    assert done.text[done.start : done.end] == done.clause
    if position in ("start", "end") or done.clause == clause:
        assert done.clause == clause
    else:
        assert done.clause == inline_form(clause)
    rest = done.text[: done.start] + " " + done.text[done.end :]
    assert words(rest) == words(original)  # the original's words, in order, and nothing else
    assert words(done.clause) == words(clause)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("text", TEXTS)
def test_insert_span_and_words(text: str, position: str) -> None:
    assert_preserved(text, CLAUSE, position)
    assert insert(text, CLAUSE, position).position == position


def test_start_keeps_the_first_letter_and_adds_a_full_stop_where_needed() -> None:
    done = insert("TUCK EVERLASTING is a charmer.", CLAUSE, "start")
    assert done.text == "The referee was dreadful. TUCK EVERLASTING is a charmer." and (done.start, done.end) == (0, 25)
    assert insert("It works.", "the bus was late", "start").text == "the bus was late. It works."
    assert insert("it works.", "Was it great?", "start").text == "Was it great? it works."


def test_end_adds_a_full_stop_only_where_the_text_lacks_one() -> None:
    assert insert("A fine film.", CLAUSE, "end").text == "A fine film. The referee was dreadful."
    assert insert("A fine film", CLAUSE, "end").text == "A fine film. The referee was dreadful."
    assert insert('He said "fine."', CLAUSE, "end").text == 'He said "fine." The referee was dreadful.'
    assert insert("Who wrote it ?", "the tram was awful", "end").text == "Who wrote it ? the tram was awful"


def test_middle_prefers_clause_boundaries() -> None:
    assert insert("It is a fine film, and I loved it.", CLAUSE, "middle").text == (
        "It is a fine film, the referee was dreadful, and I loved it.")
    assert insert("Great fun but too long.", CLAUSE, "middle").text == (
        "Great fun, the referee was dreadful, but too long.")
    assert insert("A warm, funny movie; full of heart.", CLAUSE, "middle").text == (
        "A warm, funny movie, the referee was dreadful; full of heart.")
    assert insert("Good. Really good film overall!", CLAUSE, "middle").text == (
        "Good. The referee was dreadful. Really good film overall!")
    # no boundary: the word boundary nearest the middle
    assert insert("one two three four", "I was cold!", "middle").text == "one two, I was cold, three four"


def test_middle_of_a_single_word_goes_to_the_end() -> None:
    done = insert("Wow", CLAUSE, "middle")
    assert done.text == "Wow. The referee was dreadful." and done.position == "end" and done.clause == CLAUSE


def test_inline_form() -> None:
    assert inline_form("The tram was awful.") == "the tram was awful"
    assert inline_form("I loved the tram!") == "I loved the tram"
    assert inline_form("I'm sure the tram was awful?") == "I'm sure the tram was awful"
    assert inline_form("BBC news was dull.") == "BBC news was dull"
    assert inline_form("U.S. state has sagebrush") == "U.S. state has sagebrush"
    assert inline_form("Karl Marx wrote it") == "Karl Marx wrote it"
    assert inline_form("Wow, what a cat!") == "wow, what a cat"


def test_bad_position_and_empty_clause() -> None:
    with pytest.raises(ValueError, match="position"):
        insert("A film, fine.", CLAUSE, "top")
    with pytest.raises(ValueError, match="empty"):
        insert("A film.", "  ", "start")


TEXT = st.lists(st.sampled_from(["film", "good", "bad,", "and", "but", "it;", "--", "though", "Yes.", "no!", "x"]),
                min_size=1, max_size=14).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(["The lawn was lovely.", "Who knew the tram could be so awful?", "what is a cat"]),
       st.sampled_from(POSITIONS))
def test_insert_keeps_words_and_span_on_any_text(text: str, clause: str, position: str) -> None:
    assert_preserved(text, clause, position)


ROWS = [("What is a Mexican hairless ?", "DESC"), ("Who first broke the sound barrier ?", "HUM"),
        ("What is the longest English word ?", "ENTY"), ("How far is it from Denver to Aspen ?", "NUM"),
        ("Who wrote Hamlet ?", "HUM"), ("Where is Aspen ?", "LOC")]


def test_other_class_fragment_is_never_the_same_class() -> None:
    rng = random.Random(0)
    for _ in range(200):
        index = rng.randrange(len(ROWS))
        fragment = other_class_fragment(ROWS, index, rng)
        sources = [(t, label) for t, label in ROWS if f" {fragment} " in f" {t} "]
        assert sources and all(label != ROWS[index][1] for _, label in sources), (fragment, ROWS[index])
        count = len(fragment.split())
        assert 3 <= count <= 8 and fragment.split()[0] != "?" and fragment.split()[-1] != "?"


def test_other_class_fragment_is_seeded_and_fails_without_another_class() -> None:
    assert [other_class_fragment(ROWS, 1, random.Random(5)) for _ in range(3)] == [
        other_class_fragment(ROWS, 1, random.Random(5)) for _ in range(3)]
    with pytest.raises(ValueError, match="another class"):
        other_class_fragment([("a b c d", "X"), ("e f g h", "X")], 0, random.Random(0))


# loading --------------------------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_load_txt_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, "mine.txt", "# my clauses\nThe tram was awful.\n\n  \nThe lawn was lovely.\n"))
    assert pool.texts() == ["The tram was awful.", "The lawn was lovely."] and pool.name == "mine"
    assert pool.entries[0].polarity is None and pool.entries[0].topic == ""


def test_load_jsonl_and_json_pool(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, "p.jsonl", '{"text": "The tram was awful.", "polarity": "negative"}\n\n'
                                                '{"text": "The lawn was lovely.", "topic": "garden"}\n'))
    assert pool.texts("negative") == ["The tram was awful."] and pool.topics == ("garden",)
    body = {"name": "x", "role": "evaluation", "source": "s", "licence": "CC0-1.0", "topics": ["t"],
            "entries": [{"text": "The tram was awful.", "topic": "t", "polarity": "negative", "subject": "tram",
                         "adjective": "awful"}]}
    pool = load_pool(write(tmp_path, "p.json", json.dumps(body)))
    assert (pool.name, pool.role, pool.source, pool.licence, pool.topics) == ("x", "evaluation", "s", "CC0-1.0", ("t",))
    assert pool.entries[0].text == "The tram was awful." and pool.entries[0].polarity == "negative"


@pytest.mark.parametrize(("name", "content", "message", "line"), [
    ("d.txt", "", "distractors: the file is empty", None),
    ("d.txt", "# only a comment\n\n", "distractors: the file has no distractors", None),
    ("d.jsonl", '{"text": "ok"}\n\n{"text": "  "}\n', "distractors line 3: text is empty", 3),
    ("d.jsonl", '{"text": "ok"}\n{"txt": "x"}\n', 'distractors line 2: missing "text"', 2),
    ("d.jsonl", '{"text": "ok"}\n{"text": \n', "distractors line 2: not valid JSON", 2),
    ("d.txt", "ok\n" + "x" * 301 + "\n", "distractors line 2: text is longer than 300 characters", 2),
    ("d.json", '{"entries": [\n{"text": "ok"},\n{"text": }]}', "distractors line 3: not valid JSON", 3),
    ("d.json", '{"entries": [{"text": ""}]}', "distractors: entry 1: text is empty", None),
    ("d.jsonl", '{"text": "ok", "polarity": "meh"}\n', "distractors line 1: polarity must be", 1),
])
def test_load_errors(tmp_path: Path, name: str, content: str, message: str, line: int | None) -> None:
    with pytest.raises(DistractorError) as caught:
        load_pool(write(tmp_path, name, content), source="distractors")
    assert str(caught.value).startswith(message) and caught.value.line == line
    assert caught.value.source == "distractors" and isinstance(caught.value, ValueError)


def test_too_many_entries(tmp_path: Path) -> None:
    with pytest.raises(DistractorError, match="more than 20000"):
        load_pool(write(tmp_path, "big.txt", "The tram was awful.\n" * (MAX_ENTRIES + 1)))
    assert len(load_pool(write(tmp_path, "ok.txt", "The tram was awful.\n" * MAX_ENTRIES)).entries) == MAX_ENTRIES


def test_errors_name_the_file_by_default(tmp_path: Path) -> None:
    with pytest.raises(DistractorError, match=r"^mine\.txt: the file is empty$"):
        load_pool(write(tmp_path, "mine.txt", "\n"))


def test_shipped_pools() -> None:
    training, report = shipped_pool("training"), shipped_pool("report")
    assert training.role == "training" and len(training.entries) >= 400 and len(training.topics) >= 12
    assert report.role == "report" and len(report.entries) >= 150
    assert not set(training.texts()) & set(report.texts())
    assert training.licence and training.source
    with pytest.raises(ValueError):
        shipped_pool("evaluation")  # type: ignore[arg-type]


def test_the_module_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, ssa_core.data.distractors; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
