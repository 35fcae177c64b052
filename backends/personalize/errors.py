"""botocore exceptions translated to the backend's domain errors: one table, one function.

The table is keyed by what identifies a failure: the error code of a service answer
(`ClientError`) or the class of a botocore exception raised without a usable answer
(timeouts, connection failures, missing credentials). botocore has already retried
throttling, 5xx and connection errors when an exception reaches this module.

Client-facing messages name the request field or the config key at fault; Personalize's
own message is appended (it describes the request, not our internals); the library's
exception text is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from botocore import exceptions as boto_errors

from recs.backends.errors import (
    BackendError,
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)

logger = logging.getLogger(__name__)

SERVICE_MESSAGE_LIMIT = 200
CONFIG_SECTION = "[personalize]"


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a failing call was about, so that messages can name it."""

    operation: str
    input_field: str
    resources: Mapping[str, str] = field(default_factory=dict)  # config key -> ARN sent


Translation = Callable[[Exception, CallContext], BackendError]


def _service_message(exc: Exception) -> str:
    if isinstance(exc, boto_errors.ClientError):
        message = exc.response.get("Error", {}).get("Message") or ""
        return message[:SERVICE_MESSAGE_LIMIT]
    return ""


def _error_code(exc: boto_errors.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code") or ""


def _http_status(exc: boto_errors.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _invalid_input(exc: Exception, ctx: CallContext) -> BackendError:
    detail = _service_message(exc)
    suffix = f": {detail}" if detail else ""
    return InvalidRequestError(ctx.input_field, f"rejected by Amazon Personalize{suffix}")


def _invalid_params(exc: Exception, ctx: CallContext) -> BackendError:
    return InvalidRequestError(ctx.input_field, "not accepted by the Personalize request model")


def _not_found(exc: Exception, ctx: CallContext) -> BackendError:
    detail = _service_message(exc)
    named = {key: arn for key, arn in ctx.resources.items() if arn in detail} or ctx.resources
    which = ", ".join(f"{key} = {arn}" for key, arn in named.items()) or "(no ARN)"
    return BackendMisconfiguredError(
        f"Amazon Personalize has no such resource: {which} in {CONFIG_SECTION}"
        " (deleted, not ACTIVE yet, or another region/account?)"
    )


def _no_credentials(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendMisconfiguredError(
        "no usable AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE"
        " or an instance/task role for the server process"
    )


def _rejected_credentials(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendMisconfiguredError(
        f"AWS rejected the server's credentials for {ctx.operation} ({_error_code(exc)});"
        " check the role's personalize:* permissions and the clock"
    )


def _no_region(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendMisconfiguredError(
        f"no AWS region: set region in {CONFIG_SECTION} or AWS_REGION/AWS_DEFAULT_REGION"
    )


def _timeout(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendTimeoutError(f"Amazon Personalize did not answer {ctx.operation} in time")


def _unreachable(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendUnavailableError(f"Amazon Personalize is unreachable for {ctx.operation}")


def _throttled(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendUnavailableError(
        f"Amazon Personalize is throttling {ctx.operation} (still after retries); retry later"
    )


def _server_error(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendUnavailableError(
        f"Amazon Personalize failed {ctx.operation} (still after retries); retry later"
    )


def _in_use(exc: Exception, ctx: CallContext) -> BackendError:
    """PutItems while the dataset is busy (an import or an update in progress)."""
    return BackendUnavailableError(
        f"Amazon Personalize is busy with the resource of {ctx.operation}; retry later"
    )


def _unexpected_client_error(exc: Exception, ctx: CallContext) -> BackendError:
    return BackendMisconfiguredError(
        f"Amazon Personalize refused {ctx.operation} with {_error_code(exc) or 'no error code'}"
    )


_THROTTLING_CODES = (
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
)
_CREDENTIAL_CODES = (
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "AccessDeniedException",
    "AccessDenied",
)

# The one table. Keys: a service error code, or a botocore exception class (the most
# specific class in the exception's MRO wins, so timeouts beat connection errors).
ERROR_TABLE: dict[str | type[Exception], Translation] = {
    "InvalidInputException": _invalid_input,
    "ResourceNotFoundException": _not_found,
    "ResourceInUseException": _in_use,  # personalize-events' PutItems (409)
    **dict.fromkeys(_THROTTLING_CODES, _throttled),
    **dict.fromkeys(_CREDENTIAL_CODES, _rejected_credentials),
    boto_errors.NoCredentialsError: _no_credentials,
    boto_errors.PartialCredentialsError: _no_credentials,
    boto_errors.CredentialRetrievalError: _no_credentials,
    boto_errors.NoRegionError: _no_region,
    boto_errors.ReadTimeoutError: _timeout,
    boto_errors.ConnectTimeoutError: _timeout,
    boto_errors.ConnectionError: _unreachable,  # EndpointConnectionError, proxy, TLS
    boto_errors.HTTPClientError: _unreachable,  # connection closed mid-answer
    boto_errors.ParamValidationError: _invalid_params,
    boto_errors.ClientError: _unexpected_client_error,  # 4xx with an unknown code
    boto_errors.BotoCoreError: _unreachable,
}


def translate_error(exc: Exception, ctx: CallContext) -> BackendError:
    """The domain error for a boto3 failure of the call described by `ctx`."""
    translation = _lookup(exc)
    error = translation(exc, ctx)
    logger.warning(
        "%s failed: %s -> %s (%s)",
        ctx.operation,
        _error_code(exc) if isinstance(exc, boto_errors.ClientError) else type(exc).__name__,
        type(error).__name__,
        _service_message(exc) or exc,
    )
    return error


def _lookup(exc: Exception) -> Translation:
    if isinstance(exc, boto_errors.ClientError):
        code = _error_code(exc)
        if code in ERROR_TABLE:
            return ERROR_TABLE[code]
        if _http_status(exc) >= 500:
            return _server_error
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return _unreachable
