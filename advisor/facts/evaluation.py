"""Where the data interpreter evaluates an expression, and how its helpers ask it for more.

`advisor.facts.data` is the interpreter; the helpers it calls for factories, random draws
(`advisor.facts.makers`) and for indexing, reshaping and reductions (`advisor.facts.shaping`)
evaluate their operands through a `Reader`, so that they need not import it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, cast

from advisor.facts.arrays import Abstract
from advisor.facts.model import NOTHING, Expr, FileFacts, Scope


class Reader(Protocol):
    """The data interpreter as its helpers see it, for one file."""

    @property
    def facts(self) -> FileFacts:
        """The file read (a read-only attribute: the interpreter is a frozen dataclass)."""
        ...

    def data(self, expr: Expr | None, ctx: Context) -> Abstract | None:
        """The abstract value of an expression (Array, Prediction, Items, Loader) or None."""
        ...

    def number(self, expr: Expr | None, ctx: Context) -> object:
        """A constant (a size, a scale, a string); NOTHING if unknown."""
        ...


@dataclass(eq=False)
class DataCache:
    """The data interpreter's answers for one file (`facts.derived.of(DataCache)`)."""

    # evaluate() without arguments being followed: by expression, scope and statement order
    values: dict[tuple[Expr, Scope, int | None], Abstract | None] = field(default_factory=dict)
    # one seed per random draw: by the draw and the arguments of the calls that reach it
    draw_seeds: dict[tuple[Expr, tuple[Expr | None, ...]], int] = field(default_factory=dict)


@dataclass
class Argument:
    """A parameter bound at a call being followed: evaluated on demand in the caller's context."""

    expr: Expr | None
    ctx: Context | None
    value: object = NOTHING

    def get(self, read: Reader) -> object:
        if self.value is NOTHING:
            # an argument without a context is made with its value (`Argument(None, None, data)`)
            ctx = cast(Context, self.ctx)
            self.value = read.data(self.expr, ctx) if self.expr is not None else None
        return self.value


@dataclass(frozen=True)
class Context:
    """Where an expression is evaluated: its scope, the arguments of the calls being followed,
    the statement it runs at, and how deep the evaluation has gone."""

    scope: Scope
    env: dict = field(default_factory=dict, hash=False)  # parameter name -> Argument
    before: int | None = None  # statement order the expression runs at; None: after everything
    depth: int = 0

    def deeper(self, **changes) -> Context:
        return replace(self, depth=self.depth + 1, **changes)
