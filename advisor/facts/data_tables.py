"""What the data interpreter (`advisor.facts.data`) knows of torch, numpy, pandas and sklearn
by name: the makers of arrays, the methods and functions that keep or change a shape, the
random draws, the scalers, normalising layers and file loaders. Constant tables only."""

from __future__ import annotations

ARRAY_MAKERS = frozenset(
    {
        "numpy.array",
        "numpy.asarray",
        "numpy.asanyarray",
        "numpy.ascontiguousarray",
        "torch.tensor",
        "torch.as_tensor",
        "torch.from_numpy",
        "torch.Tensor",
        "torch.FloatTensor",
        "torch.DoubleTensor",
        "torch.autograd.Variable",
        "torch.nn.Parameter",
        "torch.nn.parameter.Parameter",
    }
)
# Methods that keep the numbers and the shape (some change the dtype).
SAME_VALUE_METHODS = frozenset(
    {
        "float",
        "double",
        "half",
        "astype",
        "to",
        "cpu",
        "cuda",
        "clone",
        "detach",
        "numpy",
        "copy",
        "contiguous",
        "type",
        "to_numpy",
        "requires_grad_",
    }
)
SHAPE_METHODS = frozenset(
    {
        "reshape",
        "view",
        "unsqueeze",
        "squeeze",
        "flatten",
        "ravel",
        "t",
        "transpose",
        "view_as",
        "reshape_as",
        "expand_as",
    }
)
ARITHMETIC_METHODS = {"add": "+", "sub": "-", "subtract": "-", "mul": "*", "multiply": "*"}
ARITHMETIC_METHODS |= {"div": "/", "divide": "/", "true_divide": "/", "pow": "**"}
# Functions applied to each element: the shape stays; numpy has the same function for some.
ELEMENTWISE_FUNCTIONS = frozenset(
    {
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "gelu",
        "silu",
        "elu",
        "selu",
        "celu",
        "leaky_relu",
        "softplus",
        "mish",
        "hardtanh",
        "dropout",
        "exp",
        "log",
        "log1p",
        "abs",
        "sqrt",
        "sin",
        "cos",
        "square",
    }
)
NUMPY_ELEMENTWISE = frozenset(
    {"tanh", "exp", "log", "log1p", "abs", "sqrt", "sin", "cos", "square"}
)
LIKE_MAKERS = frozenset({"zeros_like", "ones_like", "full_like", "rand_like", "randn_like"})
RANDOM_DRAWS = frozenset({"randn", "rand", "normal", "uniform", "standard_normal", "random"})
RANDOM_GENERATORS = frozenset(
    {"numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator"}
)
SAME_VALUE_ATTRIBUTES = frozenset({"values", "data", "array"})
REDUCTIONS = frozenset({"mean", "std", "var", "sum", "max", "min", "median", "norm"})
SCALERS = frozenset({"StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler"})
NORMALIZING_LAYERS = frozenset(
    {"BatchNorm1d", "LayerNorm", "InstanceNorm1d", "GroupNorm", "LazyBatchNorm1d"}
)
SHAPE_KEEPING_LAYERS = frozenset({"Identity", "Dropout", "AlphaDropout"})
LOADERS = frozenset(
    {
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.load",
        "pandas.read_csv",
        "pandas.read_table",
    }
)
# Python's binary operators (libcst's names) as the symbols the arithmetic uses
OPERATOR_SYMBOLS = {
    "Add": "+",
    "Subtract": "-",
    "Multiply": "*",
    "Divide": "/",
    "Power": "**",
    "MatrixMultiply": "@",
    "FloorDivide": "//",
}
