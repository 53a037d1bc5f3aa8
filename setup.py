"""nnspec's version and its dependencies, for pyproject.toml's ``dynamic`` fields.

The version is read from ``runtime/nnspec_runtime/_version.py``, the one place it is written,
and nnspec requires nnspec-runtime at exactly that version: the two are released together, and
nnspec's ``__version__`` is the runtime's. Everything else is in pyproject.toml.
"""

import re
from pathlib import Path

from setuptools import setup

_VERSION_FILE = Path(__file__).parent / "runtime" / "nnspec_runtime" / "_version.py"
VERSION = re.search(r'^__version__ = "([^"]+)"$', _VERSION_FILE.read_text(), re.M).group(1)

# The floors are the lowest versions the whole test suite passed with (.ci/floors.txt says how
# each was found; `bash .ci/run floors` installs exactly them and runs the suite). onnxruntime
# is not here: the cpu or gpu extra picks its build.
DEPENDENCIES = [
    f"nnspec-runtime=={VERSION}",
    "numpy>=1.24",  # 1.23 makes object arrays of ragged rows (a warning, not an error)
    "onnx>=1.17",  # 1.16 cannot write opset 22, which export.opset allows
    "pydantic>=2.11",  # 2.10 writes a different JSON Schema (nnspec schema, schema.json)
    "pyyaml>=6",
    "tqdm>=4.60",
]

setup(version=VERSION, install_requires=DEPENDENCIES)
