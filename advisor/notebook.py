"""A Jupyter notebook as one Python program, with a map back to cells.

The code cells are joined in order. IPython syntax that is not Python (line and cell magics,
`!shell` lines, `obj?` help) is rewritten line for line, so every program line is still the
same line of the same cell, and findings can be reported as `cell 3, line 2`:

- `%magic args` and `x = %magic args` become `get_ipython().run_line_magic('magic', 'args')`,
  as IPython itself does, so that names they bind stay bound;
- `!cmd` and `x = !cmd` become `get_ipython().system('cmd')` / `.getoutput('cmd')`;
- `obj?`, `??obj` become `pass`;
- a cell magic (`%%bash`) blanks its whole body, except for the magics whose body is Python
  run in the kernel (`%%capture`, `%%time`, `%%timeit`, ...), which keep it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from advisor.findings import FileError
from advisor.source import split_lines

# Cell magics whose body is Python executed in the notebook's namespace.
PYTHON_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug", "python", "python3"})

_ASSIGNED_MAGIC = re.compile(
    r"^(?P<target>[\w.\[\]'\", ]+?)\s*=\s*(?P<kind>[%!]{1,2})(?P<rest>.*)$"
)
_HELP = re.compile(r"^(\?{1,2}[\w.*]+(\(\))?|%?[\w.*]+(\(\))?\?{1,2})$")
# IPython's automagic: `pip install x` without the `%`. Only words followed by an argument
# that cannot continue a Python expression, so `time = 3` and `run(x)` stay Python.
_AUTOMAGIC = re.compile(
    r"^(pip|conda|mamba|cd|load_ext|matplotlib|autoreload|run|env|who|whos|reset|pdb)"
    r"\s+(?![=(\[.,:+\-*/%<>!&|^@])\S"
)
_NON_PYTHON_LANGUAGES = frozenset({"r", "julia", "scala", "javascript", "bash", "sql", "c++"})


@dataclass
class NotebookProgram:
    """The notebook's code as one program, and where each of its lines came from."""

    text: str
    # line_map[i] = (cell, line in cell) of program line i + 1; both 1-based
    line_map: list[tuple[int, int]] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)  # the original code of each cell

    def locate(self, line: int) -> tuple[int | None, int]:
        """(cell, line within the cell) of a 1-based program line."""
        if 1 <= line <= len(self.line_map):
            return self.line_map[line - 1]
        if self.line_map:  # past the end (an error at end of input): the last line
            cell, last = self.line_map[-1]
            return cell, last + (line - len(self.line_map))
        return None, line


