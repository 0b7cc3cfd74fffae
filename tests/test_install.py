"""The user's path from an installed wheel: build the wheel, install it into a fresh virtualenv, and from a
folder outside the checkout run `tinyrobust demo`, then the README's export and validate commands on the
shipped example (taken from the installed package, not the checkout). Each must exit 0.

The virtualenv reuses this interpreter's installed dependencies (a .pth line naming its site-packages,
after the venv's own), so only the tinyrobust wheel is installed and nothing is downloaded; the wheel
is built without build isolation when setuptools is at hand, else pip fetches it (CI reaches PyPI).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def readme_example_commands() -> list[str]:
    """The export and validate commands of the README's "Try it on the example" block, as written."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Try it on the example", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README: no command block under 'Try it on the example'"
    lines = [ln.strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln.startswith(("tinyrobust export", "tinyrobust validate"))]


def _build_wheel(out: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)]
    if importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel"):
        cmd.insert(5, "--no-build-isolation")  # the interpreter has the build backend: no download
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        if "--no-build-isolation" not in cmd and re.search(r"(?i)connection|network|resolve|index", res.stderr):
            pytest.skip(f"building the wheel needs setuptools from PyPI, which is unreachable: {res.stderr[-300:]}")
        pytest.fail(f"pip wheel failed:\n{res.stderr[-3000:]}")
    return next(out.glob("tinyrobust-*.whl"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding the built wheel; returns its `tinyrobust` and the environment to run it in."""
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    base = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(base / "wheels")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=600, env=env)  # no checkout on its path
    assert res.returncode == 0, res.stderr
    # Then this interpreter's dependencies, found after the venv's own packages (so the wheel's tinyrobust
    # wins; an editable tinyrobust there is a .pth of its own, which a path line does not activate).
    (purelib / "zz_reuse_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = subprocess.run([str(py), "-c", "import tinyrobust; print(tinyrobust.__file__)"], cwd=base, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(purelib), f"tinyrobust imported from {where}, not the installed wheel"
    return venv / "bin" / "tinyrobust", env


def test_demo_then_readme_commands_from_the_installed_wheel(installed, tmp_path):
    tinyrobust, env = installed
    user = tmp_path / "user"  # outside the checkout: nothing of the repository is on hand
    user.mkdir()
    t0 = time.monotonic()
    demo = _run([str(tinyrobust), "demo"], user, env)
    demo_s = time.monotonic() - t0
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "bit-exact vs reference  597/597" in demo.stdout
    assert (user / "tinyrobust-demo" / "export" / "firmware" / "firmware.elf").is_file()
    assert "\r" not in demo.stdout and demo.stderr == "", demo.stderr
    print(f"demo from the wheel took {demo_s:.0f} s")

    # The README's commands name examples/: the installed package's copy of it, as a user would fetch it.
    shipped = Path(subprocess.run([str(tinyrobust.parent / "python"), "-c",
                                   "from tinyrobust.resources import example_file; "
                                   "print(example_file('digits_stq.h5').parent)"],
                                  cwd=user, env=env, capture_output=True, text=True, check=True).stdout.strip())
    assert "site-packages" in str(shipped)
    shutil.copytree(shipped, user / "examples")
    commands = readme_example_commands()
    assert [c.split()[1] for c in commands] == ["export", "validate", "validate"]
    for command in commands:
        argv = shlex.split(command)
        res = _run([str(tinyrobust), *argv[1:]], user, env)
        assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
    assert (user / "out" / "firmware" / "firmware.elf").is_file()
