"""Inputs for fuzzing lr-advisor, as hypothesis strategies (shared by tests/fuzz/ and
benchmarks/fuzz.py).

Each strategy gives a `FuzzInput` (one file's name and bytes) or, for the probe, a
`ProbeCase` (a script and the data files next to it). The kinds:

- `programs`: valid Python from hypothesmith, behind `import torch` so that the pre-filter
  lets it through, alone or appended to a fixture;
- `mutations`: the repo's fixtures with statements deleted, swapped, duplicated or spliced
  in from another fixture, names renamed, numbers made extreme (0, 1e308, nan, 2**63),
  lines truncated, indentation broken;
- `encodings`: random bytes, invalid UTF-8, NUL bytes, BOMs and coding cookies, CRLF/CR line
  endings, odd characters, empty and blank files;
- `notebooks`: fixture notebooks (or fixtures turned into notebooks) with cut JSON, cells
  whose source is not a string, missing keys, a wrong nbformat, outputs only, IPython syntax;
- `probe_cases`: the fixtures that read a CSV, with NaN, inf, 1e308, empty rows, a constant
  column, fewer rows than columns, duplicated rows, or a float16 dtype; and mutated fixtures;
- `LARGE` (not a strategy: each is one fixed input): a 5 MB file, huge literals, 1000+ levels
  of brackets and blocks, 10k notebook cells.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
PRELUDE = "import torch\n"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # lines as Python's tokenizer splits


@dataclass(frozen=True)
class FuzzInput:
    kind: str
    path: str  # the name it is checked under: its suffix (.py, .ipynb) matters
    data: bytes
    note: str = ""  # how it was made

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        shown = self.data if len(self.data) <= 600 else self.data[:600] + b"..."
        return f"FuzzInput({self.kind!r}, {self.path!r}, {self.note!r}, {shown!r})"


@dataclass(frozen=True)
class ProbeCase:
    script: str  # the file name of the script among `files`
    files: dict[str, bytes] = field(hash=False)
    note: str = ""
    data: str | None = None  # also give this file as `--data`
    kind: str = "probe"


def lines_of(text: str) -> list[str]:
    return _LINE.findall(text)


@cache
def fixture_sources() -> tuple[tuple[str, str], ...]:
    """(name, text) of every Python fixture, in a stable order."""
    paths = sorted(FIXTURES.rglob("*.py"))
    return tuple((str(p.relative_to(FIXTURES)), p.read_text(encoding="utf-8")) for p in paths)


@cache
def fixture_notebooks() -> tuple[tuple[str, str], ...]:
    paths = sorted(FIXTURES.rglob("*.ipynb"))
    return tuple((str(p.relative_to(FIXTURES)), p.read_text(encoding="utf-8")) for p in paths)


@cache
def data_fixtures() -> tuple[tuple[Path, tuple[str, ...]], ...]:
    """(script, names of the CSV files it reads that lie next to it) of the probe's fixtures."""
    found = []
    scripts = [
        *sorted(FIXTURES.glob("rules/*/*.py")),
        FIXTURES / "probe/seed000_closes_from_csv.py",
    ]
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        csvs = sorted(
            {
                n
                for n in re.findall(r"[\"']([\w./-]+\.csv)[\"']", text)
                if (script.parent / n).is_file()
            }
        )
        if csvs:
            found.append((script, tuple(csvs)))
    return tuple(found)


def one_of(items: tuple) -> st.SearchStrategy:
    """One of the items, drawn by index (a strategy over the texts would print them all)."""
    return st.integers(0, len(items) - 1).map(items.__getitem__)


# -- valid programs ------------------------------------------------------------------------


def _program(code: str, fixture: tuple[str, str] | None, kind: str) -> FuzzInput:
    if fixture is None:
        text, note = PRELUDE + code, "import torch + generated"
    else:
        name, source = fixture
        text, note = source.rstrip("\n") + "\n" + code, f"{name} + generated"
    return FuzzInput(kind, "program.py", text.encode("utf-8", "surrogatepass"), note)


