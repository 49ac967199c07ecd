"""Telling the broker to re-read its password file, without the development stack: a configured
command, or a SIGHUP to the pid in the broker's pid file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backoffice.config import load_settings
from backoffice.devices import broker
from tests.support import wait_for


def test_the_reload_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "reloaded"
    settings = load_settings(environment="test", broker_reload_command=f"touch {marker}")
    assert "ran" in broker.reload(settings)
    assert marker.exists()


def test_a_failing_reload_command_says_so(tmp_path: Path) -> None:
    settings = load_settings(environment="test", broker_reload_command=f"{tmp_path}/no-such-program")
    with pytest.raises(broker.BrokerReloadError, match="PAYGO_BROKER_RELOAD_COMMAND"):
        broker.reload(settings)


def test_the_broker_in_the_pid_file_gets_a_sighup(tmp_path: Path) -> None:
    # A stand-in broker that writes a line when it receives SIGHUP (as Mosquitto re-reads its files).
    hup = tmp_path / "hup"
    code = (f"import signal, time, pathlib\nsignal.signal(signal.SIGHUP, lambda *_: pathlib.Path({str(hup)!r})"
            ".write_text('hup'))\nprint('ready', flush=True)\nwhile True: time.sleep(0.1)")  # fmt: skip
    stand_in = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert stand_in.stdout is not None and stand_in.stdout.readline() == "ready\n"
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{stand_in.pid}\n")
        settings = load_settings(environment="test", broker_pid_file=pid_file)
        assert str(stand_in.pid) in broker.reload(settings)
        wait_for(hup.exists, timeout=10, what="the SIGHUP")
    finally:
        stand_in.send_signal(signal.SIGTERM)
        stand_in.wait(10)


def test_no_broker_is_not_an_error_but_is_reported(tmp_path: Path) -> None:
    settings = load_settings(environment="test", broker_pid_file=tmp_path / "absent.pid")
    assert "no broker pid" in broker.reload(settings)
    settings = load_settings(environment="test", broker_pid_file=tmp_path / "gone.pid")
    (tmp_path / "gone.pid").write_text("999999999\n")
    assert "not running" in broker.reload(settings)
