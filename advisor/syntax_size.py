"""How large a syntax tree is: the node count of Python's tree, a lower bound of it counted
from the tokens alone, and the limits past which a file is not checked.

libcst and the rules take about 50 µs a syntax node, so a file past MAX_SYNTAX_NODES (hand-
written modules stay well under it) is generated code or inline data and is refused; the
token count refuses the largest of them before Python's parser builds gigabytes of tree.
"""

from __future__ import annotations

from typing import Any

# libcst and the rules take about 50 µs a syntax node: past this a check takes seconds, and a
# file this large (hand-written modules stay well under it) is generated code or inline data.
MAX_SYNTAX_NODES = 100_000


def count_nodes(tree: Any) -> int:
    """`sum(1 for _ in ast.walk(tree))`, in half the time (no generators, fields by class)."""
    import ast

    node_type, fields_of = ast.AST, _FIELDS
    count, stack = 0, [tree]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        count += 1
        cls = type(node)
        fields = fields_of.get(cls)
        if fields is None:
            fields = fields_of[cls] = cls._fields
        for field_name in fields:
            value = getattr(node, field_name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, node_type):
                        push(item)
            elif isinstance(value, node_type):
                push(value)
    return count


_FIELDS: dict[type, tuple[str, ...]] = {}


# A file longer than this (in characters) is first tokenized to see whether it is certainly
# over MAX_SYNTAX_NODES before Python's parser builds its whole tree: a few MB of `-x` or of
# `f()()` make millions of nodes, gigabytes in a worker. Below it a tree stays within a few
# hundred MB whatever the file holds (about two nodes a character at most).
PRECHECK_CHARS = 512 * 1024
_MODE_WORDS = frozenset({"def", "class", "type", "import", "from", "global", "nonlocal", "case"})
_STATEMENT_WORDS = frozenset(
    {
        "def", "class", "if", "elif", "while", "for", "try", "with", "return", "pass",
        "break", "continue", "del", "assert", "raise", "global", "nonlocal", "import",
        "from", "async", "except",
    }
)  # fmt: skip
_EXPRESSION_WORDS = frozenset({"True", "False", "None", "lambda", "await", "yield"})
# Operators each of which is a node of its own: a unary or binary operation, a comparison
# operator, an augmented assignment, `:=`, `...` (a constant), a list or subscript, a dict or
# set (from Python 3.12 also an f-string's replacement field).
_OPERATOR_NODES = frozenset(
    {
        "-", "+", "~", "<", ">", "==", "!=", "<=", ">=", "<<", ">>", "&", "^", "%", "//",
        "|", ":=", "...", "+=", "-=", "*=", "/=", "//=", "%=", "@=", "&=", "|=", "^=",
        ">>=", "<<=", "**=", "[", "{",
    }
)  # fmt: skip