def programs(kind: str = "grammar") -> st.SearchStrategy[FuzzInput]:
    """hypothesmith's programs (`grammar`: from the grammar, `node`: from libcst's nodes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hypothesmith

    code = hypothesmith.from_grammar() if kind == "grammar" else hypothesmith.from_node()
    where = st.none() | one_of(fixture_sources())
    return st.builds(_program, code, where, st.just(kind))


# -- mutations of the fixtures ---------------------------------------------------------------

# a name that is a keyword, a builtin, one of torch's, or new; keywords break the syntax
_NEW_NAMES = ("x", "model", "loss", "optimizer", "torch", "self", "_", "None", "lambda", "print")


def _statement_blocks(text: str) -> list[list[tuple[int, int]]]:
    """Sibling statements as (first line, end line) 0-based, end exclusive; [] if no parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    blocks = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            spans = []
            for stmt in body:
                decorators = getattr(stmt, "decorator_list", [])
                first = min([stmt.lineno, *(d.lineno for d in decorators)])
                spans.append((first - 1, stmt.end_lineno or first))
            if all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)):
                blocks.append(spans)  # none share a line (`a; b`)
    return blocks


def _pick(draw, items):
    return items[draw(st.integers(0, len(items) - 1))]


def _mutate_statements(draw, text: str, how: str) -> tuple[str, str]:
    blocks = _statement_blocks(text)
    if how == "swap":
        blocks = [b for b in blocks if len(b) > 1]
    if not blocks:
        return _mutate_lines(draw, text, "delete line")
    lines = lines_of(text)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    block = _pick(draw, blocks)
    i = draw(st.integers(0, len(block) - 1))
    start, end = block[i]
    if how == "delete":
        return "".join(lines[:start] + lines[end:]), f"deleted lines {start + 1}-{end}"
    if how == "duplicate":
        return "".join(lines[:end] + lines[start:end] + lines[end:]), f"duplicated {start + 1}"
    j = draw(st.integers(0, len(block) - 1).filter(lambda j: j != i))
    (a, b), (c, d) = sorted([block[i], block[j]])
    swapped = lines[:a] + lines[c:d] + lines[b:c] + lines[a:b] + lines[d:]
    return "".join(swapped), f"swapped lines {a + 1} and {c + 1}"


def _rename(draw, text: str) -> tuple[str, str]:
    names = sorted(set(re.findall(r"\b[A-Za-z_]\w*\b", text)))
    if not names:
        return text, "nothing to rename"
    old = _pick(draw, names)
    new = draw(st.sampled_from(names) | st.sampled_from(_NEW_NAMES))
    count = draw(st.sampled_from((0, 1)))  # 0: every occurrence
    return re.sub(rf"\b{re.escape(old)}\b", new, text, count=count), f"renamed {old} -> {new}"


def _mutate_lines(draw, text: str, how: str) -> tuple[str, str]:
    lines = lines_of(text)
    if not lines:
        return text, "empty"
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    if how == "truncate line":
        cut = draw(st.integers(0, len(body)))
        lines[i] = body[:cut] + ending
        return "".join(lines), f"line {i + 1} cut at {cut}"
    if how == "truncate file":
        cut = draw(st.integers(0, len(text)))
        return text[:cut], f"file cut at {cut}"
    if how == "delete line":
        return "".join(lines[:i] + lines[i + 1 :]), f"deleted line {i + 1}"
    # break the indentation
    stripped = body.lstrip(" \t")
    indent = body[: len(body) - len(stripped)]
    new = draw(st.sampled_from(("", " ", "\t", indent + " ", indent + "\t", indent[:-1], " " * 40)))
    lines[i] = new + stripped + ending
    return "".join(lines), f"line {i + 1} indented {new!r}"


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d*)?(?:e-?\d+)?(?![\w.])")
_EXTREMES = (
    *("0", "0.0", "-0.0", "-1", "1e308", "1e-320", "10**12", "2**63", "10**10**12"),
    *("0x" + "f" * 2000, "float('nan')", "float('inf')", "1j", "None", "True", "'3'"),
)


def _number(draw, text: str) -> tuple[str, str]:
    """One numeric literal (a size, an lr, an epoch count, a data value) made extreme."""
    found = [m for m in _NUMBER.finditer(text) if not _in_comment(text, m.start())]
    if not found:
        return text, "no number"
    match = _pick(draw, found)
    new = draw(st.sampled_from(_EXTREMES))
    changed = text[: match.start()] + new + text[match.end() :]
    return changed, f"{match.group()} -> {new} at {match.start()}"


def _in_comment(text: str, offset: int) -> bool:
    return "#" in text[text.rfind("\n", 0, offset) + 1 : offset]


