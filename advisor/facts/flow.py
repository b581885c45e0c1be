"""Training events in execution order, following calls into functions of the same file.

`occurrences(block)` lays out what one run through a block does: every event with the branch
arms it depends on, the loops it sits in, whether autograd is off around it, and the call
chain that reached it. Rules ask ordering questions of this sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from advisor.facts.model import Block, Branch, Event, EventKind, FileFacts, Function, Loop, Stmt
from advisor.facts.values import find_function

_MAX_CALL_DEPTH = 4


@dataclass(frozen=True)
class Occurrence:
    event: Event
    stmt: Stmt  # the statement of the walked block that leads to the event (a call site)
    origin: Stmt  # the statement where the event is written
    index: int  # position in the sequence
    path: tuple[tuple[int, int], ...]  # (branch id, arm) choices the event depends on
    loops: tuple[Loop, ...]  # loops entered below the walked block, outermost first
    no_grad: bool  # autograd is off here (a with-block, a decorator, or at the call site)
    via: tuple[Stmt, ...] = ()  # call sites crossed, outermost first

    @property
    def kind(self) -> EventKind:
        return self.event.kind

    def always_with(self, other: Occurrence) -> bool:
        """This event runs whenever `other` runs (its path is a prefix of the other's)."""
        return other.path[: len(self.path)] == self.path

    def compatible(self, other: Occurrence) -> bool:
        """Both can run in the same pass: no branch where they take different arms."""
        arms = dict(self.path)
        return all(arms.get(branch, arm) == arm for branch, arm in other.path)


class _Walker:
    def __init__(self, facts: FileFacts, transparent_loops: bool) -> None:
        self.facts = facts
        self.transparent_loops = transparent_loops
        self.out: list[Occurrence] = []

    def block(self, block: Block, path, loops, no_grad, via, stack, top: Stmt | None) -> None:
        for item in block.items:
            if isinstance(item, Stmt):
                self.stmt(item, path, loops, no_grad, via, stack, top or item)
            elif isinstance(item, Loop):
                inner_path = path
                if not (self.transparent_loops and over_parameters(item)):
                    inner_path = (*path, (id(item), 0))
                header_top = top or item.header
                self.stmt(item.header, path, (*loops, item), no_grad, via, stack, header_top)
                self.block(item.body, inner_path, (*loops, item), no_grad, via, stack, top)
            elif isinstance(item, Branch):
                if item.test is not None:
                    self.stmt(item.test, path, loops, no_grad, via, stack, top or item.test)
                for arm_index, arm in enumerate(item.arms):
                    self.block(arm, (*path, (id(item), arm_index)), loops, no_grad, via, stack, top)

    def stmt(self, stmt: Stmt, path, loops, no_grad, via, stack, top: Stmt) -> None:
        quiet = no_grad or stmt.no_grad
        by_call = {id(event.call): event for event in stmt.events if event.call is not None}
        for call in stmt.calls:
            event = by_call.get(id(call))
            local = find_function(self.facts, call.text, stmt.scope)
            if event is not None and not (local is not None and event.kind is EventKind.STEP):
                # a `.step()` of a class of this file is entered below, not an optimizer step
                self.emit(event, stmt, top, path, loops, quiet, via)
            callees = [local]
            if event is not None and event.kind is EventKind.STEP:
                # opt.step(closure): the closure runs inside the step
                callees += [find_function(self.facts, arg.text, stmt.scope) for arg in call.args]
            for callee in callees:
                if callee is not None and not callee.is_generator:
                    self.enter(callee, stmt, top, path, loops, quiet, via, stack)
        for event in stmt.events:
            if event.call is None:
                self.emit(event, stmt, top, path, loops, quiet, via)

    def enter(self, function: Function, stmt, top, path, loops, no_grad, via, stack) -> None:
        if function in stack or len(stack) >= _MAX_CALL_DEPTH:
            return
        self.block(
            function.scope.body,
            path,
            loops,
            no_grad or function.no_grad,
            (*via, stmt),
            (*stack, function),
            top,
        )

    def emit(self, event, origin, top, path, loops, no_grad, via) -> None:
        self.out.append(Occurrence(event, top, origin, len(self.out), path, loops, no_grad, via))


def over_parameters(loop: Loop) -> bool:
    """`for p in params`, `for p in [w, b]`, `for p in model.parameters()`: once per tensor."""
    iterable = loop.iter
    if loop.kind != "for" or iterable is None:
        return False
    if iterable.kind in ("list", "tuple"):
        return True
    if iterable.call is not None and iterable.call.method in ("parameters", "values"):
        return True
    return iterable.kind == "name" and "param" in (iterable.text or "").lower()


def occurrences(
    facts: FileFacts,
    block: Block,
    *,
    no_grad: bool = False,
    transparent_parameter_loops: bool = False,
    stack: tuple[Function, ...] = (),
) -> list[Occurrence]:
    """The events of one pass through `block`, calls expanded, in execution order."""
    walker = _Walker(facts, transparent_parameter_loops)
    walker.block(block, (), (), no_grad, (), stack, None)
    return walker.out


def loop_occurrences(facts: FileFacts, loop: Loop, **options) -> list[Occurrence]:
    """The events of one iteration of `loop` (its header included)."""
    function = loop.scope.function
    stack = (function,) if function is not None else ()
    walker = _Walker(facts, options.get("transparent_parameter_loops", False))
    walker.stmt(
        loop.header,
        (),
        (),
        loop.no_grad or (function.no_grad if function else False),
        (),
        stack,
        loop.header,
    )
    walker.block(
        loop.body,
        (),
        (),
        loop.no_grad or (function.no_grad if function else False),
        (),
        stack,
        None,
    )
    return walker.out


def iter_occurrences(occurrences_: list[Occurrence], kind: EventKind) -> Iterator[Occurrence]:
    return (occurrence for occurrence in occurrences_ if occurrence.kind is kind)
