"""A spec path that is not a regular file is refused before it is opened: a FIFO would block
``nnspec validate`` forever, ``/dev/zero`` would never end."""

from __future__ import annotations

import os
import threading

import pytest

from nnspec import cli


def _validate(path) -> list:
    out: list = []
    t = threading.Thread(target=lambda: out.append(cli.main(["validate", str(path)])))
    t.daemon = True
    t.start()
    t.join(20)
    return out


def test_a_fifo_as_the_spec_is_refused_without_blocking(tmp_path, capfd):
    os.mkfifo(tmp_path / "s.yaml")
    assert _validate(tmp_path / "s.yaml") == [2]
    err = capfd.readouterr().err
    assert "s.yaml: is a FIFO (named pipe), which would block; expected a regular spec" in err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_as_the_spec_is_refused(capfd, device):
    assert _validate(device) == [2]
    assert (
        f"{device}: is a character device; expected a regular spec file" in capfd.readouterr().err
    )
