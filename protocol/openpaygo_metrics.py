"""The OpenPAYGO Metrics data formats our units speak (spec v1.0.0-rc1, ``openpaygo/metrics``).

A data format names the order of a request's values, so that a condensed request can leave the
names out. Historical steps: battery voltage, state of charge, PV energy and load energy over the
step (Wh), battery temperature; one step per 20 minutes.
"""

from __future__ import annotations

from typing import Any

DEFAULT_DATA_FORMAT_ID = 1
DATA_FORMATS: dict[int, dict[str, Any]] = {
    1: {
        "id": 1,
        "data_order": ["token_count", "firmware_version"],
        "historical_data_order": ["batt_v", "soc", "pv_wh", "load_wh", "batt_temp_c"],
        "historical_data_interval": 1200,
    }
}
