"""`[tool.lr-advisor]`: found by walking up, select/ignore/extend-select, per-file-ignores,
errors that name the file, and how the command line combines with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from toy_rules import BACKWARD, STEP, TOY_RULES

from advisor.config import (
    DEFAULT,
    Config,
    ConfigError,
    ConfigFinder,
    glob_matches,
    load_config,
    select_rules,
)
from advisor.runner import RunOptions, UsageError, check_paths

COMMAND = Path(sys.executable).parent / "lr-advisor"
SCRIPT = "import torch\nfor i in range(3):\n    loss.backward()\n    opt.step()\n"


def ids(rules) -> list[str]:
    return [rule.id for rule in rules]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(paths: list[Path], **changes):
    options = RunOptions(rules=TOY_RULES, use_cache=False, jobs=1, **changes)
    return check_paths([str(p) for p in paths], options)


def found(result) -> set[tuple[str, str]]:
    return {(Path(f.path).name, f.rule_id) for f in result.findings}


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("tests/*.py", "tests/test_a.py", True),
        ("tests/*.py", "tests/sub/test_a.py", False),
        ("tests/**/*.py", "tests/sub/test_a.py", True),
        ("tests/**/*.py", "tests/test_a.py", True),
        ("tests", "tests/sub/test_a.py", True),
        ("tests/", "tests/test_a.py", True),
        ("*.ipynb", "notebooks/deep/a.ipynb", True),
        ("notebooks/*.ipynb", "notebooks/a.ipynb", True),
        ("notebooks/*.ipynb", "other/notebooks/a.ipynb", False),
        ("train_?.py", "src/train_1.py", True),
        ("train_[0-9].py", "train_x.py", False),
        ("./scripts/*", "scripts/a.py", True),
    ],
)
def test_glob_matching(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


def test_selection_rules() -> None:
    assert ids(select_rules(TOY_RULES, DEFAULT)) == ["LRA901", "LRA902"]
    config = Config(select=("LRA901",))
    assert ids(select_rules(TOY_RULES, config)) == ["LRA901"]
    assert ids(
        select_rules(TOY_RULES, Config(select=("LRA901",), extend_select=("every-step",)))
    ) == [
        "LRA901",
        "LRA902",
    ]
    # the command line's --select replaces the configured one
    assert ids(select_rules(TOY_RULES, config, cli_select=["every-step"])) == ["LRA902"]
    # ignores add up: configured and command line
    config = Config(ignore=("LRA901",))
    assert ids(select_rules(TOY_RULES, config)) == ["LRA902"]
    assert ids(select_rules(TOY_RULES, config, cli_ignore=["LRA902"])) == []
    assert ids(select_rules(TOY_RULES, config, cli_select=["LRA9"])) == ["LRA902"]


def test_config_is_found_by_walking_up_and_cached_per_folder(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.lr-advisor]\nignore = ["every-step"]\n')
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'no-section-here'\n")
    deep = write(tmp_path / "sub" / "deeper" / "train.py", SCRIPT)
    finder = ConfigFinder(TOY_RULES)
    config = finder.for_file(deep)
    assert config.path == tmp_path / "pyproject.toml"
    assert finder.for_file(tmp_path / "sub" / "other.py") is config
    assert found(run([deep])) == {("train.py", "LRA901")}


def test_the_nearest_config_wins(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.lr-advisor]\nignore = ["every-step"]\n')
    write(tmp_path / "inner" / "pyproject.toml", '[tool.lr-advisor]\nselect = ["LRA902"]\n')
    outer = write(tmp_path / "outer.py", SCRIPT)
    inner = write(tmp_path / "inner" / "inner.py", SCRIPT)
    assert found(run([outer, inner])) == {("outer.py", "LRA901"), ("inner.py", "LRA902")}


def test_per_file_ignores_are_relative_to_the_config(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        "[tool.lr-advisor.per-file-ignores]\n"
        '"scripts/*.py" = ["LRA901"]\n'
        '"legacy" = ["LRA9"]\n'
        '"**/notebook_*.py" = ["every-step"]\n',
    )
    files = [
        write(tmp_path / "scripts" / "a.py", SCRIPT),
        write(tmp_path / "legacy" / "old" / "b.py", SCRIPT),
        write(tmp_path / "deep" / "x" / "notebook_c.py", SCRIPT),
        write(tmp_path / "d.py", SCRIPT),
    ]
    assert found(run(files)) == {
        ("a.py", "LRA902"),
        ("notebook_c.py", "LRA901"),
        ("d.py", "LRA901"),
        ("d.py", "LRA902"),
    }


def test_command_line_select_replaces_and_ignore_adds(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.lr-advisor]\nselect = ["LRA901"]\n')
    path = write(tmp_path / "t.py", SCRIPT)
    assert found(run([path])) == {("t.py", "LRA901")}
    assert found(run([path], select=["every-step"])) == {("t.py", "LRA902")}
    write(tmp_path / "pyproject.toml", '[tool.lr-advisor]\nignore = ["LRA901"]\n')
    assert found(run([path], ignore=["LRA902"])) == set()


@pytest.mark.parametrize("table", ["every-step", "LRA902", "not-a-rule"])
def test_rule_settings_tables_are_an_error_naming_the_file_and_the_table(
    tmp_path: Path, table: str
) -> None:
    """Older versions accepted `[tool.lr-advisor.<rule>]` and never read it: say so."""
    config = write(
        tmp_path / "pyproject.toml",
        f"[tool.lr-advisor]\nselect = ['LRA9']\n[tool.lr-advisor.{table}]\nthreshold = 3\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    message = str(raised.value)
    assert message.startswith(f"{config}: [tool.lr-advisor.{table}]: ")
    assert "per-rule settings are not supported" in message and "remove the table" in message
    path = write(tmp_path / "t.py", SCRIPT)
    with pytest.raises(UsageError, match="per-rule settings are not supported"):
        run([path])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[tool.lr-advisor]\nselect = [", "invalid TOML"),
        ("[tool.lr-advisor]\nselect = 3\n", "`select` in [tool.lr-advisor] must be a list"),
        ("[tool.lr-advisor]\nignore = [1]\n", "`ignore` in [tool.lr-advisor] must be a list"),
        ("[tool.lr-advisor]\nbogus = true\n", "unknown option `bogus`"),
        ("[tool.lr-advisor]\nselect = ['LRA777']\n", "names no rule: LRA777"),
        ("[tool.lr-advisor.per-file-ignores]\n'a' = ['nope']\n", "names no rule: nope"),
        ("[tool.lr-advisor]\nper-file-ignores = 1\n", "must be a table"),
        ("[tool.lr-advisor.not-a-rule]\nx = 1\n", "[tool.lr-advisor.not-a-rule]: per-rule"),
    ],
)
def test_invalid_config_is_a_usage_error_naming_the_file(
    tmp_path: Path, body: str, message: str
) -> None:
    config = write(tmp_path / "pyproject.toml", body)
    path = write(tmp_path / "t.py", SCRIPT)
    with pytest.raises(UsageError) as raised:
        run([path])
    assert str(config) in str(raised.value) and message in str(raised.value)


def test_a_pyproject_without_our_section_is_not_even_parsed(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "this is [not TOML at all\n")
    assert load_config(path) is None


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing" / "pyproject.toml")


def test_invalid_config_exits_2_with_the_file_named(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.lr-advisor]\nselect = ['LRA777']\n")
    write(tmp_path / "t.py", SCRIPT)
    completed = subprocess.run(
        [str(COMMAND), "--static", "--no-cache", "t.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "pyproject.toml" in completed.stderr and "LRA777" in completed.stderr
    assert completed.stdout == ""


def test_config_end_to_end_with_the_real_rules(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        "[tool.lr-advisor]\nselect = ['LRA1']\n"
        "[tool.lr-advisor.per-file-ignores]\n'exempt/*' = ['missing-zero-grad']\n",
    )
    buggy = (
        "import torch\nmodel = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
        "for epoch in range(100):\n"
        "    loss = torch.nn.functional.mse_loss(model(X), y)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
    )
    write(tmp_path / "exempt" / "a.py", buggy)
    write(tmp_path / "checked" / "b.py", buggy)
    completed = subprocess.run(
        [str(COMMAND), "--static", "--no-cache", "--format", "concise", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1, completed.stderr
    assert "checked/b.py:6:5: LRA101" in completed.stdout
    assert "exempt/a.py" not in completed.stdout


def test_step_is_selectable_by_name(tmp_path: Path) -> None:
    path = write(tmp_path / "t.py", SCRIPT)
    assert ids(select_rules((BACKWARD, STEP), DEFAULT, cli_select=["every-step"])) == ["LRA902"]
    assert found(run([path], select=["every-step"])) == {("t.py", "LRA902")}
