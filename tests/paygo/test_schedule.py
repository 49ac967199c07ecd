"""The one beat schedule: crontabs, an expiry and a comment for every entry, and tasks that exist."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab

from paygo import schedule
from paygo.celery_app import app


def test_every_entry_has_a_crontab_an_expiry_and_a_comment() -> None:
    source = Path(schedule.__file__).read_text()
    assert schedule.BEAT_SCHEDULE
    for name, entry in schedule.BEAT_SCHEDULE.items():
        assert isinstance(entry["schedule"], crontab), name
        assert entry["options"]["expires"] > 0, name
        line_before = source.split(f'"{name}"')[0].rstrip().splitlines()[-1]
        assert line_before.lstrip().startswith("#"), f"{name} needs a comment saying its cadence and why"


def test_every_scheduled_task_is_registered() -> None:
    app.loader.import_default_modules()  # the worker's ``include`` list
    tasks = {e["task"] for e in schedule.BEAT_SCHEDULE.values()}
    assert tasks <= set(app.tasks), tasks - set(app.tasks)
