"""The layout shows the architecture: no function in ml/, gui/ or workers/ over 80 lines.

A longer one must say why, in a comment ``# long: <reason>`` on the line before its ``def``
(above any decorators) or as its first body line.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ml", "gui", "workers")
MAX_LINES = 80
MARK = "# long:"


def long_functions(path: Path, max_lines: int = MAX_LINES) -> list[str]:
    """``"file:line name (n lines)"`` for each unexplained function longer than *max_lines*."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        if length <= max_lines:
            continue
        top = min([node.lineno] + [d.lineno for d in node.decorator_list])
        candidates = [lines[top - 2]] if top >= 2 else []
        # The first body line: any comment between the signature and the first statement.
        candidates += lines[_signature_end(node):node.body[0].lineno]
        if any(line.strip().startswith(MARK) and line.strip()[len(MARK):].strip()
               for line in candidates):
            continue
        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def _signature_end(node: ast.FunctionDef) -> int:
    """The last line of the ``def``'s signature (its arguments and return annotation)."""
    parts = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
             node.args.vararg, node.args.kwarg, node.returns, *node.args.defaults,
             *node.args.kw_defaults]
    return max([node.lineno] + [p.end_lineno for p in parts if p is not None])


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_unexplained_long_function():
    offenders = [hit for path in _sources() for hit in long_functions(path)]
    assert not offenders, ("Split these into named steps, or say why beside the def with "
                           "'# long: <reason>':\n" + "\n".join(offenders))


@pytest.mark.parametrize("marked, found", [
    ("# long: one table of cases\ndef f():\n", False),
    ("def f():\n    # long: one table of cases\n", False),
    ("@staticmethod\n# long: no\ndef f():\n", True),  # the comment must be above the decorator
    ("# long:\ndef f():\n", True),  # a reason is needed
    ("def f():\n", True),
])
def test_the_scan_itself(tmp_path, marked, found):
    path = tmp_path / "mod.py"
    path.write_text(marked + "    x = 1\n" * 85, encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert bool(long_functions(path)) is found
        assert not long_functions(path, max_lines=100)
    finally:
        ROOT = saved
