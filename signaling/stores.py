"""Where a server's encrypted blobs live, from its settings: recordings, case-file documents, export results
(local directories under the data directory, or prefixes of one S3 bucket). Light: the operator's commands
(signaling/cli_admin.py) use it without the server."""

from __future__ import annotations

from recordings.storage import LocalStorage, RecordingStorage, S3Storage
from signaling.config import Settings


def recording_storage(settings: Settings) -> RecordingStorage:
    if settings.s3_bucket:
        return S3Storage(bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint)
    return LocalStorage(settings.data_dir / "recordings")


def document_storage(settings: Settings) -> RecordingStorage:
    if settings.s3_bucket:
        return S3Storage(bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint, prefix="documents/")
    return LocalStorage(settings.data_dir / "documents")


def export_storage(settings: Settings) -> RecordingStorage:
    """Export jobs' results, encrypted (recordings/export_job.py): beside the recordings, never inside them."""
    if settings.s3_bucket:
        return S3Storage(bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint, prefix="exports/")
    return LocalStorage(settings.data_dir / "exports")
