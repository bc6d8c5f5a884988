//! The one shape every API error takes: `{"error": {"code": "...", "message": "..."}}`, with a
//! stable snake_case `code` a client can branch on (an [`ErrorCode`], which also fixes the HTTP
//! status) and a `message` that names what was wrong (the field, the campaign, the limit). Also
//! the JSON body extractor that produces such errors for a malformed, mistyped or oversized body.
//!
//! Nothing here may echo a bearer token or any other secret back to the client.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::ApiState;
pub use super::codes::ErrorCode;
use crate::settings::Problem;

/// An error as the API answers it; its HTTP status is its code's.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `invalid_config`: every problem found, with file and key.
    pub problems: Vec<ProblemView>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; every value is listed in the schema and in docs/error-codes.md.
    pub code: ErrorCode,
    /// What was wrong, naming the field, value or limit.
    pub message: String,
    /// Only for `invalid_config`: each problem with its file and key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemView>,
}

/// One configuration problem, as `campaignd check` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProblemView {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl From<&Problem> for ProblemView {
    fn from(problem: &Problem) -> Self {
        Self {
            file: problem.file.clone(),
            key: problem.key.clone(),
            message: problem.message.clone(),
        }
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }

    pub fn unknown_campaign(id: &str) -> Self {
        Self::new(
            ErrorCode::UnknownCampaign,
            format!("no campaign `{id}` is configured for this token"),
        )
    }

    pub fn operator_only(what: &str) -> Self {
        Self::new(
            ErrorCode::OperatorOnly,
            format!(
                "{what} needs an operator token (no tenant, role operator); this token is not one"
            ),
        )
    }

    /// A read-only token on a route that changes something.
    pub fn read_only(what: &str) -> Self {
        Self::new(
            ErrorCode::ReadOnlyToken,
            format!("{what} changes something, and this token's role is read-only"),
        )
    }

    /// A failure inside campaignd: logged in full, answered without internals.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "{context}");
        Self::new(
            ErrorCode::Internal,
            format!("{context}; the daemon log has the details"),
        )
    }
}

impl ApiError {
    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                problems: self.problems,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body; an empty body gives `T::default()`. Errors name the field that was wrong
/// and the line and column, and a body over `api.body_limit_bytes` is answered 413.
pub struct JsonBody<T>(pub T);

impl<T> FromRequest<ApiState> for JsonBody<T>
where
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// The request body's bytes as sent, for a handler that needs them whole (to compare a retried
/// body with the first one); a body over `api.body_limit_bytes` is answered 413, one that takes
/// longer than `api.body_timeout_secs` to arrive 408.
pub struct RawBody(pub Bytes);

impl FromRequest<ApiState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.body_limit();
        let timeout = state.body_timeout();
        // The whole body, not each piece of it: a client trickling a byte a second must not hold a
        // connection (and its descriptor) for as long as it likes.
        let Ok(read) = tokio::time::timeout(timeout, Bytes::from_request(req, state)).await else {
            return Err(ApiError::new(
                ErrorCode::BodyTimeout,
                format!(
                    "the request body did not arrive within {} s (api.body_timeout_secs)",
                    timeout.as_secs()
                ),
            ));
        };
        read.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the request body is larger than {limit} bytes (api.body_limit_bytes)"),
                )
            } else {
                ApiError::new(
                    ErrorCode::UnreadableBody,
                    format!(
                        "the request body could not be read: {}",
                        rejection.body_text()
                    ),
                )
            }
        })
    }
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde also reads a struct from a JSON array, field by field in order, so `[true]` would
    // pass for `{"dry_run": true}`. Every body of this API is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the body is a JSON array; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("field `{path}`: ")
        };
        json_error(&at, &err.into_inner())
    })?;
    deserializer.end().map_err(|err| json_error("", &err))?;
    Ok(value)
}

fn json_error(at: &str, err: &serde_json::Error) -> ApiError {
    if err.is_syntax() || err.is_eof() {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {at}{err}"),
        )
    } else {
        ApiError::new(ErrorCode::InvalidBody, format!("{at}{err}"))
    }
}

/// A batch body: refused when empty (the message shows `example`), else parsed as [`parse_json`].
pub fn parse_batch<T: DeserializeOwned>(body: &[u8], example: &str) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("the body is empty: send {example}"),
        ));
    }
    parse_json(body)
}

/// One batch item as `T`, or what is wrong with it, naming the field.
pub fn parse_item<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("field `{path}`: ")
        };
        format!("{at}{}", err.into_inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        dry_run: bool,
    }

    #[test]
    fn an_array_is_not_taken_for_an_object() {
        let err = parse_json::<Sample>(b" [true]").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidBody);
        assert!(err.message.contains("array"), "{}", err.message);
        assert!(parse_json::<Sample>(br#"{"dry_run": true}"#).is_ok_and(|s| s.dry_run));
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_json::<Sample>(br#"{"dry_run": "yes"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidBody);
        assert!(
            err.message.starts_with("field `dry_run`"),
            "{}",
            err.message
        );

        let err = parse_json::<Sample>(br#"{"dry_rn": true}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidBody);
        assert!(err.message.contains("dry_rn"), "{}", err.message);

        let err = parse_json::<Sample>(br#"{"dry_run": tru"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedJson);
        assert!(err.message.contains("dry_run"), "{}", err.message);

        let err = parse_json::<Sample>(br#"{} {}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedJson);

        assert!(
            parse_json::<Sample>(br#"{"dry_run": true}"#)
                .unwrap()
                .dry_run
        );
    }
}
