"""What every command group shares: the consoles, the settings and logging."""

from __future__ import annotations

import logging
import sys

from rich.console import Console

from backoffice.config import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def settings_or_exit() -> Settings:
    """The settings (a bad value is reported in one line by ``main``)."""
    return load_settings()


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
