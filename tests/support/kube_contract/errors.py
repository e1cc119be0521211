"""Status objects as the Kubernetes API server returns them for failed requests.

Every error leaves the server as a `meta/v1 Status` with `status: Failure`, a machine
`reason`, a human `message` and `details` naming the object (`name`, `group` when the
resource is not in the core group, and `kind`: the plural resource name for NotFound,
AlreadyExists and Conflict, the Kind for Invalid). The kubernetes Python client turns
them into `ApiException` (the dynamic client into its subclasses) with `.status` set
to the HTTP code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


@dataclass
class FieldError:
    """One entry of an Invalid status: `<field>: <type>: <detail>` like apimachinery's field.Error."""

    kind: str  # FieldValueInvalid, FieldValueRequired, FieldValueForbidden, ...
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    _LABELS: ClassVar[dict[str, str]] = {
        "FieldValueInvalid": "Invalid value",
        "FieldValueRequired": "Required value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueNotFound": "Not found",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueTooLong": "Too long",
        "FieldValueTypeInvalid": "Invalid value",
    }

    def body(self) -> str:
        text = self._LABELS.get(self.kind, self.kind)
        if self.has_value:
            text += ": " + json.dumps(self.value, sort_keys=True)
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict:
        return {"reason": self.kind, "message": self.body(), "field": self.field}


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, detail, value, True)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail)


def not_found(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", path, "", value, True)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, "", value, True)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", path, detail, value, True)


def too_long(path: str, limit: int) -> FieldError:
    return FieldError("FieldValueTooLong", path, f"must have at most {limit} bytes")


@dataclass
class ApiError(Exception):
    """An error answer of the API server; `status()` is the Status object sent back."""

    code: int
    message: str
    reason: str = ""
    details: dict = field(default_factory=dict)

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason or REASONS.get(self.code, "Unknown"),
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"


def _details(resource, name: str, kind: str) -> dict:
    details = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = kind
    return details


def not_found_error(resource, name: str) -> ApiError:
    return ApiError(
        404, f'{resource.qualified} "{name}" not found', "NotFound", _details(resource, name, resource.plural)
    )


def already_exists_error(resource, name: str) -> ApiError:
    return ApiError(
        409,
        f'{resource.qualified} "{name}" already exists',
        "AlreadyExists",
        _details(resource, name, resource.plural),
    )


def conflict_error(resource, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        "Conflict",
        _details(resource, name, resource.plural),
    )


def invalid_error(resource, name: str, errors: list[FieldError]) -> ApiError:
    text = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details = _details(resource, name, resource.kind)
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, f'{resource.qualified_kind} "{name}" is invalid: {text}', "Invalid", details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def path_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def method_not_allowed(method: str, what: str) -> ApiError:
    return ApiError(405, f"{method} is not supported on {what}", "MethodNotAllowed", {})


def unsupported_media_type(content_type: str, supported: list[str]) -> ApiError:
    return ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(supported)} (got {content_type or 'none'})",
        "UnsupportedMediaType",
        {},
    )