def _splice(draw, text: str) -> tuple[str, str]:
    """A statement of another fixture, re-indented, before a statement of this one."""
    name, other = draw(one_of(fixture_sources()))
    sources, targets = _statement_blocks(other), _statement_blocks(text)
    if not sources or not targets:
        return text, "nothing to splice"
    start, end = _pick(draw, _pick(draw, sources))
    piece = lines_of(other)[start:end]
    lines = lines_of(text)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    at, _ = _pick(draw, _pick(draw, targets))
    old = piece[0][: len(piece[0]) - len(piece[0].lstrip())] if piece else ""
    new = lines[at][: len(lines[at]) - len(lines[at].lstrip())] if at < len(lines) else ""
    moved = [new + line[len(old) :] if line.startswith(old) else line for line in piece]
    if moved and not moved[-1].endswith(("\n", "\r")):
        moved[-1] += "\n"
    return "".join(lines[:at] + moved + lines[at:]), f"{name}:{start + 1}-{end} at {at + 1}"


MUTATIONS = (
    "delete",
    "swap",
    "duplicate",
    "rename",
    "number",
    "splice",
    "truncate line",
    "truncate file",
    "delete line",
    "indent",
)


@st.composite
def mutations(draw) -> FuzzInput:
    name, text = draw(one_of(fixture_sources()))
    notes = [name]
    for how in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        if how in ("delete", "swap", "duplicate"):
            text, note = _mutate_statements(draw, text, how)
        elif how == "rename":
            text, note = _rename(draw, text)
        elif how == "number":
            text, note = _number(draw, text)
        elif how == "splice":
            text, note = _splice(draw, text)
        else:
            text, note = _mutate_lines(draw, text, how)
        notes.append(note)
    return FuzzInput("mutation", "mutated.py", text.encode("utf-8"), "; ".join(notes))


# -- bytes and encodings -------------------------------------------------------------------

