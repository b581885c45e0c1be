"""`--run`'s containment: what a script cannot do, shown on scripts that try."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from advisor.probe.capture import capture_run  # noqa: E402

TRAIN = """
import torch
X = torch.randn(20, 2)
y = X.sum(1, keepdim=True)
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(5):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
"""


def test_writes_outside_the_run_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "stolen.txt"
    outside.parent.mkdir()
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text(
        "from pathlib import Path\n"
        "try:\n"
        f"    Path({str(outside)!r}).write_text('x')\n"
        "    print('WROTE')\n"
        "except PermissionError:\n"
        "    print('REFUSED')\n"
        f"Path({str(script.parent / 'made_by_script.txt')!r}).write_text('x')\n" + TRAIN
    )
    result = capture_run(script, timeout=60)
    assert not outside.exists()
    assert not (script.parent / "made_by_script.txt").exists()  # not even the user's own folder
    if "file writes confined to the run's folder" in result.sandbox:
        assert "REFUSED" in result.stdout_tail
    else:  # the system refused Landlock: the report must say so
        assert any("not confined" in line for line in result.sandbox)


def test_the_network_is_cut_off_or_the_report_says_it_is_not(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as error:\n"
        "    print('NO NETWORK', type(error).__name__)\n"
        "print(open('/proc/net/dev').read().count(':'))\n" + TRAIN
    )
    result = capture_run(script, timeout=60)
    assert result.status == "ok", result.message
    if "network cut off" in result.sandbox:
        assert "NO NETWORK" in result.stdout_tail
        assert result.stdout_tail.split("NO NETWORK")[1].split()[1] == "1"  # only loopback
    else:
        assert any("network not cut off" in line for line in result.sandbox)


def test_forked_children_are_stopped_with_the_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        print('CHILD', os.getpid(), flush=True)\n"
        "        time.sleep(1000)\n"
        "        os._exit(0)\n"
        "while True:\n"
        "    time.sleep(0.1)\n"
    )
    began = time.monotonic()
    result = capture_run(script, timeout=4)
    assert result.status == "timeout"
    assert "wall-clock limit" in result.message
    assert time.monotonic() - began < 30
    children = [int(line.split()[1]) for line in result.stdout_tail.splitlines() if "CHILD" in line]
    assert len(children) == 3
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.2)
    assert alive == []


ESCAPING_CHILD = """
import os, time
if os.fork() == 0:
    os.setsid()  # a new session: the script's process group no longer holds it
    if os.fork() == 0:  # and a grandchild whose parent exits: a daemon
        print("CHILD", os.getpid(), flush=True)
        time.sleep(1000)
    os._exit(0)
time.sleep(0.5)
"""


@pytest.mark.parametrize("ending", ["exits", "loops forever"])
def test_children_that_leave_the_process_group_are_stopped_too(tmp_path: Path, ending) -> None:
    script = tmp_path / "train.py"
    tail = "while True:\n    time.sleep(0.1)\n" if ending == "loops forever" else ""
    script.write_text(ESCAPING_CHILD + tail)
    result = capture_run(script, timeout=3)
    children = [int(line.split()[1]) for line in result.stdout_tail.splitlines() if "CHILD" in line]
    assert len(children) == 1, result.stdout_tail
    deadline = time.monotonic() + 5
    while _running(children[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(children[0])


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie has stopped
    except FileNotFoundError:
        return False


def test_a_script_that_allocates_far_too_much_is_stopped(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\nblocks = []\nwhile True:\n    blocks.append(torch.ones(2**26))\n"
    )
    result = capture_run(script, timeout=60, memory_mb=1024)
    assert result.status == "memory", result.message
    assert "1024 MB memory limit" in result.message


def test_the_environment_is_scrubbed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    script = tmp_path / "train.py"
    script.write_text(
        "import os\nprint('SECRET' if 'AWS_SECRET_ACCESS_KEY' in os.environ else 'CLEAN')\n" + TRAIN
    )
    result = capture_run(script, timeout=60)
    assert "CLEAN" in result.stdout_tail and os.environ["AWS_SECRET_ACCESS_KEY"] == "do-not-leak"
