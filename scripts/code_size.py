"""List functions longer than 80 lines of code and files longer than 600 lines.

Lines of code leave out blank lines, comment lines and the docstring; a function's count
includes its nested functions. Files count every line.

Usage::

    python scripts/code_size.py [PATH ...]     # default: src
    python scripts/code_size.py --function-loc 80 --file-lines 600 src

Exits 1 when anything is over a limit, so it can run in CI.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def _docstring_lines(node: ast.AST) -> set[int]:
    body = getattr(node, "body", None)
    if not body:
        return set()
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def function_loc(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """Lines of code of a function: no blank, comment-only or docstring lines."""
    skip = _docstring_lines(node)
    count = 0
    for number in range(node.lineno, node.end_lineno + 1):
        text = lines[number - 1].strip()
        if text and not text.startswith("#") and number not in skip:
            count += 1
    return count


def report(paths: list[Path], max_loc: int, max_lines: int) -> list[str]:
    """One line per function over ``max_loc`` lines of code and per file over ``max_lines``."""
    found = []
    for path in sorted(
        p for root in paths for p in (root.rglob("*.py") if root.is_dir() else [root])
    ):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > max_lines:
            found.append(f"{path}: file of {len(lines)} lines (> {max_lines})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                loc = function_loc(node, lines)
                if loc > max_loc:
                    found.append(f"{path}:{node.lineno}: {node.name} has {loc} lines of code")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("src")])
    parser.add_argument("--function-loc", type=int, default=80)
    parser.add_argument("--file-lines", type=int, default=600)
    args = parser.parse_args(argv)
    found = report(args.paths, args.function_loc, args.file_lines)
    print("\n".join(found) if found else "nothing over the limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
