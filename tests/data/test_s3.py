"""Reading s3:// paths through fsspec/s3fs against a real moto S3 server on loopback."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from crimecast.data.load import load_incidents
from crimecast.errors import DataFileError
from tests.conftest import lapd_csv, lapd_row

boto3 = pytest.importorskip("boto3")
s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()  # filesystems are cached per endpoint
    yield endpoint
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


def test_reads_gzipped_csv_from_s3(s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="crime")
    body = gzip.compress(lapd_csv([lapd_row(), lapd_row(DR_NO="2")]).encode())
    client.put_object(Bucket="crime", Key="lapd/feb.csv.gz", Body=body)
    loaded = load_incidents(["s3://crime/lapd/feb.csv.gz"])
    assert loaded.parsed["incident_id"].to_list() == ["240100001", "2"]
    assert loaded.parsed["source_file"].unique().to_list() == ["s3://crime/lapd/feb.csv.gz"]


def test_missing_s3_object_names_the_uri(s3_endpoint: str) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="crime")
    with pytest.raises(DataFileError) as err:
        load_incidents(["s3://crime/none.csv"])
    assert str(err.value) == "data file 's3://crime/none.csv' does not exist. Check the URI."
