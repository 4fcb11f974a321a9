"""Native stderr filtering: cpuinfo's noise goes, every other line a C library writes to fd 2 stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgefer.nativelog import native_stderr_filtered


def test_cpuinfo_noise_is_dropped_and_real_errors_are_kept(capfd):
    with native_stderr_filtered():
        os.write(2, b"Error in cpuinfo: failed to parse the list of possible processors\n")
        os.write(2, b"Warning in cpuinfo: /sys/devices/system/cpu/possible not found\n")
        os.write(2, b"onnxruntime cpuid_info warning: Unknown CPU vendor. cpuinfo_vendor value: 0\n")
        os.write(2, b"onnxruntime warning: cpuinfo_initialize failed. May cause CPU EP performance degradation\n")
        os.write(2, b"src/plugins/intel_cpu/thirdparty/onednn/third_party/xbyak_aarch64/src/util_impl_linux.h, 477: "
                    b"Can't open MIDR_EL1 sysfs entry\n")
        os.write(2, b"libfoo: real trouble\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "cpuinfo" not in err and "cpuid_info" not in err and "MIDR_EL1" not in err
    assert err.index("libfoo: real trouble") < err.index("after")


def test_fd2_is_restored_after_an_exception(capfd):
    try:
        with native_stderr_filtered():
            os.write(2, b"kept before the error\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"still reaches stderr\n")
    err = capfd.readouterr().err
    assert "kept before the error" in err and "still reaches stderr" in err


@pytest.mark.slow
def test_a_session_is_made_with_a_clean_stderr():
    """A whole process: a Recognizer (BlazeFace and the model, both on ONNX Runtime) predicts; nothing on stderr."""
    code = ("from edgefer import Recognizer; import sys; "
            "Recognizer('microexpnet-ck', threads=1).predict(sys.argv[1])")
    astronaut = Path(__file__).parents[1] / "fixtures" / "astronaut.png"
    result = subprocess.run([sys.executable, "-c", code, str(astronaut)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
