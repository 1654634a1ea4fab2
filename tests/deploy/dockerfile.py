"""A small Dockerfile reader for the deployment tests: instructions grouped by build stage."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuations joined


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV KEY=VALUE pairs of this stage (the form the project's Dockerfiles use)."""
        pairs = (pair.partition("=") for args in self.all("ENV") for pair in shlex.split(args))
        return {key: value for key, _, value in pairs}


def logical_lines(text: str) -> list[str]:
    """Lines with comments dropped and backslash continuations joined."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        lines.append(re.sub(r"\s+", " ", current).strip())
        current = ""
    return lines


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the stages."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stages.append(Stage(base=words[0], name=words[2] if len(words) > 2 else None))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return global_args, stages


def arg_defaults(stage: Stage) -> dict[str, str]:
    return dict(args.partition("=")[::2] for args in stage.all("ARG"))


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern decides; `!pattern` lets a path back in."""
    allowed = True
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate, pattern = pattern.startswith("!"), pattern.lstrip("!")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes):
            allowed = negate
    return allowed