_BAD_UTF8 = (b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf")
_ODD_TEXT = ("\x00", "\x0c", "\x0b", "\r", "\u200b", "\u202e", "\ufeff", "\U0001f525", "\\", "\t")
_COOKIES = ("latin-1", "utf-8", "utf-16", "ascii", "klingon", "utf-8-sig", "cp1252", "euc-jp")


def _insert(data: bytes, position: int, what: bytes) -> bytes:
    position = min(position, len(data))
    return data[:position] + what + data[position:]


@st.composite
def encodings(draw) -> FuzzInput:
    name, text = draw(one_of(fixture_sources()))
    data = text.encode("utf-8")
    how = draw(
        st.sampled_from(
            (
                "random",
                "bad utf-8",
                "nul",
                "odd character",
                "bom",
                "cookie",
                "line endings",
                "utf-16",
                "blank",
            )
        )
    )
    at = draw(st.integers(0, len(data)))
    if how == "random":
        noise = draw(st.binary(max_size=2000))
        data = draw(st.sampled_from((b"", PRELUDE.encode()))) + noise
        note = f"{len(noise)} random bytes"
    elif how == "bad utf-8":
        bad = draw(st.sampled_from(_BAD_UTF8))
        data, note = _insert(data, at, bad), f"{name}: {bad!r} at {at}"
    elif how == "nul":
        data, note = _insert(data, at, b"\x00"), f"{name}: NUL at {at}"
    elif how == "odd character":
        odd = draw(st.sampled_from(_ODD_TEXT))
        data, note = _insert(data, at, odd.encode("utf-8")), f"{name}: {odd!r} at {at}"
    elif how == "bom":
        cookie = draw(st.sampled_from(("", "# -*- coding: latin-1 -*-\n", "# coding: utf-8\n")))
        data, note = b"\xef\xbb\xbf" + cookie.encode() + data, f"{name}: BOM {cookie!r}"
    elif how == "cookie":
        cookie = draw(st.sampled_from(_COOKIES))
        line = draw(st.sampled_from((0, 1)))
        header = ("#!/usr/bin/env python\n" if line else "") + f"# -*- coding: {cookie} -*-\n"
        extra = draw(st.sampled_from(("", "é", "\u20ac", "\U0001f525")))
        data = header.encode() + data + f"x = '{extra}'\n".encode()
        note = f"{name}: coding {cookie} on line {line + 1}, {extra!r}"
    elif how == "line endings":
        style = draw(st.sampled_from(("\r\n", "\r", "mixed", "\r\r\n")))
        parts = lines_of(text)
        if style == "mixed":
            ends = [draw(st.sampled_from(("\n", "\r\n", "\r"))) for _ in parts]
        else:
            ends = [style] * len(parts)
        data = "".join(p.rstrip("\r\n") + e for p, e in zip(parts, ends, strict=True)).encode()
        note = f"{name}: line endings {style!r}"
    elif how == "utf-16":
        bom = draw(st.booleans())
        data = text.encode("utf-16" if bom else "utf-16-le")
        note = f"{name}: utf-16 {'with' if bom else 'without'} BOM"
    else:
        data = draw(
            st.sampled_from((b"", b"\n", b"   \n\t\n", b"# just a comment\n", b"import torch"))
        )
        note = f"blank {data!r}"
    return FuzzInput("encoding", "encoded.py", data, note)


# -- notebooks -----------------------------------------------------------------------------

_NON_STRINGS = (1, None, 2.5, True, {"a": 1}, [1, 2], [["x = 1\n"]], ["x = 1\n", 3, None])
_IPYTHON = (
    "%matplotlib inline\n",
    "%%bash\necho hi\n",
    "%%time\nloss.backward()\n",
    "!pip install torch\n",
    "files = !ls\n",
    "model?\n",
    "??model\n",
    "%%capture out\nx = 1\n",
    "%%\n",
    "%\n",
    "!\n",
    "x = %time\n",
)


def _notebook_of(text: str) -> dict:
    """A fixture as a notebook: one code cell per blank-line-separated chunk."""
    chunks = [c for c in re.split(r"\n\s*\n", text) if c.strip()]
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": lines_of(c + "\n")}
        for c in chunks
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _cell_of(draw, cells: list) -> dict | None:
    dicts = [c for c in cells if isinstance(c, dict)]
    return _pick(draw, dicts) if dicts else None


_NOTEBOOK_DAMAGE = (
    "non-string source",
    "missing key",
    "nbformat",
    "outputs only",
    "cell type",
    "ipython",
    "language",
    "not an object",
    "cells not a list",
    "lone surrogate",
    "nbformat 3",
)


@st.composite
def notebooks(draw) -> FuzzInput:
    if draw(st.booleans()):
        name, raw = draw(one_of(fixture_notebooks()))
        notebook = json.loads(raw)
    else:
        name, text = draw(one_of(fixture_sources()))
        notebook = _notebook_of(text)
    notes = [name]
    document: object = notebook
    for how in draw(st.lists(st.sampled_from(_NOTEBOOK_DAMAGE), max_size=3)):
        cells = notebook.get("cells") if isinstance(notebook, dict) else None
        cells = cells if isinstance(cells, list) else []
        cell = _cell_of(draw, cells)
        if how == "non-string source" and cell is not None:
            cell["source"] = draw(st.sampled_from(_NON_STRINGS))
        elif how == "missing key":
            key = draw(st.sampled_from(("cells", "metadata", "nbformat", "source", "cell_type")))
            target = notebook if key in ("cells", "metadata", "nbformat") else cell
            if isinstance(target, dict):
                target.pop(key, None)
        elif how == "nbformat":
            notebook["nbformat"] = draw(st.sampled_from((3, 5, "4", None, -1, 4.5)))
        elif how == "outputs only":
            for each in cells:
                if isinstance(each, dict):
                    each.pop("source", None)
                    each["outputs"] = [{"output_type": "stream", "text": ["loss 1.0\n"]}]
        elif how == "cell type" and cell is not None:
            cell["cell_type"] = draw(st.sampled_from((None, 1, "raw", "markdown", "CODE", "")))
        elif how == "ipython" and cell is not None:
            magic = draw(st.sampled_from(_IPYTHON))
            source = cell.get("source")
            source = "".join(source) if isinstance(source, list) else str(source or "")
            cell["source"] = magic + source if draw(st.booleans()) else source + magic
        elif how == "language":
            metadata = notebook.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata["language_info"] = draw(
                    st.sampled_from(
                        ({"name": "R"}, {"name": 3}, "python", None, {"name": "PYTHON"})
                    )
                )
        elif how == "not an object":
            document = draw(st.sampled_from(([], "notebook", None, 4, [notebook])))
        elif how == "cells not a list":
            notebook["cells"] = draw(st.sampled_from(({}, "cells", None, 3, {"0": cells})))
        elif how == "lone surrogate" and cell is not None:
            cell["source"] = ["x = '\ud800'\n", "import torch\n"]
        elif how == "nbformat 3":
            notebook = {
                "nbformat": 3,
                "worksheets": [
                    {
                        "cells": [
                            {"cell_type": "code", "input": c.get("source", "")}
                            for c in cells
                            if isinstance(c, dict)
                        ]
                    },
                    "junk",
                ],
            }
            document = notebook
        notes.append(how)
    raw = json.dumps(document, indent=1)
    if draw(st.integers(0, 3)) == 0:
        cut = draw(st.integers(0, len(raw)))
        raw, notes = raw[:cut], [*notes, f"cut at {cut}"]
    data = raw.encode("utf-8", "surrogatepass")
    return FuzzInput("notebook", "notebook.ipynb", data, "; ".join(notes))


# -- the probe: data fixtures with broken numbers ------------------------------------------

_NUMBERS = ("nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "0", "-0", "NaN", "abc", "")
_CSV_DAMAGE = ("number", "empty row", "constant column", "n < p", "duplicated", "ragged", "zeros")
_SCRIPT_DAMAGE = ("float16", "lr", "epochs", "none")


def _damage_csv(draw, text: str) -> tuple[str, str]:
    lines = text.splitlines()
    header = [line for line in lines if not _is_numeric_row(line)]
    rows = [line for line in lines if _is_numeric_row(line)]
    if not rows:
        return text, "no rows"
    how = draw(st.sampled_from(_CSV_DAMAGE))
    width = len(rows[0].split(","))
    if how == "number":
        value = draw(st.sampled_from(_NUMBERS))
        r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, width - 1))
        cells = rows[r].split(",")
        cells[min(c, len(cells) - 1)] = value
        rows[r] = ",".join(cells)
        how = f"{value!r} at row {r}, column {c}"
    elif how == "empty row":
        r = draw(st.integers(0, len(rows)))
        rows.insert(r, draw(st.sampled_from(("", ",".join([""] * width), " "))))
    elif how == "constant column":
        c = draw(st.integers(0, width - 1))
        rows = [",".join("7" if i == c else v for i, v in enumerate(r.split(","))) for r in rows]
        how = f"column {c} constant"
    elif how == "n < p":
        rows = rows[: draw(st.integers(0, max(0, width - 2)))]
        how = f"{len(rows)} rows"
    elif how == "duplicated":
        rows = [rows[0]] * draw(st.integers(1, 3 * len(rows)))
        how = f"{len(rows)} copies of one row"
    elif how == "ragged":
        r = draw(st.integers(0, len(rows) - 1))
        rows[r] = ",".join(rows[r].split(",")[:-1])
    else:
        rows = [",".join(["0"] * width)] * len(rows)
    return "\n".join(header + rows) + "\n", how


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
    except ValueError:
        return False
    return True


