"""The machine a bench ran on: CPU, memory, GPU and driver, library versions, backends, load at the start."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgefer.sysinfo import SystemInfo, emulation


@dataclass
class Machine:
    name: str
    cpu: str
    cores: int
    platform: str
    python: str
    memory_gb: float | None = None
    cpu_flags: list[str] = field(default_factory=list)
    governor: str | None = None
    load_average: list[float] = field(default_factory=list)  # 1, 5, 15 min, when the run started
    load_average_end: list[float] = field(default_factory=list)
    gpus: list[str] = field(default_factory=list)
    gpu_driver: str | None = None
    libraries: dict[str, str | None] = field(default_factory=dict)
    backends: list[dict[str, object]] = field(default_factory=list)
    edgefer_version: str | None = None
    git_sha: str | None = None  # of the edgefer source tree, "+dirty" when it has local changes
    #: Timings from an emulated machine (qemu-user) say nothing about a real device's speed.
    emulated: bool = False
    emulation: str = ""  # how it is emulated

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Machine:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def describe_machine(system: SystemInfo, name: str | None = None) -> Machine:
    """Everything a reader needs to judge a number, from one ``sysinfo.detect()`` plus a few reads."""
    emulated_by = emulation()
    return Machine(
        name=name or socket.gethostname(), cpu=system.cpu, cores=system.cores, platform=system.platform,
        python=system.python, memory_gb=_memory_gb(), cpu_flags=system.cpu_features or [platform.machine()],
        governor=_governor(), load_average=load_average(), gpus=system.gpus, gpu_driver=nvidia_driver(),
        libraries=system.libraries, backends=[asdict(b) for b in system.backends],
        edgefer_version=_edgefer_version(), git_sha=git_sha(), emulated=bool(emulated_by), emulation=emulated_by)


def _memory_gb() -> float | None:
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return None


def _governor() -> str | None:
    with contextlib.suppress(OSError):
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", encoding="utf-8") as handle:
            return handle.read().strip()
    return None


def _edgefer_version() -> str | None:
    from edgefer._version import __version__

    return __version__


def git_sha() -> str | None:
    """The commit of the edgefer source tree this runs from; None for an installed wheel or without git."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def load_average() -> list[float]:
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return []


def nvidia_driver() -> str | None:
    """The NVIDIA driver version through NVML, without creating a CUDA context; None without one."""
    try:
        import ctypes

        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return None
        version = ctypes.create_string_buffer(80)
        status = nvml.nvmlSystemGetDriverVersion(version, 80)
        nvml.nvmlShutdown()
        return version.value.decode() if status == 0 else None
    except (OSError, AttributeError):
        return None
