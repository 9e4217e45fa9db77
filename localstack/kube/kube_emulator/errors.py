"""Kubernetes `Status` errors with the API server's reasons, codes and message wording."""

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a `Status` object with HTTP status `code`."""

    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self):
        """The `Status` body."""
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rtype, name):
    details = {"name": name} if name else {}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.plural
    return details


def not_found(rtype, name):
    """`deployments.apps "web" not found`."""
    return ApiError(404, f'{rtype.group_resource} "{name}" not found', details=_details(rtype, name))


def namespace_not_found(namespace):
    """The error for a write into a namespace that does not exist."""
    return ApiError(404, f'namespaces "{namespace}" not found', details={"name": namespace, "kind": "namespaces"})


def unknown_resource():
    """No such path or resource."""
    return ApiError(404, "the server could not find the requested resource", details={})


def already_exists(rtype, name):
    """`deployments.apps "web" already exists`."""
    return ApiError(409, f'{rtype.group_resource} "{name}" already exists', "AlreadyExists",
                    _details(rtype, name))


def conflict(rtype, name):
    """The optimistic-concurrency conflict of a stale resourceVersion."""
    return ApiError(409, f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": the object has been '
                         "modified; please apply your changes to the latest version and try again",
                    "Conflict", _details(rtype, name))


def invalid(kind, group, name, field, value, detail):
    """A validation failure of one field, e.g. `Scale.autoscaling "web" is invalid: spec.replicas: ...`."""
    qualified = f"{kind}.{group}" if group else kind
    cause = f"Invalid value: {value}: {detail}"
    details = {"name": name, "kind": kind,
               "causes": [{"reason": "FieldValueInvalid", "message": cause, "field": field}]}
    if group:
        details["group"] = group
    return ApiError(422, f'{qualified} "{name}" is invalid: {field}: {cause}', details=details)


def bad_request(message):
    """A malformed request."""
    return ApiError(400, message)


def unauthorized():
    """A missing or unknown bearer token."""
    return ApiError(401, "Unauthorized")


def forbidden(user, verb, rtype, subresource, namespace, name):
    """RBAC's wording: `deployments.apps "web" is forbidden: User "readonly" cannot patch resource ...`."""
    target = f'{rtype.group_resource} "{name}"' if name else rtype.group_resource
    resource = f"{rtype.plural}/{subresource}" if subresource else rtype.plural
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{rtype.group}" {scope}')
    return ApiError(403, message, details=_details(rtype, name))


def method_not_allowed():
    """A verb the resource does not serve."""
    return ApiError(405, "the server does not allow this method on the requested resource", details={})


def unsupported_media_type(content_type):
    """A PATCH with a content type the server does not know."""
    return ApiError(415, f'the body of the request was in an unknown format - accepted media types include: '
                         "application/json-patch+json, application/merge-patch+json, "
                         "application/apply-patch+yaml, application/strategic-merge-patch+json",
                    details={})


def expired(requested, oldest):
    """The 410 a watch gets for a resourceVersion older than the retained event log."""
    return ApiError(410, f"too old resource version: {requested} ({oldest})", "Expired")
