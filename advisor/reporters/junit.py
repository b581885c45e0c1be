"""JUnit XML, the test-report format that CI systems without code scanning still display
(GitLab merge requests, Jenkins, Azure Pipelines, CircleCI).

One `<testsuite name="lr-advisor">`; one `<testcase>` a file with findings or errors
(`classname` is the path), each finding a `<failure>` whose `type` is the rule id. Exit codes
map onto JUnit's outcomes: what makes lr-advisor exit 1 (findings, files that do not parse)
is a `<failure>`, what makes it exit 2 (missing paths, internal errors) an `<error>`. The run
does not list the files that were checked and found clean, so a run without findings is one
passing testcase named "lr-advisor" (a report with no testcase reads as "no tests ran").
Files known only from the probe's reports pass, with the report in `<system-out>`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, TextIO

from advisor.reporters.text import error_line, finding_line, location

if TYPE_CHECKING:
    from advisor.findings import FileError, Finding
    from advisor.runner import RunResult

SUITE = "lr-advisor"
# Characters XML 1.0 cannot hold at all, not even as references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (a message may quote source code);
    ElementTree escapes the rest but would write these as they are, ill-formed."""
    return _NOT_XML.sub("\ufffd", text)


def _finding_text(finding: Finding) -> str:
    lines = [finding_line(finding)]
    if finding.fix is not None:
        lines.append(f"fix: {finding.fix.description}")
    return "\n".join(lines)


def _failure(case: ET.Element, finding: Finding) -> None:
    element = ET.SubElement(
        case, "failure", message=xml_text(finding.message), type=finding.rule_id
    )
    element.text = xml_text(_finding_text(finding))


def _file_error(case: ET.Element, error: FileError) -> None:
    tag, kind = ("failure", "file-error") if error.is_finding else ("error", "run-error")
    element = ET.SubElement(case, tag, message=xml_text(error.message), type=kind)
    element.text = xml_text(error_line(error))


def _probe_lines(result: RunResult) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for report in result.probe:
        where = location(report.path, report.line, None, report.cell)
        lines.setdefault(report.path, []).append(f"{where}: probe: {report.summary}")
    return lines


def document(result: RunResult) -> ET.Element:
    """The report as an element tree: `<testsuites>` holding the one `<testsuite>`."""
    findings: dict[str, list[Finding]] = {}
    for finding in result.findings:
        findings.setdefault(finding.path, []).append(finding)
    errors: dict[str, list[FileError]] = {}
    for error in result.errors:
        errors.setdefault(error.path, []).append(error)
    probed = _probe_lines(result)
    paths = sorted({*findings, *errors, *probed})

    suite = ET.Element("testsuite", name=SUITE)
    failed = errored = 0
    for path in paths:
        case = ET.SubElement(suite, "testcase", classname=xml_text(path), name=SUITE)
        for finding in findings.get(path, ()):
            _failure(case, finding)
        for error in errors.get(path, ()):
            _file_error(case, error)
        if any(child.tag == "error" for child in case):
            errored += 1
        elif len(case):
            failed += 1
        if path in probed:
            ET.SubElement(case, "system-out").text = xml_text("\n".join(probed[path]))
    if not paths:
        ET.SubElement(suite, "testcase", classname=SUITE, name=SUITE)
    counts = {
        "tests": str(len(suite)),
        "failures": str(failed),
        "errors": str(errored),
        "skipped": "0",
    }
    suite.attrib.update(counts)
    root = ET.Element("testsuites", {"name": SUITE, **counts})
    root.append(suite)
    return root


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    """The XML on `out` (usually redirected to a file for the CI to read), and internal errors
    also on `err`, so that the job's log says why the exit code is 2."""
    root = document(result)
    ET.indent(root)
    # ASCII with character references: correct whatever encoding `out` writes in
    text = ET.tostring(root, encoding="unicode").encode("ascii", "xmlcharrefreplace").decode()
    out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n')
    for error in result.internal_errors:
        err.write(error_line(error) + "\n")
