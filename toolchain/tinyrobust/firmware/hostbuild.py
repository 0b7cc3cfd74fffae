"""Host builds of the kernel library (shared objects for ctypes, executables for the kernel runner)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .. import processes
from ..errors import BuildError, EnvironmentProblem
from .sources import WARNING_FLAGS

HOST_CFLAGS = (*WARNING_FLAGS, "-fPIC")
SANITIZE_FLAGS = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all")
def host_compiler() -> str:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise EnvironmentProblem("no host C compiler (gcc/cc) on PATH; install the Debian package gcc")
    return compiler


def _run_compiler(cmd: list[str]) -> None:
    try:
        proc = processes.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except (FileNotFoundError, PermissionError) as exc:
        raise EnvironmentProblem(f"cannot run the host C compiler {cmd[0]} ({exc.strerror})") from exc
    if proc.returncode != 0:
        raise BuildError(f"host C build failed ({' '.join(cmd)}):\n{proc.stdout}{proc.stderr}")


def _common_flags(include_dirs: Sequence[Path], sanitize: bool, extra_flags: Sequence[str]) -> list[str]:
    flags = list(HOST_CFLAGS)
    flags += list(SANITIZE_FLAGS) if sanitize else ["-O2"]
    flags += [f"-I{d}" for d in include_dirs]
    flags += list(extra_flags)
    return flags


def build_host_shared_lib(sources: Sequence[Path], include_dirs: Sequence[Path], out: Path, *,
                          sanitize: bool = False, extra_flags: Sequence[str] = ()) -> Path:
    """Compile `sources` into the shared object `out` (for ctypes).

    A sanitized .so needs libasan preloaded into the loading process (LD_PRELOAD); see
    `sanitizer_preload()`. Test drivers that want sanitizers more simply use build_host_executable.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [host_compiler(), "-shared", *_common_flags(include_dirs, sanitize, extra_flags),
           *map(str, sources), "-o", str(out)]
    _run_compiler(cmd)
    return out


def build_host_executable(sources: Sequence[Path], include_dirs: Sequence[Path], out: Path, *,
                          sanitize: bool = False, extra_flags: Sequence[str] = ()) -> Path:
    """Compile `sources` (one of them with main) into the executable `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [host_compiler(), *_common_flags(include_dirs, sanitize, extra_flags), *map(str, sources),
           "-o", str(out)]
    _run_compiler(cmd)
    return out


def sanitizer_preload() -> str:
    """Path of the libasan the host gcc links against (for LD_PRELOAD when loading a sanitized .so)."""
    proc = processes.run([host_compiler(), "-print-file-name=libasan.so"], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{host_compiler()} -print-file-name=libasan.so exited {proc.returncode}")
    return proc.stdout.strip()
