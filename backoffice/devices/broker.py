"""Telling the MQTT broker to re-read its password file after ``paygo devices provision`` rewrote it:
the configured reload command, or a SIGHUP to the pid in the broker's pid file (Mosquitto re-reads
its password file and ACL on SIGHUP without dropping connections)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

from backoffice.config import Settings


class BrokerReloadError(RuntimeError):
    """The broker could not be told; the message says what to do."""


def reload(settings: Settings) -> str:
    """Make the broker re-read its password file; returns what was done."""
    if settings.broker_reload_command:
        cmd = shlex.split(settings.broker_reload_command)
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            raise BrokerReloadError(f"PAYGO_BROKER_RELOAD_COMMAND failed: {err}") from err
        return f"ran {settings.broker_reload_command!r}"
    path = settings.broker_pid_path
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return f"no broker pid in {path}: start the broker, or set PAYGO_BROKER_RELOAD_COMMAND"
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return f"the broker of {path} (pid {pid}) is not running; it reads the file when it starts"
    return f"sent SIGHUP to the broker (pid {pid})"
