"""Fail when a tracked file reads or cites a path outside the repository.

A fresh clone must be all the project needs (``make test`` on a clean machine). Caught:

- the shared folder that once sat beside the checkout (its Zoom spec and design notes);
- absolute paths of one particular machine (its work or home folders);
- ``Path(__file__)`` climbing (``.parents[N]``, ``.parent``, ``os.path.dirname``) above
  the repository root from where the file sits;
- Markdown links whose relative target leaves the repository.

Usage: ``python .ci/check_standalone.py [ROOT]`` (ROOT: a git checkout, default this one).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_SHARED = re.compile(r"\.\./shared\b|(?<![\w-])shared/(?:zoom|DESIGN)\b|/ *[\"']shared[\"']")
_MACHINE = re.compile(r"(?<![\w.~/-])/(?:work|home/[\w.-]+|Users/[\w.-]+)/")
_CLIMB = re.compile(
    r"(?<![\w.])Path\(__file__\)(?:\.resolve\(\)|\.absolute\(\))?"
    r"(?P<steps>(?:\.parent(?!s)|\.parents\[\d+\])+)"
)
_STEP = re.compile(r"\.parent(?!s)|\.parents\[(\d+)\]")
_DIRNAME = re.compile(r"(?P<calls>(?:os\.path\.dirname\()+)(?:os\.path\.(?:abspath|realpath)\()?__file__")
_MD_LINK = re.compile(r"\]\((?P<target>\.\./[^)\s#]*)")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}: {self.text.strip()[:160]}"


def tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    return [name for name in listed.stdout.decode("utf-8").split("\0") if name]


def _levels_up(steps: str) -> int:
    """Directories climbed from the file by a chain of ``.parent`` / ``.parents[N]``."""
    return sum(int(n) + 1 if n is not None else 1 for n in (m.group(1) for m in _STEP.finditer(steps)))


def _escapes(relative: str, levels: int) -> bool:
    # A file at a/b/c.py is 3 levels below the root: climbing 3 reaches it, 4 leaves it.
    return levels > len(PurePosixPath(relative).parts)


def _link_escapes(relative: str, target: str) -> bool:
    depth = len(PurePosixPath(relative).parts) - 1  # the Markdown file's folder
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def line_violations(relative: str, line: str) -> Iterator[str]:
    """Why this line of the file at ``relative`` reaches outside the repository."""
    if _SHARED.search(line):
        yield "reads the shared folder beside the repository"
    if _MACHINE.search(line):
        yield "absolute path of one machine"
    for found in _CLIMB.finditer(line):
        if _escapes(relative, _levels_up(found.group("steps"))):
            yield "Path(__file__) climbs above the repository root"
    for found in _DIRNAME.finditer(line):
        if _escapes(relative, found.group("calls").count("dirname(")):
            yield "os.path.dirname(__file__) climbs above the repository root"
    if relative.endswith(".md"):
        for found in _MD_LINK.finditer(line):
            if _link_escapes(relative, found.group("target")):
                yield "link leaves the repository"


def find_violations(root: Path, files: Iterable[str]) -> list[Violation]:
    found: list[Violation] = []
    for relative in files:
        try:
            text = (root / relative).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary, a submodule, or deleted but not yet staged
        for number, line in enumerate(text.splitlines(), start=1):
            found.extend(Violation(relative, number, reason, line) for reason in line_violations(relative, line))
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    violations = find_violations(root, tracked_files(root))
    for violation in violations:
        print(violation, file=sys.stderr)
    if violations:
        print(f"{len(violations)} reference(s) outside the repository: the project must stand alone",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