def _damage_script(draw, text: str) -> tuple[str, str]:
    how = draw(st.sampled_from(_SCRIPT_DAMAGE))
    if how == "float16":
        changed = text.replace("float32", "float16")
        if changed == text:
            changed = re.sub(r"(loadtxt\([^)]*)\)", r"\1, dtype=np.float16)", text, count=1)
        return changed, "float16"
    if how == "lr":
        value = draw(
            st.sampled_from(("1e308", "0", "float('nan')", "float('inf')", "-1", "1e-320"))
        )
        code = re.compile(r"^(?!\s*#)(.*?\blr=)[^,)\n]+", re.M)  # not in comments
        return code.sub(rf"\g<1>{value}", text), f"lr={value}"
    if how == "epochs":
        value = draw(st.sampled_from(("0", "1", "10**12", "-5")))
        return re.sub(r"range\(\s*\d+\s*\)", f"range({value})", text, count=1), f"range({value})"
    return text, "script as is"


def probe_cases() -> st.SearchStrategy[ProbeCase]:
    """A data fixture with damaged numbers, or any mutated fixture (most hold their data as
    literals: the probe replays them, with an lr of 1e308 or 10**12 epochs)."""
    return _damaged_data() | mutations().map(_as_probe_case)


def _as_probe_case(item: FuzzInput) -> ProbeCase:
    return ProbeCase("mutated.py", {"mutated.py": item.data}, item.note)


@st.composite
def _damaged_data(draw) -> ProbeCase:
    script, csvs = draw(one_of(data_fixtures()))
    files = {name: (script.parent / name).read_bytes() for name in csvs}
    notes = [str(script.relative_to(FIXTURES))]
    for name in csvs:
        for _ in range(draw(st.integers(1, 2))):
            damaged, how = _damage_csv(draw, files[name].decode("utf-8"))
            files[name] = damaged.encode("utf-8")
            notes.append(f"{name}: {how}")
    text, how = _damage_script(draw, script.read_text(encoding="utf-8"))
    files[script.name] = text.encode("utf-8")
    notes.append(how)
    data = csvs[0] if draw(st.integers(0, 3)) == 0 else None  # also as --data
    if data is not None:
        notes.append(f"--data {data}")
    return ProbeCase(script.name, files, "; ".join(notes), data)


