"""The facts pass: one walk over a module's statements that records scopes, bindings, loops,
functions, classes, imports and the ordered training events of every block."""

from __future__ import annotations

from typing import cast

import libcst as cst

from advisor.facts import events as ev
from advisor.facts.expressions import ExpressionSummarizer, target_names
from advisor.facts.imports import record_import
from advisor.facts.model import (
    Binding,
    Block,
    Branch,
    Call,
    ClassInfo,
    Expr,
    FileFacts,
    Function,
    Loop,
    Scope,
    Stmt,
)

# Context managers and decorators under which autograd records nothing.
NO_GRAD_NAMES = frozenset({"no_grad", "inference_mode"})


def _target_positions(target: cst.BaseExpression, at: tuple[int, ...]):
    """(name, position) for each name of an assignment target: `a, (b, c)` -> b at (1, 0).

    Names after a starred element have no fixed position (None)."""
    if isinstance(target, cst.Name):
        yield target.value, at
    elif isinstance(target, (cst.Tuple, cst.List)):
        fixed = True
        for index, element in enumerate(target.elements):
            if isinstance(element, cst.StarredElement):
                fixed = False
                for name in target_names(element.value):
                    yield name, None
                continue
            for name, position in _target_positions(element.value, (*at, index)):
                yield name, position if fixed and position is not None else None


def _mutated_name(expr: Expr | None) -> str | None:
    """The name an in-place method chain changes: `X` in `X.sub_(m).div_(s)`."""
    changed = False
    while expr is not None and expr.kind == "call":
        call = cast(Call, expr.call)  # a call's summary always has its call
        if call.receiver is None:
            break
        method = call.method or ""
        if not method.endswith("_") or method.startswith("_"):
            return None
        changed = True
        expr = call.receiver
    if changed and expr is not None and expr.kind == "name":
        return expr.text
    return None


def _changed_in_place(target: cst.BaseExpression) -> str | None:
    """The name whose data an assignment target changes: `X` in `X[:, 0] = ...`, `y.shape = s`."""
    if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
        return target.value.value
    if (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.attr.value == "shape"
    ):
        return target.value.value
    return None


def _no_grad_expr(expr: Expr) -> bool | None:
    """True for `torch.no_grad()`, False for `torch.enable_grad()`, None for anything else."""
    text = expr.call.text if expr.call is not None else expr.text
    if not text:
        return None
    last = text.rsplit(".", 1)[-1]
    if last in NO_GRAD_NAMES:
        return True
    if last == "enable_grad":
        return False
    if last == "set_grad_enabled" and expr.call is not None and expr.call.args:
        flag = expr.call.args[0].node
        if isinstance(flag, cst.Name) and flag.value in ("True", "False"):
            return flag.value == "False"
    return None


class _Context:
    """Where the walk is: scope, autograd mode, enclosing loops, function and class."""

    __slots__ = ("scope", "no_grad", "loops", "function", "class_info", "owner")

    def __init__(
        self,
        scope: Scope,
        no_grad: bool,
        loops: tuple[Loop, ...],
        function: Function | None,
        class_info: ClassInfo | None,
        owner: ClassInfo | None = None,
    ) -> None:
        self.scope = scope
        self.no_grad = no_grad
        self.loops = loops
        self.function = function
        self.class_info = class_info  # the class whose body this is
        self.owner = owner  # the class of the method being walked

    def replace(self, **changes) -> _Context:
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return _Context(**values)


