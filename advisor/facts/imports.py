"""Import aliases, resolved in the facts pass itself (no QualifiedNameProvider: it costs ten
times the parse)."""

from __future__ import annotations

import libcst as cst

from advisor.facts.model import FileFacts


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def record_import(node: cst.Import | cst.ImportFrom, facts: FileFacts) -> list[str]:
    """Add the names an import binds to `facts.imports`; return them."""
    bound: list[str] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = _dotted(alias.name)
            if alias.asname is not None:
                local = _dotted(alias.asname.name)
                facts.imports[local] = full
            else:
                local = full.split(".", 1)[0]
                facts.imports[local] = local
            bound.append(local)
        return bound
    if node.relative or node.module is None:
        module = None
    else:
        module = _dotted(node.module)
    if isinstance(node.names, cst.ImportStar):
        facts.star_imports = True
        return bound
    for alias in node.names:
        name = _dotted(alias.name)
        local = _dotted(alias.asname.name) if alias.asname is not None else name
        if module is not None:
            facts.imports[local] = f"{module}.{name}"
        bound.append(local)
    return bound
