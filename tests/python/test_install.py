"""The documented install: `cmake --install build --component python --prefix "$VIRTUAL_ENV"`."""

import os
import subprocess
import sys

BUILD = os.environ.get("METAPLAST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))


def test_install_into_a_virtual_environment(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(["cmake", "--install", BUILD, "--component", "python", "--prefix", str(venv)],
                   check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the venv's copy
    probe = ("import metaplast; print(metaplast.__file__); "
             "b = metaplast.Board('sim:?seed=1&formed=1'); print(b.read().shape); b.close(); "
             "import metaplast.pymeasure")
    out = subprocess.run([str(venv / "bin/python"), "-c", probe], check=True, capture_output=True,
                         text=True, cwd=str(tmp_path), env=env).stdout
    assert str(venv) in out.splitlines()[0]
    assert "(128, 128)" in out
