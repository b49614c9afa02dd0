"""Every ```python block of README.md and docs/*.md runs, in order, one namespace per file.

A ```text block right after a block that prints is that block's output, and must match it
(trailing spaces aside), so that the shown numbers are the library's. Blocks run in a
temporary directory (they may write model files and plots), with matplotlib on Agg.
"""
import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
OPTIONAL = ("onnxruntime",)      # a block importing one runs where it is installed (the test extra)


def _needs_missing_module(code):
    return any(re.search(rf"^import {name}\b", code, re.M)
               and importlib.util.find_spec(name) is None for name in OPTIONAL)


def documents():
    """README.md and docs/*.md next to the tests (in CI: copied beside them by .ci/run)."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def blocks(path):
    """(language, code, line number) of each fenced block."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def test_documents_are_there():
    assert (ROOT / "README.md").is_file(), "README.md must sit next to tests/ (see .ci/run)"
    assert (ROOT / "docs" / "backprop.md").is_file()


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib").use("Agg")
    monkeypatch.chdir(tmp_path)
    found = blocks(path)
    namespace = {"__name__": f"docs_{path.stem}"}
    ran = 0
    for k, (lang, code, line) in enumerate(found):
        if lang != "python" or _needs_missing_module(code):
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{path.name}, the block at line {line} failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
        ran += 1
        if k + 1 < len(found) and found[k + 1][0] == "text":
            shown = [s.rstrip() for s in found[k + 1][1].rstrip().splitlines()]
            printed = [s.rstrip() for s in out.getvalue().rstrip().splitlines()]
            assert printed == shown, (f"{path.name}: the output shown after line {line} is "
                                      "not what the block prints")
    assert ran > 0, f"{path.name} has no python block"


def test_readme_training_example_converges(tmp_path, monkeypatch):
    """The README's Training example, run as a new user would: no ConvergenceWarning."""
    import warnings
    import cbackprop as cb
    monkeypatch.chdir(tmp_path)
    found = [code for lang, code, _ in blocks(ROOT / "README.md") if lang == "python"]
    training = next(code for code in found if "load_digits" in code and "net.fit" in code)
    namespace = {}
    exec(compile(found[0], "README.md:Example", "exec"), namespace)   # its imports
    with warnings.catch_warnings():
        warnings.simplefilter("error", cb.ConvergenceWarning)
        with contextlib.redirect_stderr(io.StringIO()):               # the progress bar
            exec(compile(training, "README.md:Training", "exec"), namespace)
