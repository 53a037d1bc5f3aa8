"""Check that the installed versions are exactly the pins of a floors file (``name==version``
lines), so that the floors job cannot pass on newer versions than it claims to test."""

import sys
from importlib import metadata

wrong = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        got = metadata.version(name)
    except metadata.PackageNotFoundError:
        got = "not installed"
    if got != want:
        wrong.append(f"{name}: expected {want}, got {got}")
    else:
        print(f"floor {name}=={got}")
if wrong:
    sys.exit("floors not installed as pinned: " + "; ".join(wrong))
