"""The domain's exceptions. Each carries its HTTP status; `api.errors` renders them."""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every error the sidecar reports to a client."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(SidecarError):
    status = 400
    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class BadRequest(SidecarError):
    status = 400
    code = "bad_request"


class Unauthorized(SidecarError):
    status = 401
    code = "unauthorized"


class NotFound(SidecarError):
    status = 404
    code = "not_found"


class Conflict(SidecarError):
    status = 409
    code = "conflict"


class PayloadTooLarge(SidecarError):
    status = 413
    code = "too_large"


class NotAnImage(SidecarError):
    status = 415
    code = "unsupported_media_type"


class DatabaseUnavailable(SidecarError):
    """PostgreSQL did not answer in time; the client should retry."""

    status = 503
    code = "database_unavailable"
    retry_after_seconds = 5


class StorageError(SidecarError):
    """The blob store failed (StorageFull when it is out of space)."""

    status = 500
    code = "storage_error"


class StorageFull(StorageError):
    status = 507
    code = "storage_full"
