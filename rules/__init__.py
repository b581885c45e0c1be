"""The rule catalogue: one module a rule, registered here in id order."""

from __future__ import annotations

from advisor.rule import Rule
from advisor.rules import (
    accumulated_loss_tensor,
    discarded_tensor_result,
    exhausted_iterator,
    huge_learning_rate,
    loss_argument_order,
    loss_shape_broadcast,
    missing_zero_grad,
    not_converged,
    reused_layer,
    step_changes_nothing,
    tiny_learning_rate,
    unscaled_features,
    update_outside_no_grad,
    wrong_model_variable,
    zero_grad_before_step,
)

ALL_RULES: tuple[Rule, ...] = tuple(
    sorted(
        (
            missing_zero_grad.RULE,
            zero_grad_before_step.RULE,
            update_outside_no_grad.RULE,
            accumulated_loss_tensor.RULE,
            exhausted_iterator.RULE,
            wrong_model_variable.RULE,
            loss_argument_order.RULE,
            reused_layer.RULE,
            discarded_tensor_result.RULE,
            loss_shape_broadcast.RULE,
            unscaled_features.RULE,
            tiny_learning_rate.RULE,
            huge_learning_rate.RULE,
            not_converged.RULE,
            step_changes_nothing.RULE,
        ),
        key=lambda rule: rule.id,
    )
)
BY_ID = {rule.id: rule for rule in ALL_RULES}
BY_NAME = {rule.name: rule for rule in ALL_RULES}


def find_rule(key: str) -> Rule | None:
    """A rule by id (any case) or name."""
    return BY_ID.get(key.upper()) or BY_NAME.get(key.lower())
