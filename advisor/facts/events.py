"""Recognise the training events of one statement: backward, zeroing, step, update, accumulate."""

from __future__ import annotations

import libcst as cst

from advisor.facts.model import Call, Event, EventKind, Expr
from advisor.torchapi import CLEARING_METHODS, UPDATE_METHODS


def _strip_grad(text: str | None) -> str | None:
    """`w.grad` -> `w`, `p.grad.data` -> `p`; None when the text is not a gradient."""
    if not text:
        return None
    for suffix in (".grad.data", ".grad"):
        if text.endswith(suffix):
            return text[: -len(suffix)]
    return None


def _is_zero_value(expr: Expr | None) -> bool:
    """None, 0, `torch.zeros_like(w)`, `torch.zeros(...)`."""
    if expr is None:
        return False
    node = expr.node
    if isinstance(node, cst.Name) and node.value == "None":
        return True
    if isinstance(node, cst.Integer):
        return int(node.value.replace("_", ""), 0) == 0
    if isinstance(node, cst.Float):
        return float(node.value.replace("_", "")) == 0.0
    if expr.call is not None and expr.call.text:
        return expr.call.text.rsplit(".", 1)[-1] in ("zeros_like", "zeros")
    return False


def call_events(call: Call) -> list[Event]:
    method = call.method
    if method is None:
        text = call.text or ""
        if text.endswith("autograd.backward") and call.args:
            return [
                Event(
                    EventKind.BACKWARD, call.node, call.args[0].text, value=call.args[0], call=call
                )
            ]
        return []
    receiver = call.receiver
    receiver_text = receiver.text if receiver is not None else None
    if method == "backward":
        return [Event(EventKind.BACKWARD, call.node, receiver_text, value=receiver, call=call)]
    if method == "zero_grad":
        return [Event(EventKind.ZERO, call.node, receiver_text, how="zero_grad", call=call)]
    if method == "step":
        return [Event(EventKind.STEP, call.node, receiver_text, call=call)]
    grad_owner = _strip_grad(receiver_text)
    if grad_owner is not None:
        if method in CLEARING_METHODS or (
            method in ("fill_", "mul_") and call.args and _is_zero_value(call.args[0])
        ):
            return [Event(EventKind.ZERO, call.node, grad_owner, how="tensor", call=call)]
        return []
    if method in UPDATE_METHODS and receiver_text and any(a.grad_of for a in call.args):
        how = "data" if receiver_text.endswith(".data") else "method"
        target = receiver_text[: -len(".data")] if how == "data" else receiver_text
        return [Event(EventKind.UPDATE, call.node, target, how=how, value=call.args[0], call=call)]
    if method == "append" and receiver_text and call.args:
        return [
            Event(EventKind.ACCUMULATE, call.node, receiver_text, how="append", value=call.args[0])
        ]
    return []


def assign_events(node: cst.CSTNode, targets: tuple[str, ...], value: Expr | None) -> list[Event]:
    """Events of `target = value`."""
    events: list[Event] = []
    for target in targets:
        grad_owner = _strip_grad(target)
        if grad_owner is not None:
            zero = _is_zero_value(value)
            events.append(
                Event(EventKind.ZERO, node, grad_owner, how="assign", value=value, clears=zero)
            )
        elif value is not None and value.grad_of:
            if target.endswith(".data"):
                owner = target[: -len(".data")]
                events.append(Event(EventKind.UPDATE, node, owner, how="data", value=value))
            elif "." not in target and target in value.grad_of:
                events.append(Event(EventKind.UPDATE, node, target, how="rebind", value=value))
        elif (
            value is not None
            and "." not in target
            and target in value.live
            and value.kind == "binop"
        ):
            events.append(Event(EventKind.ACCUMULATE, node, target, how="rebind", value=value))
    return events


def augassign_events(node: cst.AugAssign, target: str | None, op: str, value: Expr) -> list[Event]:
    if target is None:
        return []
    grad_owner = _strip_grad(target)
    if grad_owner is not None:
        if op == "*=" and _is_zero_value(value):
            return [Event(EventKind.ZERO, node, grad_owner, how="tensor")]
        return []
    if value.grad_of and op in ("-=", "+="):
        if target.endswith(".data"):
            return [Event(EventKind.UPDATE, node, target[: -len(".data")], how="data", value=value)]
        return [Event(EventKind.UPDATE, node, target, how="inplace", value=value)]
    if op in ("+=", "-="):
        return [Event(EventKind.ACCUMULATE, node, target, how="aug", value=value)]
    return []


def delete_events(node: cst.CSTNode, targets: tuple[str, ...]) -> list[Event]:
    return [
        Event(EventKind.ZERO, node, owner, how="none")
        for owner in map(_strip_grad, targets)
        if owner is not None
    ]
