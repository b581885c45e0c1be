"""`--format sarif` and `--format junit`, end to end through the installed command: the SARIF
log is valid against the official schema and says what the JSON format says, the JUnit XML
parses and counts what it should. A few cases no shipped fixture produces (nan in evidence,
characters XML cannot hold, a fix in a notebook) go through the reporters directly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from io import StringIO
from pathlib import Path

import jsonschema
import pytest

from advisor import __version__
from advisor.findings import Edit, FileError, Finding, Fix
from advisor.reporters import FORMATS, write_report
from advisor.rules import ALL_RULES
from advisor.runner import RunResult

COMMAND = Path(sys.executable).with_name("lr-advisor")
ROOT = Path(__file__).resolve().parents[1]
DEMO = "fixtures/demo/train_buggy.py"
NOTEBOOK = "fixtures/rules/missing-zero-grad/bad_notebook_fuel_efficiency.ipynb"
CLEAN = "fixtures/rules/missing-zero-grad/ok_zero_at_bottom.py"
PROBED = "fixtures/rules/huge-learning-rate/bad_raw_closes_sgd.py"  # its data: closes.csv
# The official OASIS SARIF 2.1.0 schema (errata01), from the oasis-tcs/sarif-spec repository
# (sarif-2.1/schema/sarif-schema-2.1.0.json), copied from /work/shared/data/; see data/README.md.
SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@cache
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)  # the schema declares draft-04


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "--no-cache", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def strict_json(text: str):
    """Parse as JSON proper: `NaN` and `Infinity` are not JSON and code scanning rejects them."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def untimed(report: dict) -> dict:
    """A probe report less its time (two runs never take the same), with JSON's nan as null."""
    text = json.dumps({k: v for k, v in report.items() if k != "seconds"})
    return json.loads(text, parse_constant=lambda token: None)