# -- large and deep inputs, one each ----------------------------------------------------------


def _five_megabytes() -> bytes:
    block = (FIXTURES / "demo" / "train_buggy.py").read_bytes()
    limit = 5 * 1024 * 1024
    return (block * (limit // len(block) + 1))[:limit].rsplit(b"\n", 1)[0] + b"\n"


def _nested_ifs(depth: int) -> str:
    body = "".join(" " * i + "if x:\n" for i in range(depth))
    return PRELUDE + body + " " * depth + "loss.backward()\n"


def _nested_defs(depth: int) -> str:
    body = "".join(" " * i + f"def f{i}():\n" for i in range(depth))
    return PRELUDE + body + " " * depth + "return torch.zeros(1)\n"


def _training(data_expression: str) -> str:
    return (
        f"{PRELUDE}X = torch.tensor({data_expression}).reshape(-1, 1)\ny = 2 * X\n"
        "model = torch.nn.Linear(1, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(10):\n"
        "    loss = torch.nn.functional.mse_loss(model(X), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )


def _many_cells(count: int) -> bytes:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["x = torch.zeros(3)\n"]}
    first = {**cell, "source": ["import torch\n"]}
    return json.dumps({"cells": [first] + [cell] * count, "metadata": {}, "nbformat": 4}).encode()


def _list(count: int) -> str:
    return "[" + ", ".join(str(i % 997) for i in range(count)) + "]"


def _assigned(expression: str) -> bytes:
    return f"{PRELUDE}x = {expression}\n".encode()


def _rebound(times: int) -> bytes:
    model = "model = torch.nn.Linear(1, 1)\n"
    text = _training("[1.0, 2.0]").replace(model, model + "model = model.to('cpu')\n" * times)
    return text.encode()


# name -> (file name, a function making the bytes); each is checked once
LARGE: dict[str, tuple[str, Callable[[], bytes]]] = {
    "5 MB of training code": ("big.py", _five_megabytes),
    "5 MB + 1 byte": ("bigger.py", lambda: _five_megabytes().ljust(5 * 1024 * 1024 + 1, b"#")),
    "list of 200k numbers": ("data.py", lambda: _assigned(_list(200_000))),
    "200k numbers in the training data": ("train.py", lambda: _training(_list(200_000)).encode()),
    "20k numbers in the training data": ("train.py", lambda: _training(_list(20_000)).encode()),
    "1e6-character string": ("s.py", lambda: _assigned(f"'{'a' * 10**6}'")),
    "1e6-character line": ("line.py", lambda: _assigned("+".join(["1"] * 333_333))),
    "100k-digit integer": ("digits.py", lambda: _assigned("7" * 100_000)),
    "4301-digit learning rate": (
        "lr.py",
        lambda: _training("[1.0]").replace("0.1", "9" * 4301).encode(),
    ),
    "1000 levels of parentheses": ("p.py", lambda: _assigned("(" * 1000 + "1" + ")" * 1000)),
    "199 levels of parentheses": ("p.py", lambda: _assigned("(" * 199 + "1" + ")" * 199)),
    "1000 levels of brackets": ("b.py", lambda: _assigned("[" * 1000 + "]" * 1000)),
    "1000 nested calls": ("c.py", lambda: _assigned("f(" * 1000 + ")" * 1000)),
    "1000 unary minus": ("u.py", lambda: _assigned("-" * 1000 + "1")),
    "1000 chained comparisons": ("cmp.py", lambda: _assigned(" < ".join(["a"] * 1000))),
    "1000 nested lambdas": ("lam.py", lambda: _assigned("lambda: " * 1000 + "1")),
    "1000 nested if blocks": ("ifs.py", lambda: _nested_ifs(1000).encode()),
    "99 nested if blocks": ("ifs.py", lambda: _nested_ifs(99).encode()),
    "99 nested functions": ("defs.py", lambda: _nested_defs(99).encode()),
    "100k lines of pass": ("pass.py", lambda: (PRELUDE + "pass\n" * 100_000).encode()),
    "model re-bound 2000 times": ("rebind.py", lambda: _rebound(2000)),
    "10k notebook cells": ("cells.ipynb", lambda: _many_cells(10_000)),
    "JSON nested 100k deep": ("deep.ipynb", lambda: b"[" * 100_000 + b"]" * 100_000),
}
