"""The torch calls the recorder follows, by name: methods, `torch.*` functions and operators
share the same names (`__func__.__name__` as a `TorchFunctionMode` sees it). One place for
these lists, so that what the probe knows of the torch API is kept together."""

from __future__ import annotations

VIEWS = frozenset(
    [
        "view",
        "reshape",
        "squeeze",
        "unsqueeze",
        "flatten",
        "ravel",
        "view_as",
        "reshape_as",
        "contiguous",
        "clone",
        "detach",
        "float",
        "double",
        "half",
        "bfloat16",
        "to",
        "type",
        "type_as",
        "cpu",
        "cuda",
    ]
)
TRANSPOSES = frozenset(["t", "transpose", "permute", "swapaxes", "T.__get__", "mT.__get__"])
MATMULS = frozenset(["matmul", "__matmul__", "mm", "mv", "__rmatmul__"])
ADDS = frozenset(["add", "__add__", "__radd__"])
SUBS = frozenset(["sub", "__sub__", "__rsub__", "subtract"])
MULS = frozenset(["mul", "__mul__", "__rmul__", "multiply"])
DIVS = frozenset(["div", "__truediv__", "true_divide", "divide"])
POWS = frozenset(["pow", "__pow__", "square", "float_power"])
REDUCTIONS = frozenset(["mean", "sum"])
INDEXING = frozenset(["__getitem__", "index_select"])