def assert_valid_sarif(log: dict) -> None:
    errors = sorted(sarif_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One set of files through --format json, sarif and junit: the same findings three ways
    (run once for the module: the tests below read the three outputs)."""
    broken = tmp_path_factory.mktemp("broken") / "broken.py"
    broken.write_text("import torch\n\nfor epoch in range(3:\n    loss.backward()\n")
    paths = [DEMO, NOTEBOOK, str(broken)]
    runs = {fmt: lint("--static", "--format", fmt, *paths) for fmt in ("json", "sarif", "junit")}
    for fmt, completed in runs.items():
        assert completed.returncode == 1, (fmt, completed.stderr)
        assert completed.stderr == "", (fmt, completed.stderr)
    return {
        "json": json.loads(runs["json"].stdout),
        "sarif": strict_json(runs["sarif"].stdout),
        "junit": ET.fromstring(runs["junit"].stdout),
        "broken": broken,
    }


def region_of(result: dict) -> dict:
    return result["locations"][0]["physicalLocation"]["region"]


def uri_of(result: dict) -> str:
    return result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


# -- SARIF -----------------------------------------------------------------------------------


def test_sarif_is_valid_and_describes_the_tool_and_every_rule(checked: dict) -> None:
    log = checked["sarif"]
    assert_valid_sarif(log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "lr-advisor"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert [rule["id"] for rule in driver["rules"]] == [rule.id for rule in ALL_RULES]
    for descriptor, rule in zip(driver["rules"], ALL_RULES, strict=True):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["help"]["markdown"] == rule.documentation()
        assert descriptor["fullDescription"]["text"]
        expected_level = "error" if rule.severity == "error" else "warning"
        assert descriptor["defaultConfiguration"]["level"] == expected_level
    assert run["columnKind"] == "unicodeCodePoints"


def test_sarif_results_match_the_json_findings(checked: dict) -> None:
    run = checked["sarif"]["runs"][0]
    findings, results = checked["json"]["findings"], run["results"]
    assert {f["path"] for f in findings} == {DEMO, NOTEBOOK}
    assert len(results) == len(findings) > 0
    rules = run["tool"]["driver"]["rules"]
    for result, finding in zip(results, findings, strict=True):
        assert result["ruleId"] == finding["id"]
        assert rules[result["ruleIndex"]]["id"] == finding["id"]
        assert result["level"] == finding["severity"]
        assert result["message"]["text"] == finding["message"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": finding["path"], "uriBaseId": "%SRCROOT%"}
        region = location["region"]
        assert (
            region["startLine"],
            region["startColumn"],
            region["endLine"],
            region["endColumn"],
        ) == (finding["line"], finding["column"], finding["end_line"], finding["end_column"])
        assert region.get("properties", {}).get("cell") == finding.get("cell")
        assert result["properties"]["confidence"] == finding["confidence"]
        assert result["properties"]["evidence"] == finding["evidence"]
    demo_rules = {r["ruleId"] for r in results if uri_of(r) == DEMO}
    assert {"LRA101", "LRA104", "LRA201", "LRA401", "LRA402", "LRA403"} <= demo_rules


def test_sarif_notebook_results_name_their_cell(checked: dict) -> None:
    notebook = [r for r in checked["sarif"]["runs"][0]["results"] if uri_of(r) == NOTEBOOK]
    assert [r["ruleId"] for r in notebook] == ["LRA101"]
    region = region_of(notebook[0])
    assert region["properties"] == {"cell": 4}
    assert region["startLine"] == 5  # within the cell, as every other format counts
    assert "fixes" not in notebook[0]  # cell coordinates are no replacement in the file


def test_sarif_fixes_are_replacements_in_the_file(checked: dict) -> None:
    """Every fix written is the JSON format's edits, region for region, in the same file."""
    by_key = {(f["line"], f["column"], f["id"]): f for f in checked["json"]["findings"]}
    for result in checked["sarif"]["runs"][0]["results"]:
        region = region_of(result)
        finding = by_key[(region["startLine"], region["startColumn"], result["ruleId"])]
        edits = (finding["fix"] or {}).get("edits") or []
        if not edits or "cell" in finding:
            assert "fixes" not in result
            continue
        (fix,) = result["fixes"]
        assert fix["description"]["text"] == finding["fix"]["description"]
        (change,) = fix["artifactChanges"]
        assert change["artifactLocation"]["uri"] == finding["path"]
        replaced = [
            (
                r["deletedRegion"]["startLine"],
                r["deletedRegion"]["startColumn"],
                r["deletedRegion"]["endLine"],
                r["deletedRegion"]["endColumn"],
                r["insertedContent"]["text"],
            )
            for r in change["replacements"]
        ]
        expected = [
            (e["line"], e["column"], e["end_line"], e["end_column"], e["content"]) for e in edits
        ]
        assert replaced == expected


def test_sarif_syntax_error_is_a_tool_notification_not_a_rule_less_result(checked: dict) -> None:
    run = checked["sarif"]["runs"][0]
    assert all("ruleId" in result for result in run["results"])  # code scanning requires it
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True  # a file that does not parse is a finding
    (error,) = checked["json"]["errors"]
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert notification["message"]["text"] == error["message"].strip()
    assert notification["message"]["text"].startswith("SyntaxError")
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": checked["broken"].as_uri()}  # absolute path
    assert location["region"]["startLine"] == error["line"] == 3
    assert location["region"]["startColumn"] == error["column"]


def test_sarif_clean_file_exits_zero_with_no_results() -> None:
    completed = lint("--static", "--format", "sarif", CLEAN)
    assert completed.returncode == 0, completed.stderr
    log = strict_json(completed.stdout)
    assert_valid_sarif(log)
    run = log["runs"][0]
    assert run["results"] == []
    assert run["invocations"][0] == {"executionSuccessful": True, "toolExecutionNotifications": []}
    assert len(run["tool"]["driver"]["rules"]) == len(ALL_RULES)


def test_sarif_keeps_the_probe_reports() -> None:
    sarif = lint("--format", "sarif", PROBED)
    report = lint("--format", "json", PROBED)
    assert sarif.returncode == report.returncode == 1, sarif.stderr
    log = strict_json(sarif.stdout)
    assert_valid_sarif(log)
    expected = json.loads(report.stdout)
    assert expected["probe"], "the fixture should be probed"
    kept = log["runs"][0]["properties"]["probe"]
    assert [untimed(r) for r in kept] == [untimed(r) for r in expected["probe"]]
    confirmed = [
        r for r in log["runs"][0]["results"] if r["properties"]["confidence"] == "confirmed"
    ]
    assert confirmed and all(r["properties"]["evidence"] for r in confirmed)


def test_sarif_missing_path_is_an_unsuccessful_execution() -> None:
    completed = lint("--static", "--format", "sarif", CLEAN, "no/such/file.py")
    assert completed.returncode == 2
    assert "no/such/file.py" in completed.stderr  # the job's log says why
    log = strict_json(completed.stdout)
    assert_valid_sarif(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["descriptor"]["id"] == "run-error"


def test_sarif_evidence_is_strict_json_and_fixes_stay_out_of_notebooks() -> None:
    """nan and inf (and numpy numbers) in evidence become valid JSON; a plain file's edits
    become a fix, the same edits in a notebook cell do not."""
    import numpy as np

    fix = Fix("insert it", "safe", (Edit(2, 1, 2, 1, "opt.zero_grad()\n"),))
    common = dict(
        line=2, column=5, end_line=2, end_column=9, rule_id="LRA101", rule_name="missing-zero-grad"
    )
    evidence = {"nan": math.nan, "inf": -math.inf, "np": np.float32(0.5), "arr": np.arange(3)}
    result = RunResult(
        findings=[
            Finding(
                "train.py",
                **common,
                message="m",
                severity="error",
                confidence="likely",
                fix=fix,
                evidence=evidence,
            ),
            Finding(
                "nb.ipynb",
                **common,
                message="m",
                severity="error",
                confidence="certain",
                fix=fix,
                cell=2,
            ),
        ],
        errors=[FileError("<probe>", "the probe needs numpy", is_finding=False)],
        files=2,
    )
    out, err = StringIO(), StringIO()
    write_report(result, "sarif", out, err)
    log = strict_json(out.getvalue())
    assert_valid_sarif(log)
    plain, notebook = log["runs"][0]["results"]
    assert plain["properties"]["evidence"] == {
        "nan": None,
        "inf": None,
        "np": 0.5,
        "arr": [0, 1, 2],
    }
    (change,) = plain["fixes"][0]["artifactChanges"]
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 2, "startColumn": 1, "endLine": 2, "endColumn": 1},
            "insertedContent": {"text": "opt.zero_grad()\n"},
        }
    ]
    assert "fixes" not in notebook
    assert notebook["properties"]["fix"]["edits"]  # kept, as in the JSON format
    (notification,) = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "locations" not in notification  # `<probe>` names no file
    assert "the probe needs numpy" in err.getvalue()


