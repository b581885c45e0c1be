"""What lr-advisor knows of the torch and NumPy APIs, as typed tables keyed by qualified name.

Facts and rules read these tables and keep no list of their own: a loss, a tensor method, an
optimizer or a scheduler is recognised by the qualified name its call resolves to
(`torch.nn.functional.mse_loss`, `torch.Tensor.squeeze`, `torch.optim.SGD`), never by the
look of a local name. A name that resolves to nothing here is unknown, and the analysis says
less about it.

Pure data: this module imports nothing of the advisor, so every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Target = Literal["same-shape", "class-indices", "probabilities", "signs", "any"]
Change = Literal["shape", "dtype", "device", "values", "conversion", "graph", "layout", "copy"]
InPlaceRole = Literal["update", "clear", "detach", "releaf"]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# -- losses ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loss:
    """One loss in its two forms: `F.mse_loss(input, target)` and `nn.MSELoss()(input, target)`."""

    functional: str  # qualified: torch.nn.functional.mse_loss
    module: str | None  # qualified: torch.nn.MSELoss (None where torch has no module form)
    kind: str  # the short name facts use: mse, l1, smooth_l1, huber, cross_entropy...
    target: Target  # what the second argument must look like
    arguments: tuple[str, ...] = ("input", "target")  # positional order of the call
    reduction: str = "mean"  # the default `reduction=`
    symmetric: bool = False  # swapping input and target leaves the value unchanged
    elementwise: bool = False  # a regression loss over matching elements (broadcasts)


_F = "torch.nn.functional."
_NN = "torch.nn."
_LOSS_LIST = (
    Loss(_F + "mse_loss", _NN + "MSELoss", "mse", "same-shape", symmetric=True, elementwise=True),
    Loss(_F + "l1_loss", _NN + "L1Loss", "l1", "same-shape", symmetric=True, elementwise=True),
    Loss(
        _F + "smooth_l1_loss",
        _NN + "SmoothL1Loss",
        "smooth_l1",
        "same-shape",
        symmetric=True,
        elementwise=True,
    ),
    Loss(
        _F + "huber_loss",
        _NN + "HuberLoss",
        "huber",
        "same-shape",
        symmetric=True,
        elementwise=True,
    ),
    Loss(_F + "cross_entropy", _NN + "CrossEntropyLoss", "cross_entropy", "class-indices"),
    Loss(_F + "nll_loss", _NN + "NLLLoss", "nll", "class-indices"),
    Loss(_F + "binary_cross_entropy", _NN + "BCELoss", "bce", "probabilities"),
    Loss(
        _F + "binary_cross_entropy_with_logits",
        _NN + "BCEWithLogitsLoss",
        "bce_with_logits",
        "probabilities",
    ),
    Loss(_F + "kl_div", _NN + "KLDivLoss", "kl_div", "probabilities"),
    Loss(_F + "poisson_nll_loss", _NN + "PoissonNLLLoss", "poisson_nll", "same-shape"),
    Loss(
        _F + "gaussian_nll_loss",
        _NN + "GaussianNLLLoss",
        "gaussian_nll",
        "same-shape",
        arguments=("input", "target", "var"),
    ),
    Loss(_F + "soft_margin_loss", _NN + "SoftMarginLoss", "soft_margin", "signs"),
    Loss(
        _F + "margin_ranking_loss",
        _NN + "MarginRankingLoss",
        "margin_ranking",
        "signs",
        arguments=("input1", "input2", "target"),
    ),
    Loss(_F + "hinge_embedding_loss", _NN + "HingeEmbeddingLoss", "hinge_embedding", "signs"),
    Loss(
        _F + "cosine_embedding_loss",
        _NN + "CosineEmbeddingLoss",
        "cosine_embedding",
        "signs",
        arguments=("input1", "input2", "target"),
    ),
    Loss(_F + "multilabel_margin_loss", _NN + "MultiLabelMarginLoss", "multilabel_margin", "any"),
    Loss(
        _F + "multilabel_soft_margin_loss",
        _NN + "MultiLabelSoftMarginLoss",
        "multilabel_soft_margin",
        "probabilities",
    ),
    Loss(_F + "multi_margin_loss", _NN + "MultiMarginLoss", "multi_margin", "class-indices"),
    Loss(
        _F + "triplet_margin_loss",
        _NN + "TripletMarginLoss",
        "triplet_margin",
        "any",
        arguments=("anchor", "positive", "negative"),
    ),
    Loss(
        _F + "triplet_margin_with_distance_loss",
        _NN + "TripletMarginWithDistanceLoss",
        "triplet_margin_with_distance",
        "any",
        arguments=("anchor", "positive", "negative"),
    ),
    Loss(
        _F + "ctc_loss",
        _NN + "CTCLoss",
        "ctc",
        "class-indices",
        arguments=("log_probs", "targets", "input_lengths", "target_lengths"),
    ),
)


def _loss_index() -> dict[str, Loss]:
    index: dict[str, Loss] = {}
    for loss in _LOSS_LIST:
        index[loss.functional] = loss
        if loss.module is not None:
            index[loss.module] = loss
            index["torch.nn.modules.loss." + loss.module.rsplit(".", 1)[1]] = loss
    return index


# Every loss by each qualified name it goes by (functional, module, and torch.nn.modules.loss).
LOSSES: dict[str, Loss] = _loss_index()


def loss(qualified: str | None) -> Loss | None:
    """The loss a qualified name stands for, in either form."""
    return LOSSES.get(qualified or "")


def loss_named(name: str) -> Loss | None:
    """The loss whose functional or module form has this last name (`mse_loss`, `MSELoss`):
    for a value already resolved to a torch loss, which facts record by its last name."""
    return _LOSS_BY_NAME.get(name)


_LOSS_BY_NAME: dict[str, Loss] = {q.rsplit(".", 1)[1]: found for q, found in LOSSES.items()}


# -- tensor and array operations that return a changed copy ---------------------------------------
@dataclass(frozen=True)
class Operation:
    """An out-of-place operation: what its result changes of its input, and where it exists."""

    name: str
    changes: Change
    tensor_method: bool = False  # torch.Tensor.<name> returns a new tensor
    array_method: bool = False  # numpy.ndarray.<name> returns a new array
    tensor_only: bool = False  # among methods, only tensors have it (not nn.Module, not lists)
    no_arguments: bool = False  # as a tensor method it takes no argument
    in_place_twin: bool = False  # torch.Tensor.<name>_ exists
    method_out: int | None = None  # ndarray method: arguments before a positional `out`


_CHANGES: dict[Change, str] = {
    "shape": "squeeze unsqueeze reshape view view_as reshape_as t transpose permute flatten "
    "unflatten ravel expand expand_as repeat repeat_interleave movedim swapaxes narrow flip roll "
    "expand_dims moveaxis",
    "dtype": "float double half bfloat16 long int short bool byte type type_as astype",
    "device": "to cuda cpu pin_memory",
    "values": "clamp clip abs absolute neg sqrt exp log sigmoid tanh relu softmax log_softmax "
    "round floor ceil sign add sub mul div pow masked_fill nan_to_num normalize dropout "
    "leaky_relu gelu",
    "conversion": "numpy tolist",
    "graph": "detach",
    "copy": "clone",
    "layout": "contiguous",
}
_NOT_TENSOR_METHODS = frozenset(
    _names("astype expand_dims moveaxis absolute normalize dropout leaky_relu gelu")
)
_ARRAY_METHODS = frozenset(
    _names("reshape squeeze transpose flatten ravel swapaxes repeat view astype clip round tolist")
)
# Methods that, where the receiver is not known, still mean a tensor: `float`, `to`, `cuda`
# are not among them (an nn.Module has them too, and changes itself in place).
_TENSOR_ONLY = frozenset(
    _names(
        "squeeze unsqueeze reshape view view_as reshape_as expand_as type_as t transpose permute "
        "flatten unflatten contiguous detach clone clamp masked_fill long int numpy tolist abs"
    )
)
_NO_ARGUMENTS = frozenset(_names("t clone long int numpy tolist abs contiguous"))
_IN_PLACE_TWINS = frozenset(
    _names(
        "clamp clip add sub mul div abs neg exp log sqrt pow sigmoid tanh relu squeeze unsqueeze "
        "t transpose round floor ceil masked_fill"
    )
)
_METHOD_OUT = {"clip": 2, "round": 1}

OPERATIONS: dict[str, Operation] = {
    name: Operation(
        name,
        change,
        tensor_method=name not in _NOT_TENSOR_METHODS,
        array_method=name in _ARRAY_METHODS,
        tensor_only=name in _TENSOR_ONLY,
        no_arguments=name in _NO_ARGUMENTS,
        in_place_twin=name in _IN_PLACE_TWINS,
        method_out=_METHOD_OUT.get(name),
    )
    for change, names in _CHANGES.items()
    for name in _names(names)
}
# Out-of-place methods by qualified name: torch.Tensor.squeeze, numpy.ndarray.reshape.
TENSOR_METHODS: dict[str, Operation] = {
    "torch.Tensor." + op.name: op for op in OPERATIONS.values() if op.tensor_method
}
ARRAY_METHODS: dict[str, Operation] = {
    "numpy.ndarray." + op.name: op for op in OPERATIONS.values() if op.array_method
}


def tensor_method(name: str | None) -> Operation | None:
    return TENSOR_METHODS.get(f"torch.Tensor.{name}")


def array_method(name: str | None) -> Operation | None:
    return ARRAY_METHODS.get(f"numpy.ndarray.{name}")


# Tensor methods whose result is a tensor whatever else their receiver may be.
TENSOR_RESULT_METHODS = frozenset(_names("detach clone float double reshape view t"))


@dataclass(frozen=True)
class Function:
    """A torch/numpy function known to return a tensor (array)."""

    qualified: str
    returns: Literal["tensor", "array"]
    copies: Operation | None = None  # returns a changed copy of its first argument
    out_position: int | None = None  # NumPy: arguments before a positional `out`


_TORCH_COPIES = _names(
    "squeeze unsqueeze reshape flatten unflatten transpose permute t movedim swapaxes narrow flip "
    "roll ravel clamp clip abs neg sqrt exp log sigmoid tanh relu softmax log_softmax round "
    "masked_fill nan_to_num detach clone"
)
_FUNCTIONAL_COPIES = _names(
    "relu softmax log_softmax sigmoid tanh normalize dropout leaky_relu gelu"
)
_NUMPY_COPIES = _names(
    "reshape squeeze expand_dims transpose swapaxes moveaxis ravel flip clip abs absolute round "
    "sqrt exp log"
)
_NUMPY_OUT = {"clip": 3, "round": 2} | dict.fromkeys(_names("abs absolute sqrt exp log"), 1)
_TORCH_FACTORIES = _names(
    "tensor as_tensor from_numpy randn rand zeros ones empty normal arange linspace full randint "
    "zeros_like ones_like randn_like rand_like eye stack cat"
)
_NUMPY_FACTORIES = _names(
    "randn rand zeros ones empty normal arange linspace full randint zeros_like ones_like eye "
    "stack random.rand random.randn random.normal random.randint"
)
_TORCH_RESULTS = _names(
    "matmul mm bmm einsum where sum mean std var norm mul add sub div pow sin cos cumsum outer "
    "diag tril triu maximum minimum gather full_like empty_like randperm logspace masked_select "
    "as_strided bernoulli multinomial"
)
_NUMPY_RESULTS = _names(
    "array asarray concatenate vstack hstack column_stack dot matmul where loadtxt genfromtxt "
    "zeros_like ones_like full_like random.uniform random.random random.choice random.permutation"
)

# Tensor (array) factories: calls that make a new tensor or array from data or a shape.
FACTORIES = frozenset(
    ["torch." + name for name in _TORCH_FACTORIES] + ["numpy." + name for name in _NUMPY_FACTORIES]
)


def _functions() -> dict[str, Function]:
    found: dict[str, Function] = {}
    for prefix, names, returns in (
        ("torch.", _TORCH_FACTORIES + _TORCH_RESULTS, "tensor"),
        ("numpy.", _NUMPY_FACTORIES + _NUMPY_RESULTS, "array"),
    ):
        for name in names:
            found[prefix + name] = Function(prefix + name, returns)  # type: ignore[arg-type]
    for prefix, names, returns in (
        ("torch.", _TORCH_COPIES, "tensor"),
        (_F, _FUNCTIONAL_COPIES, "tensor"),
        ("numpy.", _NUMPY_COPIES, "array"),
    ):
        for name in names:
            out = _NUMPY_OUT.get(name) if prefix == "numpy." else None
            found[prefix + name] = Function(
                prefix + name,
                returns,  # type: ignore[arg-type]
                OPERATIONS[name],
                out,
            )
    return found


# Library functions known to return a tensor (array), by qualified name.
FUNCTIONS: dict[str, Function] = _functions()


def function(qualified: str | None) -> Function | None:
    return FUNCTIONS.get(qualified or "")


def returns(qualified: str) -> Literal["tensor", "array"] | None:
    """What a torch/numpy call returns: every torch.nn.functional call a tensor."""
    found = FUNCTIONS.get(qualified)
    if found is not None:
        return found.returns
    return "tensor" if qualified.startswith(_F) else None


# -- in-place tensor methods and attributes --------------------------------------------------------
@dataclass(frozen=True)
class InPlaceMethod:
    qualified: str  # torch.Tensor.sub_
    role: InPlaceRole  # update: moves a parameter fed its gradient; clear: zeroes a .grad


_IN_PLACE_ROLES: tuple[tuple[InPlaceRole, str], ...] = (
    ("update", "sub_ add_ copy_ addcmul_ addcdiv_ set_ lerp_"),
    ("clear", "zero_"),
    ("detach", "detach_"),
)
IN_PLACE_METHODS: dict[str, InPlaceMethod] = {
    f"torch.Tensor.{name}": InPlaceMethod(f"torch.Tensor.{name}", role)
    for role, names in _IN_PLACE_ROLES
    for name in _names(names)
}


def _in_place(role: InPlaceRole) -> frozenset[str]:
    return frozenset(q.rsplit(".", 1)[1] for q, m in IN_PLACE_METHODS.items() if m.role == role)


UPDATE_METHODS = _in_place("update")
CLEARING_METHODS = _in_place("clear")
# Methods whose result no longer carries the autograd graph.
DETACHING_METHODS = frozenset({"item", "detach", "tolist", "numpy"}) | _in_place("detach")
# Python builtins that turn a tensor into a plain value.
DETACHING_BUILTINS = frozenset(_names("float int bool round str repr"))


@dataclass(frozen=True)
class Attribute:
    qualified: str  # torch.Tensor.T
    detaches: bool = False  # `.data`: the same values outside the graph


TENSOR_ATTRIBUTES: dict[str, Attribute] = {
    f"torch.Tensor.{name}": Attribute(f"torch.Tensor.{name}", name == "data")
    for name in _names("T mT H data grad real imag")
}
TENSOR_ATTRIBUTE_NAMES = frozenset(q.rsplit(".", 1)[1] for q in TENSOR_ATTRIBUTES)
DETACHING_ATTRIBUTES = frozenset(
    q.rsplit(".", 1)[1] for q, found in TENSOR_ATTRIBUTES.items() if found.detaches
)


# -- nn.Module ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleMethod:
    """An nn.Module method that changes the module in place and returns it."""

    qualified: str  # torch.nn.Module.to
    changes: Literal["device", "dtype", "mode", "gradients", "parameters"]
    needs_argument: bool = False  # returns the module only when given one (`.type(dtype)`)


MODULE_METHODS: dict[str, ModuleMethod] = {
    f"torch.nn.Module.{name}": ModuleMethod(f"torch.nn.Module.{name}", changes)  # type: ignore[arg-type]
    for changes, names in (
        ("device", "to cuda cpu xpu ipu mtia to_empty"),
        ("dtype", "double float half bfloat16"),
        ("mode", "train eval"),
        ("gradients", "requires_grad_"),
        ("parameters", "apply share_memory"),
    )
    for name in _names(names)
} | {"torch.nn.Module.type": ModuleMethod("torch.nn.Module.type", "dtype", needs_argument=True)}


def module_method(name: str | None) -> ModuleMethod | None:
    return MODULE_METHODS.get(f"torch.nn.Module.{name}")


# Base classes whose subclasses are nn.Modules (Lightning's LightningModule among them).
# nn.Module methods that nothing else commonly has: an object they are called on is a module.
MODULE_ONLY_METHODS = frozenset(
    _names("parameters named_parameters eval modules named_modules children buffers")
)
# Base classes whose subclasses are nn.Modules (Lightning's LightningModule among them).
MODULE_BASES = frozenset(
    {"torch.nn.Module", "torch.nn.modules.module.Module"}
    | {
        prefix + "LightningModule"
        for prefix in (
            "pytorch_lightning.",
            "pytorch_lightning.core.",
            "pytorch_lightning.core.module.",
            "pytorch_lightning.core.lightning.",
            "lightning.",
            "lightning.pytorch.",
            "lightning.pytorch.core.",
            "lightning.pytorch.core.module.",
        )
    }
)
# Layers that hold trainable parameters of their own (torch.nn.<name>).
PARAMETERISED_LAYERS = frozenset(
    _NN + name
    for name in _names(
        "Linear LazyLinear Bilinear Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d "
        "ConvTranspose3d Embedding EmbeddingBag RNN LSTM GRU RNNCell LSTMCell GRUCell "
        "MultiheadAttention"
    )
)


# -- optimizers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Optimizer:
    """A torch.optim optimizer: its hyperparameters in positional order (after `params`)."""

    qualified: str
    positions: tuple[str, ...]  # argument names from position 1 on
    defaults: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    adaptive: bool = False  # scales each coordinate by its own gradient history

    def position(self, name: str) -> int | None:
        """The positional index of a hyperparameter (`params` is 0)."""
        return self.positions.index(name) + 1 if name in self.positions else None


def _optimizer(name: str, positions: str, adaptive: bool, **defaults: object) -> Optimizer:
    return Optimizer("torch.optim." + name, _names(positions), dict(defaults), adaptive)


_OPTIMIZER_LIST = (
    _optimizer(
        "SGD",
        "lr momentum dampening weight_decay nesterov",
        False,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
    ),
    _optimizer("Adam", "lr betas eps weight_decay amsgrad", True, lr=1e-3, weight_decay=0.0),
    _optimizer("AdamW", "lr betas eps weight_decay amsgrad", True, lr=1e-3, weight_decay=1e-2),
    _optimizer("Adamax", "lr betas eps weight_decay", True, lr=2e-3, weight_decay=0.0),
    _optimizer(
        "NAdam", "lr betas eps weight_decay momentum_decay", True, lr=2e-3, weight_decay=0.0
    ),
    _optimizer("RAdam", "lr betas eps weight_decay", True, lr=1e-3, weight_decay=0.0),
    _optimizer(
        "RMSprop",
        "lr alpha eps weight_decay momentum centered",
        True,
        lr=1e-2,
        weight_decay=0.0,
        momentum=0.0,
    ),
    _optimizer(
        "Adagrad",
        "lr lr_decay weight_decay initial_accumulator_value eps",
        True,
        lr=1e-2,
        weight_decay=0.0,
    ),
    _optimizer("Adadelta", "lr rho eps weight_decay", True, lr=1.0, weight_decay=0.0),
    _optimizer("ASGD", "lr lambd alpha t0 weight_decay", False, lr=1e-2, weight_decay=0.0),
    _optimizer("Rprop", "lr etas step_sizes", False, lr=1e-2),
    _optimizer("LBFGS", "lr max_iter max_eval tolerance_grad tolerance_change", False, lr=1.0),
    _optimizer("SparseAdam", "lr betas eps", True, lr=1e-3),
    _optimizer("Adafactor", "lr beta2_decay eps d weight_decay", True, lr=1e-2),
)
OPTIMIZERS: dict[str, Optimizer] = {o.qualified: o for o in _OPTIMIZER_LIST}
ADAPTIVE_OPTIMIZERS = frozenset(o.qualified for o in _OPTIMIZER_LIST if o.adaptive)


def optimizer(qualified: str | None) -> Optimizer | None:
    return OPTIMIZERS.get(qualified or "")


def optimizer_named(name: str | None) -> Optimizer | None:
    """The torch.optim optimizer of this class name (facts record optimizers by it)."""
    return OPTIMIZERS.get(f"torch.optim.{name}")


def is_optimizer_class(qualified: str) -> bool:
    """A class of torch.optim (its own module, not lr_scheduler or swa_utils)."""
    module, _, name = qualified.rpartition(".")
    return qualified in OPTIMIZERS or (module == "torch.optim" and name[:1].isupper())


# -- schedulers and what else changes a learning rate ----------------------------------------------
_TORCH_SCHEDULERS = _names(
    "LambdaLR MultiplicativeLR StepLR MultiStepLR ConstantLR LinearLR ExponentialLR "
    "SequentialLR CosineAnnealingLR ChainedScheduler ReduceLROnPlateau CyclicLR "
    "CosineAnnealingWarmRestarts OneCycleLR PolynomialLR LRScheduler"
)
_TRANSFORMERS_SCHEDULERS = _names(
    "get_scheduler get_constant_schedule get_constant_schedule_with_warmup "
    "get_linear_schedule_with_warmup get_cosine_schedule_with_warmup "
    "get_cosine_with_hard_restarts_schedule_with_warmup "
    "get_polynomial_decay_schedule_with_warmup get_inverse_sqrt_schedule "
    "get_reduce_on_plateau_schedule get_cosine_with_min_lr_schedule_with_warmup "
    "get_wsd_schedule"
)
_TIMM_SCHEDULERS = _names(
    "CosineLRScheduler StepLRScheduler MultiStepLRScheduler PlateauLRScheduler "
    "PolyLRScheduler TanhLRScheduler create_scheduler create_scheduler_v2"
)
SCHEDULERS = frozenset(
    ["torch.optim.lr_scheduler." + name for name in _TORCH_SCHEDULERS]
    + ["torch.optim.swa_utils.SWALR"]
    + [
        prefix + name
        for prefix in ("transformers.", "transformers.optimization.", "diffusers.optimization.")
        for name in _TRANSFORMERS_SCHEDULERS
    ]
    + [prefix + name for prefix in ("timm.scheduler.",) for name in _TIMM_SCHEDULERS]
)


def is_scheduler(qualified: str | None) -> bool:
    """A learning-rate scheduler: in the table, or any class or function of a module named
    `lr_scheduler` (torch's and the many libraries that mirror it)."""
    if not qualified:
        return False
    return qualified in SCHEDULERS or ".lr_scheduler." in qualified


# Calls that clip gradients (torch.nn.utils), by qualified name.
GRADIENT_CLIPPERS = frozenset(
    "torch.nn.utils." + name
    for name in _names(
        "clip_grad_norm_ clip_grad_value_ clip_grad_norm clip_grad_value clip_grads_with_norm_ "
        "clip_grad.clip_grad_norm_ clip_grad.clip_grad_value_"
    )
)
GRADIENT_CLIPPER_NAMES = frozenset(q.rsplit(".", 1)[1] for q in GRADIENT_CLIPPERS)


# -- what the data interpreter (advisor.facts.data) follows by name -----------------------------
# The makers of arrays, the methods and functions that keep or change a shape, the random draws,
# the scalers, normalising layers and file loaders of torch, numpy, pandas and sklearn.

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


# -- the torch calls the --run recorder follows (advisor.probe.recorder) ------------------------
# By the name a TorchFunctionMode sees (`__func__.__name__`): methods, `torch.*` functions and
# operators share them.

DISPATCH_VIEWS = frozenset(
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
DISPATCH_TRANSPOSES = frozenset(
    ["t", "transpose", "permute", "swapaxes", "T.__get__", "mT.__get__"]
)
DISPATCH_MATMULS = frozenset(["matmul", "__matmul__", "mm", "mv", "__rmatmul__"])
DISPATCH_ADDS = frozenset(["add", "__add__", "__radd__"])
DISPATCH_SUBS = frozenset(["sub", "__sub__", "__rsub__", "subtract"])
DISPATCH_MULS = frozenset(["mul", "__mul__", "__rmul__", "multiply"])
DISPATCH_DIVS = frozenset(["div", "__truediv__", "true_divide", "divide"])
DISPATCH_POWS = frozenset(["pow", "__pow__", "square", "float_power"])
DISPATCH_REDUCTIONS = frozenset(["mean", "sum"])
DISPATCH_INDEXING = frozenset(["__getitem__", "index_select"])
