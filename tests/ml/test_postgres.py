"""The ML service on PostgreSQL (the scale-out storage): datasets and jobs round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, internal_headers
from nemo_server.ml.app import create_app
from nemo_server.ml.settings import MLSettings
from tests.ml.conftest import FAKE, upload_frame, wait_job


@pytest.mark.integration
def test_datasets_and_jobs_on_postgres(data_dir, postgres_url: str, unique: str) -> None:
    prefix = f"t{unique}_"
    common = CommonSettings(database_url=postgres_url, database_schema_prefix=prefix)
    settings = MLSettings(common=common)
    headers = internal_headers(common, ALICE)
    try:
        with TestClient(create_app(settings, job_target=FAKE)) as client:
            frame = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0) * 2})
            dataset_id = upload_frame(client, headers, frame)
            job = client.post(
                "/v1/ml/symbolic-regression",
                headers=headers,
                json={"dataset_id": dataset_id, "target": "y", "time_budget_s": 0.2},
            ).json()
            done = wait_job(client, headers, job["id"])
            assert done["status"] == "succeeded"
            assert done["result"]["echo"]["features"] == ["x"]
    finally:
        engine = create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}ml" CASCADE'))
        engine.dispose()
