"""``paygo chaos``: the chaos run on the HA stack (paygo/chaos.py, docs/operations.md)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from paygo.cli.common import console, settings_or_exit


def chaos(
    units: Annotated[int, typer.Option(help="simulated units reporting over MQTT (and demo customers)")] = 20,
    pause: Annotated[float, typer.Option(help="seconds of normal running before each fault")] = 10.0,
    baseline: Annotated[
        bool,
        typer.Option(help="units on firmware that takes any PUBACK as delivered: shows what a broker restart loses"),
    ] = False,
) -> None:
    """Kill things in turn while units report and payments arrive; check nothing acknowledged was lost or doubled."""
    from paygo import chaos as run

    settings = settings_or_exit()
    logging.basicConfig(level=logging.WARNING)
    if not run.run(
        settings, units=units, pause=pause, say=lambda line: console.print(line, soft_wrap=True), baseline=baseline
    ):
        raise typer.Exit(1)
