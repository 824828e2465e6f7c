//! [`ApiError`]: the only place an error becomes an HTTP status and a JSON
//! body (`{"error": {"code", "message"}}`), with codes that never change.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::dto::{ErrorBody, ErrorResponse};
use crate::queue::QueueError;

/// A failed request: a stable code, its status, and a message naming what
/// was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The stable code (`docs/api.md`).
    pub code: &'static str,
    /// What was wrong, naming the queue, field or token.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: no token, or one the server does not know.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token's role is too low.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400: malformed JSON or a bad field (the message names it).
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404: no such route or resource.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 413: the request body exceeds the limit.
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 408: the request took longer than the server's limit.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", message)
    }

    /// 431: the request's headers are too large.
    pub fn headers_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            message,
        )
    }

    /// 503: the server is shutting down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: a failure on our side; logged with its cause.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> ApiError {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            QueueError::InvalidName { .. } => (S::BAD_REQUEST, "invalid_name"),
            QueueError::UnknownQueue { .. } => (S::NOT_FOUND, "unknown_queue"),
            QueueError::AlreadyDeclared { .. } => (S::CONFLICT, "queue_exists_different"),
            QueueError::InvalidSpec { .. }
            | QueueError::MissingPayload { .. }
            | QueueError::EmptyBatch { .. } => (S::BAD_REQUEST, "invalid_request"),
            QueueError::Exclusive { .. } => (S::FORBIDDEN, "exclusive_queue"),
            QueueError::InUseAsDeadLetterQueue { .. } => (S::CONFLICT, "queue_in_use"),
            QueueError::PayloadTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            QueueError::BatchTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "batch_too_large"),
            QueueError::QueueFull { .. } => (S::CONFLICT, "queue_full"),
            QueueError::InvalidLease { .. } => (S::BAD_REQUEST, "invalid_request"),
            QueueError::InvalidLeaseToken { .. } => (S::BAD_REQUEST, "invalid_lease"),
            QueueError::StaleLease { .. } => (S::CONFLICT, "stale_lease"),
            QueueError::Storage { .. } => {
                tracing::error!(cause = %format!("{:#}", anyhow::Error::new(e)), "storage failed");
                return ApiError::internal(format!("{message}; see the server log"));
            }
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse { error: self.body() };
        (self.status, Json(body)).into_response()
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s: a body over the limit is
/// `payload_too_large`, anything else `invalid_request` naming the field.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::payload_too_large("request body exceeds the server's body limit"),
            ),
            Err(rejection) => Err(ApiError::invalid_request(rejection.body_text())),
        }
    }
}