class _Scanner:
    """Just enough tokenizing to know whether a line starts a new statement.

    A `%` or `!` at the start of a line inside a string or an open bracket is not a magic.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None  # the open triple quote, if any
        self.continued = False  # the previous line ended with a backslash

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        self.continued = False
        while i < n:
            if self.quote is not None:
                end = line.find(self.quote, i)
                if end == -1:
                    return
                i = end + 3
                self.quote = None
                continue
            char = line[i]
            if char == "#":
                return
            if char == "\\":
                if not line[i + 1 :].strip("\r\n"):
                    self.continued = True
                    return
                i += 2
                continue
            if char in "\"'":
                if line.startswith(char * 3, i):
                    self.quote = char * 3
                    i += 3
                    continue
                i = self._skip_string(line, i + 1, char)
                continue
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1

    @staticmethod
    def _skip_string(line: str, i: int, quote: str) -> int:
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                return i + 1
            i += 1
        return i


def _magic_call(kind: str, rest: str) -> str:
    """The Python IPython runs for `%name args`, `!cmd` (kind is `%` or `!` or `!!`)."""
    if kind.startswith("!"):
        return f"get_ipython().system({rest.strip()!r})"
    name, _, args = rest.strip().partition(" ")
    return f"get_ipython().run_line_magic({name!r}, {args.strip()!r})"


def _rewrite_line(line: str) -> str:
    """One line at statement start, with IPython syntax turned into Python."""
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    stripped = body.lstrip()
    indent = body[: len(body) - len(stripped)]
    if not stripped or stripped.startswith("#"):
        return line
    if stripped[0] in "%!":
        kind = "!" if stripped[0] == "!" else "%"
        return indent + _magic_call(kind, stripped.lstrip("%!")) + ending
    if _AUTOMAGIC.match(stripped):
        return indent + _magic_call("%", stripped) + ending
    if _HELP.match(stripped.rstrip()):
        return indent + "pass" + ending
    assigned = _ASSIGNED_MAGIC.match(stripped)
    if assigned and assigned.group("kind") in ("%", "!", "!!"):
        rest = assigned.group("rest")
        if assigned.group("kind").startswith("!"):
            call = f"get_ipython().getoutput({rest.strip()!r})"
        else:
            call = _magic_call("%", rest)
        return f"{indent}{assigned.group('target')} = {call}{ending}"
    return line


def _cell_lines(source: object) -> list[str]:
    if isinstance(source, list):
        text = "".join(part for part in source if isinstance(part, str))
    else:
        text = source if isinstance(source, str) else ""
    lines = split_lines(text)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    return lines


def _code_cells(notebook: dict) -> list[object] | None:
    """The sources of the code cells (nbformat 4, or 3 with its worksheets)."""
    cells = notebook.get("cells")
    key = "source"
    if cells is None and isinstance(notebook.get("worksheets"), list):
        cells = [
            c for ws in notebook["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])
        ]
        key = "input"
    if not isinstance(cells, list):
        return None
    return [
        cell.get(key, "")
        for cell in cells
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]


def _language(notebook: dict) -> str:
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        return "python"
    for key, field_name in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field_name), str):
            return section[field_name].lower()
    return "python"


def rewrite_cell(lines: list[str]) -> list[str]:
    """A cell's lines with IPython syntax neutralised; same number of lines."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split()
        name = magic[0] if magic else ""
        out = list(lines)
        call = f"get_ipython().run_cell_magic({name!r}, '', '')\n"
        if name == "capture" and len(magic) > 1 and magic[-1].isidentifier():
            call = f"{magic[-1]} = {call}"  # `%%capture out` binds `out`
        out[first] = call
        if name not in PYTHON_CELL_MAGICS:
            return out[: first + 1] + ["\n"] * (len(lines) - first - 1)
        return out[: first + 1] + rewrite_cell(lines[first + 1 :])
    scanner = _Scanner()
    out = []
    for line in lines:
        out.append(_rewrite_line(line) if scanner.at_statement_start else line)
        scanner.feed(line)
    return out


def notebook_program(data: bytes | str, path: str) -> NotebookProgram | FileError | None:
    """The notebook's code cells as one program; None when there is nothing to check."""
    try:
        notebook = json.loads(data)
    except json.JSONDecodeError as error:
        return FileError(
            path,
            f"not a valid notebook: broken JSON ({error.msg})",
            line=error.lineno,
            column=error.colno,
        )
    except (ValueError, RecursionError) as error:  # undecodable bytes, absurd nesting
        return FileError(path, f"not a valid notebook: {error}")
    if not isinstance(notebook, dict):
        return FileError(path, "not a valid notebook: the JSON document is not an object")
    sources = _code_cells(notebook)
    if sources is None:
        return FileError(path, "not a valid notebook: no `cells` list")
    if _language(notebook) in _NON_PYTHON_LANGUAGES:
        return None
    program = NotebookProgram("")
    out: list[str] = []
    for number, source in enumerate(sources, 1):
        lines = _cell_lines(source)
        program.cells.append([line.rstrip("\r\n") for line in lines])
        out.extend(rewrite_cell(lines))
        program.line_map.extend((number, i) for i in range(1, len(lines) + 1))
    program.text = "".join(out)
    if not program.text.strip():
        return None
    return program
