"""The crashes and hangs fuzzing found, each as its smallest reproduction."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from harness import run_command, time_limit

from advisor.pipeline import check_bytes
from advisor.probe.datafile import DataError, DataOption, load
from advisor.runner import RunOptions, check_paths
from advisor.syntax_size import MAX_SYNTAX_NODES

TRAINING = (
    "import torch\n"
    "X = torch.tensor([[1.0], [2.0], [3.0]])\n"
    "y = 2 * X\n"
    "model = torch.nn.Linear(1, 1)\n"
    "{rebound}"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "for epoch in range(100):\n"
    "    loss = torch.nn.functional.mse_loss(model(X), y)\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
)


def rebound(times: int) -> str:
    return TRAINING.format(rebound="model = model.to('cpu')\n" * times)


@pytest.mark.parametrize("times", [80, 4000])
def test_a_name_rebound_from_itself_many_times_is_checked_fast(times: int) -> None:
    # 80: the values of `model` multiplied at each level of the lookup (k ** 6: hours);
    # 4000: class_of scanned every binding for every occurrence (k ** 2: 15 s)
    began = time.perf_counter()
    with time_limit(10):
        result = check_bytes(rebound(times), "train.py")
    assert time.perf_counter() - began < 10
    assert result.errors == []
    assert [f.rule_name for f in result.findings] == ["missing-zero-grad"]


def test_the_probe_does_not_parse_what_the_static_check_refused(tmp_path: Path) -> None:
    # libcst's parser overflowed its stack (a segfault, exit 139) in the probe stage
    deep = "import torch\nloss.backward()\nx = " + "(" * 5000 + ")" * 5000 + "\n"
    (tmp_path / "deep.py").write_text(deep)
    completed = run_command(["deep.py"], tmp_path, limit=60)
    assert completed.returncode == 1
    assert "deep.py:3: error: too deeply nested to check" in completed.stdout


@pytest.mark.parametrize(
    "source",
    [
        "import torch\n" + "".join(f"x_{i} = torch.zeros(3)\n" for i in range(60_000)),
        "import torch\nx = [" + ", ".join(["1"] * 200_000) + "]\n",  # inline data
    ],
    ids=["code", "literal"],
)
def test_a_file_too_large_to_check_in_seconds_is_refused(source: str) -> None:
    # 5 MB of code took minutes; a 200k-number list 13 s (libcst, positions): now one error
    with time_limit(10):
        result = check_bytes(source, "big.py")
    (error,) = result.errors
    assert error.is_finding
    assert error.message.startswith("too large to check (")
    assert f"syntax nodes > {MAX_SYNTAX_NODES:,}), skipped" in error.message


def test_a_syntax_error_without_a_column_has_none_not_zero() -> None:
    # Python gives offset 0 for "Exceeds the limit (4300 digits)": column 0 is no column
    (error,) = check_bytes(f"import torch\nlr = {'9' * 4301}\n", "t.py").errors
    assert error.message.startswith("SyntaxError: Exceeds the limit (4300 digits)")
    assert (error.line, error.column) == (2, None)


@pytest.mark.parametrize("encoding", ["utf-16-le", "cp037"])
def test_an_encoding_python_refuses_is_an_error_not_silence(encoding: str) -> None:
    # decoded as garbage, the text no longer said `torch`: the file was silently skipped
    data = f"# -*- coding: {encoding} -*-\nimport torch\nloss.backward()\n\n".encode()
    assert len(data) % 2 == 0  # whole UTF-16 units: it decodes, to nonsense
    (error,) = check_bytes(data, "t.py").errors
    assert error.message == f"cannot decode: {encoding} is not ASCII-compatible"


def test_a_codec_that_fails_its_own_way_is_an_error_not_an_internal_error() -> None:
    # punycode raised UnicodeError (not UnicodeDecodeError): "internal error", exit 2
    (error,) = check_bytes(b"# coding: punycode\nimport torch\n", "t.py").errors
    assert error.is_finding
    assert error.message == "cannot decode as punycode: not a codec for source files"


def test_bom_with_another_cookie_and_bad_utf8_on_line_one_say_what_is_wrong() -> None:
    (error,) = check_bytes(b"\xef\xbb\xbf# coding: latin-1\nimport torch\n", "t.py").errors
    assert (
        error.message
        == "cannot decode: a UTF-8 BOM and a coding cookie that names another encoding"
    )
    # was "invalid or missing encoding declaration", with no position
    (error,) = check_bytes(b"import torch  # \xff\n", "t.py").errors
    assert error.message.startswith("cannot decode as utf-8: invalid byte 0xff")
    assert (error.line, error.column) == (1, 17)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b,c\n", "no rows of numbers"),
        ("a,b,c\n1,2,3\n4,5\n", "rows of different lengths"),
    ],
)
def test_unusable_data_files_say_why(tmp_path: Path, content: str, message: str) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text(content)
    with pytest.raises(DataError, match=message):
        load(DataOption(str(csv)))


def test_a_damaged_npy_file_is_a_data_error(tmp_path: Path) -> None:
    # np.load's ValueError escaped as an internal error of the probe
    npy = tmp_path / "data.npy"
    npy.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="cannot read it"):
        load(DataOption(str(npy)))


def test_an_unusable_data_file_is_a_failed_probe_not_an_internal_error(tmp_path: Path) -> None:
    from advisor.probe.stage import ProbeOptions

    (tmp_path / "train.py").write_text(rebound(0))
    (tmp_path / "data.csv").write_text("x,y\n")  # a header and nothing else
    options = ProbeOptions(data=DataOption(str(tmp_path / "data.csv")))
    result = check_paths([str(tmp_path / "train.py")], RunOptions(probe=options, use_cache=False))
    assert result.internal_errors == []
    (report,) = result.probe
    assert report.status == "failed"
    assert report.summary == f"not probed: --data {tmp_path / 'data.csv'}: no rows of numbers"
    completed = run_command(["--format", "json", "--data", "data.csv", "train.py"], tmp_path)
    (probed,) = json.loads(completed.stdout)["probe"]
    assert probed["status"] == "failed"


def test_a_literal_row_deleted_from_the_features_is_no_internal_error() -> None:
    # 9 feature rows, 10 targets: least squares reshaped the targets to (9, -1) and raised
    fixture = Path(__file__).parents[2] / "fixtures/seeds/seed000_lagged_prices_pinv.py"
    source = fixture.read_text().replace("                 [1466.20, 1451.50, 1444.90],\n", "")
    result = check_bytes(source, "prices.py")
    assert result.errors == []
    assert "unscaled-features" in {f.rule_name for f in result.findings}


def test_numbers_whose_squares_overflow_are_no_internal_error(tmp_path: Path) -> None:
    # -1e308 in the CSV: the Gram matrix was inf and eigvalsh raised LinAlgError in 3 rules
    from advisor.probe.stage import ProbeOptions

    probe = Path(__file__).parents[2] / "fixtures/probe"
    script = tmp_path / "seed000_closes_from_csv.py"
    script.write_text((probe / script.name).read_text())
    rows = (probe / "closes_seed000.csv").read_text().splitlines()
    rows[3] = "-1e308," + rows[3].split(",", 1)[1]
    (tmp_path / "closes_seed000.csv").write_text("\n".join(rows) + "\n")
    options = RunOptions(probe=ProbeOptions(), use_cache=False)
    result = check_paths([str(script)], options)
    assert result.errors == []
    assert "tiny-learning-rate" in {f.rule_name for f in result.findings}
    (report,) = result.probe
    assert report.status == "no data"
    assert report.summary.startswith("not probed: the data holds numbers too large to square")


def test_a_huge_power_in_a_shape_is_not_computed() -> None:
    # `10**10**12` (an epoch count mutated to 10**12, in an exponent): the constant folding of
    # the hyperparameters computed it, for hours
    source = TRAINING.format(rebound="").replace("[[1.0], [2.0], [3.0]]", "[[1.0]] * 10**10**12")
    with time_limit(10):
        result = check_bytes(source, "train.py")
    assert result.errors == []
    source = TRAINING.format(rebound="").replace(
        "X = torch.tensor([[1.0], [2.0], [3.0]])", "X = torch.randn(30, 10**10**12)"
    )
    with time_limit(10):
        result = check_bytes(source, "train.py")
    assert [f.rule_name for f in result.findings] == ["missing-zero-grad"]


def test_data_with_no_rows_is_no_internal_error(tmp_path: Path) -> None:
    # `torch.randn(0, 1)` (a size mutated to 0): the curvature divided by zero rows in three
    # rules, and the probe reshaped an empty array to (0, -1)
    from advisor.probe.stage import ProbeOptions

    script = tmp_path / "train.py"
    script.write_text(
        TRAINING.format(rebound="").replace(
            "torch.tensor([[1.0], [2.0], [3.0]])", "torch.randn(0, 1)"
        )
    )
    result = check_bytes(script.read_bytes(), "train.py")
    assert result.errors == []
    assert [f.rule_name for f in result.findings] == ["missing-zero-grad"]
    result = check_paths([str(script)], RunOptions(probe=ProbeOptions(), use_cache=False))
    assert result.errors == []
    (report,) = result.probe
    assert (report.status, report.summary.split(";")[0]) == (
        "no data",
        "not probed: the data has no rows",
    )


@pytest.mark.parametrize(
    ("data", "lr", "epochs"),
    [
        ("torch.rand(20, 1) * 0x" + "f" * 300, "0.1", "100"),  # float(int) overflowed
        ("torch.randn(20, 1)", "2**1000 * 2**100", "100"),  # float(lr) overflowed: 1101 bits
        ("torch.randn(20, 1)", "0.1", "2**63"),  # len(range(2**63)) overflowed ssize_t
        ("torch.arange(0, 10, 1e-320).reshape(-1, 1)", "0.1", "100"),  # ceil(inf) overflowed
        ("torch.linspace(0, 1, 1e308 * 10).reshape(-1, 1)", "0.1", "100"),  # int(inf) too
        ("torch.randn(int(1e308 * 10), 1)", "0.1", "100"),  # int(inf) in the constants
    ],
)
def test_extreme_numbers_in_the_data_and_the_loop_are_no_internal_error(
    data: str, lr: str, epochs: str
) -> None:
    source = (
        TRAINING.format(rebound="")
        .replace("torch.tensor([[1.0], [2.0], [3.0]])", data)
        .replace("lr=0.1", f"lr={lr}")
        .replace("range(100)", f"range({epochs})")
    )
    result = check_bytes(source, "train.py")
    assert result.errors == []
    assert [f.rule_name for f in result.findings] == ["missing-zero-grad"]


def test_an_infinite_lr_gives_a_strict_json_report(tmp_path: Path) -> None:
    # `lr=1e308 * 10`: the report's "lr" was inf, which JSON cannot hold
    from advisor.probe.stage import ProbeOptions

    script = tmp_path / "train.py"
    script.write_text(
        TRAINING.format(rebound="")
        .replace("X = torch.tensor([[1.0], [2.0], [3.0]])", "X = torch.randn(20, 1)")
        .replace("lr=0.1", "lr=1e308 * 10")
    )
    result = check_paths([str(script)], RunOptions(probe=ProbeOptions(), use_cache=False))
    (report,) = result.probe
    document = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert document["status"] == "diverged"
    assert document["problem"]["optimizer"]["lr"] is None