def syntax_nodes_at_least(text: str, limit: int) -> int:
    """A lower bound of the number of nodes `ast.walk` yields for `text`, counted from its
    tokens without building the tree, and given up as soon as it passes `limit`.

    Each counted token stands for a node no other counted token stands for: a number or a
    run of adjacent strings (a constant or f-string; in an f-string token without inner
    quotes, each `{` that is no `{{`: a replacement field, a dict or a set), a name that is
    an expression, an attribute, a parameter, a keyword argument or an alias, an operator
    that is an operation, `[` (a list or a subscript), `{`, the first `:` of a slice, the `(`
    of a call or of `()`, `lambda`, `await`, `yield`, `not` (but `is not`), `True`, `False`,
    `None`, and the keyword that opens a statement. Whatever may not be a node is left out:
    soft keywords, names that are strings in the tree (imported modules, `def` and `class`
    names, `as` targets, `global` names, a class pattern's keywords), type parameters.
    For text that does not parse the count means nothing, and nothing relies on it.
    """
    import io
    import keyword
    import tokenize

    name, number, op = tokenize.NAME, tokenize.NUMBER, tokenize.OP
    string_starts = {tokenize.STRING, getattr(tokenize, "FSTRING_START", -1)}
    string_ends = {tokenize.STRING, getattr(tokenize, "FSTRING_END", -1)}
    ignored = {tokenize.NL, tokenize.COMMENT}
    breaks = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}

    def expression_end(token: tokenize.TokenInfo | None) -> bool:
        if token is None:
            return False
        if token.type == name:
            return token.string not in ("match", "case") and (
                not keyword.iskeyword(token.string) or token.string in ("True", "False", "None")
            )
        return token.type in (number, *string_ends) or token.string in (")", "]", "}")

    count = 1  # the module
    previous: tokenize.TokenInfo | None = None  # in this logical line
    start, mode = True, ""  # at a statement's first token; the statement's first word
    frames: list[list[Any]] = []  # open brackets: [bracket, slices allowed, colon, lambda]
    current: tokenize.TokenInfo | None = None
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    try:
        while count <= limit:
            following = next(tokens, None)
            if following is not None and following.type in ignored:
                continue
            token, current = current, following
            if token is None:
                if following is None:
                    break
                continue
            kind, value = token.type, token.string
            if kind in breaks:
                previous, start, mode, frames = None, True, "", []
                continue
            first, start = start, False
            depth = len(frames)
            if kind == name:
                if first and value in _MODE_WORDS:
                    mode = value
                after = previous.string if previous is not None else ""
                if first and value in _STATEMENT_WORDS or value in _EXPRESSION_WORDS:
                    count += 1
                    if value == "lambda" and frames:
                        frames[-1][3] = True
                elif value == "not":
                    count += after != "is"
                elif keyword.iskeyword(value) or keyword.issoftkeyword(value):
                    pass
                elif mode in ("import", "from"):
                    count += after in ("import", ",", "(")  # an alias
                elif mode in ("global", "nonlocal") or after in ("def", "class", "as", "!"):
                    pass
                elif mode == "case" and (
                    after == "**" or (following is not None and following.string == "=")
                ):
                    pass  # `**rest`, `Point(x=0)`: strings in a pattern
                else:
                    count += 1
            elif kind == number:
                count += 1
            elif kind in string_starts:
                if previous is None or previous.type not in string_ends:
                    count += 1
                count += _replacement_fields(value) if kind == tokenize.STRING else 0
            elif kind == op:
                if value == "(":
                    frames.append(["(", False, False, False])
                    if not (mode == "class" and depth == 0) and (
                        expression_end(previous)
                        or (following is not None and following.string == ")")
                    ):
                        count += 1
                elif value in (")", "]", "}"):
                    if frames:
                        frames.pop()
                elif value == "[":
                    type_parameters = mode in ("def", "class", "type") and depth == 0
                    frames.append(["[", not type_parameters, False, False])
                    count += not type_parameters
                elif value == "{":
                    frames.append(["{", False, False, False])
                    count += 1
                elif value == ":":
                    if frames and frames[-1][1] and not frames[-1][2] and not frames[-1][3]:
                        frames[-1][2] = True
                        count += 1  # a slice
                elif value == ",":
                    if frames:
                        frames[-1][2] = frames[-1][3] = False
                elif value == ";":
                    if depth == 0:
                        start, mode = True, ""
                elif value == "|":
                    count += mode != "case"
                elif value in _OPERATOR_NODES:
                    count += 1
            previous = token
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return count


def _replacement_fields(token: str) -> int:
    """Before Python 3.12 an f-string is one token: its `{` that are no `{{`, when no quote
    inside it could hide a `{` in a string of its own."""
    quote = min((i for i in (token.find("'"), token.find('"')) if i >= 0), default=-1)
    if quote < 0 or "f" not in token[:quote].lower():
        return 0
    body = token[quote:].strip("'\"")
    if "'" in body or '"' in body:
        return 0
    return body.replace("{{", "").count("{")
