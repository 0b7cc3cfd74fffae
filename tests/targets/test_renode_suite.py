"""The Renode CI set-up, read the way Renode reads it, without Renode.

Renode's test runner (tests/robot_tests_provider.py in renode/renode) builds the suite with Robot
Framework and gives every test that has no setup of its own 'Reset Emulation', and every test with no
teardown of its own Renode's 'Test Teardown', which ends in 'Reset Emulation'. A machine booted once
in the suite setup is therefore gone before the first test talks to it. These checks parse
renode/tinyrobust.robot with Robot Framework's own API and require each test to declare its setup and
teardown and to boot its machine in that setup; and they require the workflow to pin the Renode
revision (the action's default is master, rebuilt whenever it moves).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from robot.api import TestSuite as RobotSuite

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "renode" / "tinyrobust.robot"
WORKFLOW = REPO / ".github" / "workflows" / "renode.yml"
ACTION = "antmicro/renode-test-action@"


def _norm(name: str) -> str:
    """Robot Framework matches keyword names ignoring case, spaces and underscores."""
    return re.sub(r"[\s_]", "", name).lower()


def _calls(step: object, user: dict[str, object], depth: int = 0) -> Iterator[str]:
    """Keyword names ``step`` runs, in order, with the suite's own keywords expanded."""
    if type(step).__name__ == "Keyword":  # a keyword call (Robot's running model)
        name = _norm(step.name)  # type: ignore[attr-defined]
        if name in user and depth < 20:
            yield from _calls(user[name], user, depth + 1)
        else:
            yield name
        return
    for child in getattr(step, "body", ()):  # user keyword bodies, IF/FOR/TRY blocks
        yield from _calls(child, user, depth)


def suite_problems(robot_file: Path) -> list[str]:
    """What would break the suite under Renode's runner; empty when nothing would."""
    suite = RobotSuite.from_file_system(robot_file)
    user = {_norm(kw.name): kw for kw in suite.resource.keywords}
    problems = []
    for test in suite.tests:
        if not test.setup:
            problems.append(f"{test.name}: no test setup of its own, so Renode's runner makes it 'Reset Emulation'")
        else:
            calls = list(_calls(test.setup, user))
            if "startemulation" not in calls:
                problems.append(f"{test.name}: its setup '{test.setup.name}' does not boot the firmware")
            elif "resetemulation" in calls[calls.index("startemulation"):]:
                problems.append(f"{test.name}: its setup '{test.setup.name}' resets the emulation it booted")
        if not test.teardown:
            problems.append(f"{test.name}: no test teardown of its own, so Renode's runner adds one that "
                            "resets the emulation")
    if not suite.tests:
        problems.append(f"{robot_file}: no test cases")
    return problems


def workflow_problems(workflow_text: str) -> list[str]:
    """Every renode-test-action step must pin renode-revision to a commit; empty when all do."""
    workflow = yaml.safe_load(workflow_text)
    steps = [(job_name, step) for job_name, job in (workflow.get("jobs") or {}).items()
             for step in job.get("steps", []) if str(step.get("uses", "")).startswith(ACTION)]
    if not steps:
        return [f"no step uses {ACTION}…"]
    problems = []
    for job_name, step in steps:
        revision = str((step.get("with") or {}).get("renode-revision", ""))
        if not re.fullmatch(r"[0-9a-f]{40}", revision):
            problems.append(f"job {job_name}: renode-revision {revision or '(unset, so master)'} is not a commit hash")
    return problems


# ---------------------------------------------------------------- the shipped files


def test_shipped_suite_declares_its_own_test_setup_and_teardown() -> None:
    assert suite_problems(SUITE) == []
    suite = RobotSuite.from_file_system(SUITE)
    assert len(suite.tests) == 3
    # What the runner leaves in place: its defaults apply only where these are empty.
    assert {(t.setup.name, t.teardown.name) for t in suite.tests} == {("Boot Firmware", "Shut Down Firmware")}


def test_shipped_workflow_pins_the_renode_revision() -> None:
    assert workflow_problems(WORKFLOW.read_text()) == []


# ---------------------------------------------------------------- the checks fire


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = SUITE.read_text()
    assert old in text
    path = tmp_path / "tinyrobust.robot"
    path.write_text(text.replace(old, new))
    return path


def test_suite_without_test_setup_is_caught(tmp_path: Path) -> None:
    problems = suite_problems(_variant(tmp_path, "Test Setup        Boot Firmware\n", ""))
    assert len(problems) == 3 and all("'Reset Emulation'" in p for p in problems)


def test_suite_without_test_teardown_is_caught(tmp_path: Path) -> None:
    problems = suite_problems(_variant(tmp_path, "Test Teardown     Shut Down Firmware\n", ""))
    assert len(problems) == 3 and all("no test teardown" in p for p in problems)


def test_suite_booted_once_in_suite_setup_is_caught(tmp_path: Path) -> None:
    # The first version of this suite: boot in Suite Setup, nothing per test.
    path = _variant(tmp_path, "Suite Setup       Setup\n", "Suite Setup       Boot Firmware\n")
    path.write_text(path.read_text().replace("Test Setup        Boot Firmware\n", "")
                    .replace("Test Teardown     Shut Down Firmware\n", ""))
    assert len(suite_problems(path)) == 6


def test_setup_that_does_not_boot_or_resets_after_boot_is_caught(tmp_path: Path) -> None:
    idle = suite_problems(_variant(tmp_path, "Test Setup        Boot Firmware", "Test Setup        No Operation"))
    assert len(idle) == 3 and all("does not boot" in p for p in idle)
    reset = suite_problems(_variant(tmp_path, "    Connect To Firmware       ${PORT}\n",
                                    "    Connect To Firmware       ${PORT}\n    Reset Emulation\n"))
    assert len(reset) == 3 and all("resets the emulation it booted" in p for p in reset)


def test_per_test_override_is_read(tmp_path: Path) -> None:
    # A [Setup] on one test replaces the suite's Test Setup for that test only.
    path = _variant(tmp_path, "    Golden Infers Should Match              ${GOLDEN}\n",
                    "    [Setup]    Reset Emulation\n    Golden Infers Should Match              ${GOLDEN}\n")
    assert suite_problems(path) == ["Golden Inferences Are Bit Exact: its setup 'Reset Emulation' does not boot "
                                    "the firmware"]


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: re.sub(r"\n\s*renode-revision: \S+", "", t), "(unset, so master)"),
    (lambda t: re.sub(r"renode-revision: \S+", "renode-revision: master", t), "master is not"),
    (lambda t: re.sub(r"renode-revision: \S+", "renode-revision: v1.16.1", t), "v1.16.1 is not"),
    (lambda t: t.replace(ACTION, "someone/else@"), "no step uses"),
])
def test_unpinned_workflow_is_caught(edit, fragment: str) -> None:  # type: ignore[no-untyped-def]
    text = edit(WORKFLOW.read_text())
    assert text != WORKFLOW.read_text()
    problems = workflow_problems(text)
    assert len(problems) == 1 and fragment in problems[0], problems
