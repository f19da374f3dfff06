"""The wheel carries the kernels as fastmlp.kernels and the shipped data."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_kernels_and_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("fastmlp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ["__init__", "network", "dense", "activations", "losses", "optim"]:
        assert f"fastmlp/kernels/{module}.py" in names
    assert "fastmlp/data/digits.csv.gz" in names
    assert not any(name.startswith("kernels/") for name in names)
