"""Test-only rules for the runner, reporters and CLI tests: they look for nodes in
`facts.module` themselves (rules proper only query the facts), so these tests do not depend
on what the real rules decide."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from advisor.findings import LIKELY, Diagnostic, Fix
from advisor.rule import ERROR, WARNING, Rule

BACKWARD_CALL = m.Call(func=m.Attribute(attr=m.Name("backward")))
STEP_CALL = m.Call(func=m.Attribute(attr=m.Name("step")))


def _rule(rule_id: str, name: str, check, severity: str = ERROR) -> Rule:
    return Rule(
        id=rule_id,
        name=name,
        summary=f"test rule {name}",
        severity=severity,
        what_it_does="test",
        why_bad="test",
        example="x",
        use_instead="y",
        confirms="nothing",
        references=(),
        flag=(),
        quiet=(),
        check=check,
    )


def check_backward(facts):
    for node in m.findall(facts.module, BACKWARD_CALL):
        yield Diagnostic(node, "a backward() call", fix=Fix("do not call backward()"))


def check_step(facts):
    for node in m.findall(facts.module, STEP_CALL):
        yield Diagnostic(node, "a step() call", confidence=LIKELY)


def check_crash(facts):
    yield from ()
    raise ZeroDivisionError("rule bug")


def check_foreign_node(facts):
    yield Diagnostic(cst.parse_expression("x"), "a node from another tree")


BACKWARD = _rule("LRA901", "every-backward", check_backward)
STEP = _rule("LRA902", "every-step", check_step, severity=WARNING)
CRASH = _rule("LRA990", "always-crashes", check_crash)
FOREIGN = _rule("LRA991", "foreign-node", check_foreign_node)
TOY_RULES = (BACKWARD, STEP)


def check_segfault_on_marker(facts):
    """Dies like a crash in native code would, on files that ask for it."""
    if "KILL_ME" in facts.module.code:
        import faulthandler
        import os
        import signal

        faulthandler.disable()  # pytest's traceback dump would only be noise here
        os.kill(os.getpid(), signal.SIGSEGV)
    yield from check_backward(facts)


SEGFAULT = _rule("LRA992", "dies-on-marker", check_segfault_on_marker)