# -- JUnit -----------------------------------------------------------------------------------


def test_junit_has_a_testcase_per_file_and_a_failure_per_finding(checked: dict) -> None:
    root = checked["junit"]
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "lr-advisor"
    cases = suite.findall("testcase")
    broken = str(checked["broken"])
    assert sorted(case.get("classname") for case in cases) == sorted([DEMO, NOTEBOOK, broken])
    assert suite.get("tests") == str(len(cases)) == "3"
    assert suite.get("failures") == "3" and suite.get("errors") == "0"
    assert root.get("tests") == "3" and root.get("failures") == "3"

    findings = checked["json"]["findings"]
    failures = suite.findall("testcase/failure")
    assert len(failures) == len(findings) + 1  # and the syntax error
    by_case = {case.get("classname"): case.findall("failure") for case in cases}
    for path in (DEMO, NOTEBOOK):
        expected = [(f["id"], f["message"]) for f in findings if f["path"] == path]
        assert [(x.get("type"), x.get("message")) for x in by_case[path]] == expected
    (syntax,) = by_case[broken]
    assert syntax.get("type") == "file-error"
    assert syntax.text.startswith(f"{broken}:3:")
    demo_first = by_case[DEMO][0]
    first = findings[0]
    assert demo_first.text.startswith(f"{DEMO}:{first['line']}:{first['column']}: {first['id']}")
    (notebook,) = by_case[NOTEBOOK]
    assert notebook.text.startswith(f"{NOTEBOOK}:cell 4:5:5: LRA101")


def test_junit_without_findings_is_one_passing_testcase() -> None:
    completed = lint("--static", "--format", "junit", CLEAN)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    suite = ET.fromstring(completed.stdout).find("testsuite")
    (case,) = suite.findall("testcase")
    assert case.get("name") == "lr-advisor" and len(case) == 0
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")


def test_junit_missing_path_is_an_error_not_a_failure() -> None:
    completed = lint("--static", "--format", "junit", DEMO, "no/such/file.py")
    assert completed.returncode == 2
    suite = ET.fromstring(completed.stdout).find("testsuite")
    (error,) = suite.findall("testcase/error")
    assert error.get("message") == "no such file or directory"
    assert suite.get("errors") == "1" and suite.get("failures") == "1"


def test_junit_escapes_markup_and_drops_characters_xml_cannot_hold() -> None:
    message = 'a <b> & "c" \x01 ü\nnext'
    finding = Finding(
        'odd "<name>" & path.py',
        1,
        1,
        1,
        2,
        "LRA101",
        "missing-zero-grad",
        message,
        "error",
        "certain",
    )
    out = StringIO()
    write_report(RunResult(findings=[finding], files=1), "junit", out, StringIO())
    assert out.getvalue().isascii()
    (failure,) = ET.fromstring(out.getvalue()).findall("testsuite/testcase/failure")
    assert failure.get("message") == 'a <b> & "c" \ufffd ü\nnext'
    (case,) = ET.fromstring(out.getvalue()).findall("testsuite/testcase")
    assert case.get("classname") == 'odd "<name>" & path.py'


def test_both_formats_are_registered() -> None:
    assert {"sarif", "junit"} <= set(FORMATS)
    completed = lint("--help")
    assert "sarif" in completed.stdout and "junit" in completed.stdout
