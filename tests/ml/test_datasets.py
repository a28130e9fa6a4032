"""Datasets: upload (CSV, Parquet), inferred types, preview, per-user scoping, bad files."""

from __future__ import annotations

import io

import pandas as pd
from fastapi.testclient import TestClient

from tests.ml.conftest import upload

CSV = "name,age,height,member,joined\nann,31,1.62,true,2024-01-02\nbo,45,1.80,false,2023-05-06\n"


def test_upload_infers_types_and_previews(fake_client: TestClient, alice: dict) -> None:
    response = upload(fake_client, alice, CSV)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rows"] == 2 and body["format"] == "csv"
    types = {c["name"]: c["dtype"] for c in body["columns"]}
    assert types == {
        "name": "categorical",
        "age": "integer",
        "height": "float",
        "member": "boolean",
        "joined": "datetime",
    }
    preview = fake_client.get(f"/v1/ml/datasets/{body['id']}/preview?limit=1", headers=alice)
    assert preview.status_code == 200
    assert preview.json()["rows"] == [
        {
            "name": "ann",
            "age": 31,
            "height": 1.62,
            "member": True,
            "joined": "2024-01-02T00:00:00.000",
        }
    ]
    listed = fake_client.get("/v1/ml/datasets", headers=alice).json()["data"]
    assert [d["id"] for d in listed] == [body["id"]]


def test_parquet_upload(fake_client: TestClient, alice: dict) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"x": [1.5, 2.5], "label": ["a", "b"]}).to_parquet(buffer)
    response = fake_client.post(
        "/v1/ml/datasets",
        headers=alice,
        files={"file": ("d.parquet", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "parquet"


def test_malformed_csv_names_the_line(fake_client: TestClient, alice: dict) -> None:
    response = upload(fake_client, alice, "a,b\n1,2\n3,4\n5,6,7\n")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "line 4" in error["message"] and error["line"] == 4


def test_empty_and_binary_files_are_rejected(fake_client: TestClient, alice: dict) -> None:
    assert upload(fake_client, alice, "").status_code == 400
    assert upload(fake_client, alice, b"a,b\n1,\xff\xfe\n").status_code == 400


def test_size_limit(ml_settings, fake_client: TestClient, alice: dict) -> None:
    ml_settings.max_dataset_bytes = 1024
    response = upload(fake_client, alice, "a,b\n" + "1,2\n" * 400)
    assert response.status_code == 413


def test_datasets_are_private_and_deletable(
    fake_client: TestClient, alice: dict, bob: dict
) -> None:
    dataset_id = upload(fake_client, alice, CSV).json()["id"]
    assert fake_client.get(f"/v1/ml/datasets/{dataset_id}", headers=bob).status_code == 404
    assert fake_client.delete(f"/v1/ml/datasets/{dataset_id}", headers=bob).status_code == 404
    assert fake_client.delete(f"/v1/ml/datasets/{dataset_id}", headers=alice).status_code == 204
    assert fake_client.get(f"/v1/ml/datasets/{dataset_id}", headers=alice).status_code == 404


def test_requires_internal_token(fake_client: TestClient) -> None:
    assert fake_client.get("/v1/ml/datasets").status_code == 401