class FactsExtractor:
    def __init__(self, module: cst.Module, path: str) -> None:
        self.facts = FileFacts(path=path, module=module)
        self._order = 0
        self._functions: list[Function | None] = [None]
        self._summarizer = ExpressionSummarizer(self._on_yield)

    # -- entry ----------------------------------------------------------------------------
    def run(self) -> FileFacts:
        scope = Scope("module", "<module>", None)
        self.facts.scope = scope
        ctx = _Context(scope, False, (), None, None)
        self._block(self.facts.module.body, ctx, scope.body)
        return self.facts

    # -- helpers --------------------------------------------------------------------------
    def _next(self) -> int:
        self._order += 1
        return self._order

    def _on_yield(self, value: Expr | None) -> None:
        function = self._functions[-1]
        if function is not None:
            function.is_generator = True
            if value is not None:
                function.yields.append(value)

    def _expr(self, node: cst.BaseExpression, ctx: _Context) -> Expr:
        return self._summarizer.summarize(node)

    def _stmt(self, node, op, ctx: _Context, block: Block | None, **fields) -> Stmt:
        """Record a statement and its events; `block` None for a loop header."""
        stmt = Stmt(
            node, op, self._next(), ctx.scope, no_grad=ctx.no_grad, loops=ctx.loops, **fields
        )
        found = []
        for call in stmt.calls:
            if call.text in _DYNAMIC_CALLS or (
                call.method == "run_line_magic"
                and call.args
                and getattr(call.args[0].node, "value", None) in ("'run'", '"run"')
            ):
                self.facts.dynamic_names = True  # exec(), %run: names may come from anywhere
            found.extend(ev.call_events(call))
            key = (call.text or "").rsplit(".", 1)[-1] or call.method  # `Trainer(m).fit()`
            if key:
                self.facts.calls.setdefault(key, []).append((call, stmt))
        if op == "assign":
            found.extend(ev.assign_events(node, stmt.targets, stmt.value))
        elif op == "aug":
            # an aug statement always has its operator and its value
            aug_op, value = cast(str, stmt.aug_op), cast(Expr, stmt.value)
            found.extend(ev.augassign_events(node, stmt.targets[0], aug_op, value))
        elif op == "del":
            found.extend(ev.delete_events(node, stmt.targets))
        stmt.events = tuple(found)
        if block is not None:
            block.items.append(stmt)
        self.facts.stmts.append(stmt)
        return stmt

    def _bind_target(self, target: cst.BaseExpression, kind: str, stmt: Stmt, ctx: _Context, value):
        unpack = kind == "assign" and not isinstance(target, cst.Name)
        for name, position in _target_positions(target, ()):
            ctx.scope.bind(
                Binding(
                    name,
                    "unpack" if unpack else kind,
                    stmt.order,
                    None if unpack else value,
                    stmt,
                    ctx.loops,
                    position,
                    value,
                )
            )

    def _target_text(self, target: cst.BaseExpression, ctx: _Context) -> list[str]:
        if isinstance(target, (cst.Name, cst.Attribute)):
            text = self._expr(target, ctx).text
            return [text] if text else []
        if isinstance(target, cst.Subscript):
            text = self._expr(target.value, ctx).text
            return [text] if text else []
        if isinstance(target, (cst.Tuple, cst.List)):
            texts: list[str] = []
            for element in target.elements:
                texts.extend(self._target_text(element.value, ctx))
            return texts
        if isinstance(target, cst.StarredElement):
            return self._target_text(target.value, ctx)
        return []

    def _record_attributes(self, targets, value: Expr | None, ctx: _Context) -> None:
        info = ctx.owner
        if info is None or value is None:
            return
        for target in targets:
            if target.startswith("self.") and target.count(".") == 1:
                info.attributes.setdefault(target[5:], []).append(value)

    # -- statements -----------------------------------------------------------------------
    def _block(self, statements, ctx: _Context, block: Block) -> None:
        for statement in statements:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    self._small(small, ctx, block)
            else:
                self._compound(statement, ctx, block)

    def _small(self, node: cst.BaseSmallStatement, ctx: _Context, block: Block) -> None:
        if isinstance(node, cst.Expr):
            stmt = self._stmt(node, "expr", ctx, block, value=self._expr(node.value, ctx))
            name = _mutated_name(stmt.value)
            if name is not None:
                ctx.scope.mutate(name, stmt)
        elif isinstance(node, cst.Assign):
            value: Expr | None = self._expr(node.value, ctx)
            targets: list[str] = []
            for target in node.targets:
                targets.extend(self._target_text(target.target, ctx))
            stmt = self._stmt(node, "assign", ctx, block, targets=tuple(targets), value=value)
            for target in node.targets:
                self._bind_target(target.target, "assign", stmt, ctx, value)
                name = _changed_in_place(target.target)
                if name is not None:
                    ctx.scope.mutate(name, stmt)
            self._record_attributes(targets, value, ctx)
        elif isinstance(node, cst.AnnAssign):
            value = self._expr(node.value, ctx) if node.value is not None else None
            targets = self._target_text(node.target, ctx)
            stmt = self._stmt(node, "assign", ctx, block, targets=tuple(targets), value=value)
            if value is not None:
                self._bind_target(node.target, "assign", stmt, ctx, value)
                self._record_attributes(targets, value, ctx)
        elif isinstance(node, cst.AugAssign):
            value = self._expr(node.value, ctx)
            # None where the target has no dotted text (`f().x += 1`)
            aug_targets: list[str | None] = [*self._target_text(node.target, ctx)] or [None]
            op = node.operator.__class__.__name__
            stmt = self._stmt(
                node,
                "aug",
                ctx,
                block,
                targets=tuple(aug_targets),
                value=value,
                aug_op=_AUG_OPS.get(op, op),
            )
            if isinstance(node.target, cst.Name):
                ctx.scope.bind(
                    Binding(node.target.value, "aug", stmt.order, value, stmt, ctx.loops)
                )
            elif (changed := _changed_in_place(node.target)) is not None:
                ctx.scope.mutate(changed, stmt)
        elif isinstance(node, cst.Return):
            value = self._expr(node.value, ctx) if node.value is not None else None
            self._stmt(node, "return", ctx, block, value=value)
            if ctx.function is not None and value is not None:
                ctx.function.returns.append(value)
        elif isinstance(node, cst.Del):
            targets = self._target_text(node.target, ctx)
            self._stmt(node, "del", ctx, block, targets=tuple(targets))
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            stmt = self._stmt(node, "import", ctx, block)
            for name in record_import(node, self.facts):
                ctx.scope.bind(Binding(name, "import", stmt.order, None, stmt, ctx.loops))
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            ctx.scope.globals.update(name.name.value for name in node.names)
        elif isinstance(node, (cst.Raise, cst.Assert)):
            parts = [getattr(node, "exc", None), getattr(node, "test", None)]
            for part in parts:
                if part is not None:
                    self._stmt(node, "other", ctx, block, value=self._expr(part, ctx))

    def _compound(
        self,
        node: cst.BaseStatement | cst.BaseSmallStatement,  # a small one in `class C: pass`
        ctx: _Context,
        block: Block,
    ) -> None:
        if isinstance(node, cst.FunctionDef):
            self._function(node, ctx, block)
        elif isinstance(node, cst.ClassDef):
            self._class(node, ctx, block)
        elif isinstance(node, cst.If):
            self._if(node, ctx, block)
        elif isinstance(node, cst.For):
            self._for(node, ctx, block)
        elif isinstance(node, cst.While):
            self._while(node, ctx, block)
        elif isinstance(node, cst.With):
            self._with(node, ctx, block)
        elif isinstance(node, cst.Try) or type(node).__name__ == "TryStar":
            self._try(node, ctx, block)
        elif isinstance(node, cst.Match):
            test = self._stmt(node, "test", ctx, block, value=self._expr(node.subject, ctx))
            arms = []
            for case in node.cases:
                arm = Block()
                self._block(case.body.body, ctx, arm)
                arms.append(arm)
            block.items.append(Branch(node, tuple(arms), test))

    def _function(self, node: cst.FunctionDef, ctx: _Context, block: Block) -> None:
        decorators = tuple(self._expr(d.decorator, ctx) for d in node.decorators)
        params = node.params
        names = [p.name.value for p in (*params.posonly_params, *params.params)]
        if isinstance(params.star_arg, cst.Param):
            names.append(params.star_arg.name.value)
        names.extend(p.name.value for p in params.kwonly_params)
        if params.star_kwarg is not None:
            names.append(params.star_kwarg.name.value)
        class_name = ctx.class_info.name if ctx.class_info is not None else None
        outer = ctx.function.qualname + ".<locals>." if ctx.function is not None else ""
        qualname = f"{outer}{class_name + '.' if class_name else ''}{node.name.value}"
        scope = Scope("function", node.name.value, ctx.scope)
        function = Function(
            node.name.value,
            qualname,
            node,
            tuple(names),
            scope,
            class_name=class_name,
            decorators=decorators,
            no_grad=any(_no_grad_expr(d) for d in decorators),
        )
        scope.function = function
        order = self._next()
        for name in names:
            scope.bind(Binding(name, "param", order))
        # defaults are evaluated in the enclosing scope
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.default is not None:
                function.defaults[param.name.value] = self._expr(param.default, ctx)
        self.facts.functions[qualname] = function
        if ctx.class_info is not None:
            ctx.class_info.methods[node.name.value] = function
        else:
            ctx.scope.bind(Binding(node.name.value, "def", order))
        self._functions.append(function)
        inner = _Context(scope, function.no_grad, (), function, None, ctx.class_info or ctx.owner)
        if isinstance(node.body, cst.IndentedBlock):
            self._block(node.body.body, inner, scope.body)
        else:
            suite = cast(cst.SimpleStatementSuite, node.body)  # `def f(): return x`
            self._block([cst.SimpleStatementLine(body=suite.body)], inner, scope.body)
        self._functions.pop()

    def _class(self, node: cst.ClassDef, ctx: _Context, block: Block) -> None:
        bases = tuple(self._expr(arg.value, ctx) for arg in node.bases)
        info = ClassInfo(node.name.value, node, bases)
        self.facts.classes[node.name.value] = info
        ctx.scope.bind(Binding(node.name.value, "class", self._next()))
        scope = Scope("class", node.name.value, ctx.scope)
        inner = _Context(scope, False, (), ctx.function, info)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else node.body.body
        for statement in body:
            if isinstance(statement, cst.FunctionDef):
                self._function(statement, inner, scope.body)
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    self._small(small, inner.replace(class_info=None), scope.body)
            else:
                self._compound(statement, inner.replace(class_info=None), scope.body)

    def _if(self, node: cst.If, ctx: _Context, block: Block) -> None:
        test = self._stmt(node, "test", ctx, block, value=self._expr(node.test, ctx))
        body = Block()
        self._block(node.body.body, ctx, body)
        arms = [body]
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            other = Block()
            self._if(orelse, ctx, other)
            arms.append(other)
        elif isinstance(orelse, cst.Else):
            other = Block()
            self._block(orelse.body.body, ctx, other)
            arms.append(other)
        else:
            arms.append(Block())
        block.items.append(Branch(node, tuple(arms), test))

    def _for(self, node: cst.For, ctx: _Context, block: Block) -> None:
        self._loop(node, "for", self._expr(node.iter, ctx), ctx, block)

    def _while(self, node: cst.While, ctx: _Context, block: Block) -> None:
        self._loop(node, "while", self._expr(node.test, ctx), ctx, block)

    def _loop(self, node, kind: str, head: Expr, ctx: _Context, block: Block) -> None:
        """A for or while loop: its header runs every iteration, its body in a new loop level."""
        header = self._stmt(node, "iter", ctx, None, value=head)
        targets = tuple(sorted(target_names(node.target))) if kind == "for" else ()
        loop = Loop(
            node,
            kind,
            header.order,
            0,
            ctx.scope,
            targets,
            head,
            header,
            Block(),
            ctx.no_grad,
            ctx.loops,
        )
        inner = ctx.replace(loops=(*ctx.loops, loop))
        header.loops = inner.loops
        if kind == "for":
            self._bind_target(node.target, "for", header, inner, head)
        self._block(node.body.body, inner, loop.body)
        loop.end_order = self._next()
        block.items.append(loop)
        self.facts.loops.append(loop)
        if node.orelse is not None:
            self._block(node.orelse.body.body, ctx, block)

    def _with(self, node: cst.With, ctx: _Context, block: Block) -> None:
        no_grad = ctx.no_grad
        for item in node.items:
            value = self._expr(item.item, ctx)
            stmt = self._stmt(node, "with", ctx, block, value=value)
            flag = _no_grad_expr(value)
            if flag is not None:
                no_grad = flag
            if item.asname is not None:
                self._bind_target(item.asname.name, "with", stmt, ctx, value)
        self._block(node.body.body, ctx.replace(no_grad=no_grad), block)

    def _try(self, node, ctx: _Context, block: Block) -> None:
        self._block(node.body.body, ctx, block)
        if node.orelse is not None:
            self._block(node.orelse.body.body, ctx, block)
        arms = []
        for handler in node.handlers:
            arm = Block()
            if handler.name is not None:
                ctx.scope.bind(Binding(handler.name.name.value, "with", self._next()))
            self._block(handler.body.body, ctx, arm)
            arms.append(arm)
        if arms:
            arms.append(Block())
            block.items.append(Branch(node, tuple(arms)))
        if node.finalbody is not None:
            self._block(node.finalbody.body.body, ctx, block)


_DYNAMIC_CALLS = frozenset({"exec", "globals", "execfile"})

_AUG_OPS = {
    "AddAssign": "+=",
    "SubtractAssign": "-=",
    "MultiplyAssign": "*=",
    "DivideAssign": "/=",
    "FloorDivideAssign": "//=",
    "ModuloAssign": "%=",
    "PowerAssign": "**=",
    "MatrixMultiplyAssign": "@=",
}
