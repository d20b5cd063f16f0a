//! Answers of the HTTP endpoint: a [`Reply`] (JSON, a page, text, an asset) or a
//! [`Failure`], and the one table from gRPC status codes to HTTP statuses, so a refusal
//! reads the same over both protocols:
//!
//! | code | HTTP |
//! |---|---|
//! | `INVALID_ARGUMENT`, `OUT_OF_RANGE` | 400 |
//! | `UNAUTHENTICATED` | 401 (with `WWW-Authenticate: Bearer`) |
//! | `PERMISSION_DENIED` | 403 |
//! | `NOT_FOUND` | 404 |
//! | `FAILED_PRECONDITION`, `ABORTED`, `ALREADY_EXISTS` | 409: the server's state, not the request, stands in the way (412 is for HTTP's own `If-*` preconditions) |
//! | `RESOURCE_EXHAUSTED` | 429 (413 for a body over the size limit) |
//! | `UNIMPLEMENTED` | 501 (405 for a method a path does not take) |
//! | `UNAVAILABLE` | 503 |
//! | `DEADLINE_EXCEEDED` | 504 |
//! | `INTERNAL`, `DATA_LOSS`, `UNKNOWN`, `CANCELLED` | 500 |
//!
//! A failure of the JSON API is `{"error": {"code": "NOT_FOUND", "message": "..."}}`; a
//! failure of a catalog page is a page saying the same, every value escaped.

use bytes::Bytes;
use http::{HeaderValue, Method as HttpMethod, Response, StatusCode, header};
use http_body_util::Full;
use tonic::Code;

use super::html;
use crate::domain::Error;

/// The policy of every answer: scripts and styles only from this server's `/static/`, no
/// frames, no plugins, forms only to this server. Inline SVG is markup, not a resource, so
/// the catalog's charts need nothing more.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The HTTP status of a gRPC status code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Internal | Code::DataLoss | Code::Unknown | Code::Cancelled => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The name a code has on the wire (`NOT_FOUND`), as `{"error": {"code"}}` spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A successful answer.
pub struct Reply {
    body: Bytes,
    content_type: &'static str,
    /// Whether a browser may keep it (the static assets); live data is never cached.
    cacheable: bool,
}

impl Reply {
    pub fn json(value: serde_json::Value) -> Reply {
        Reply::json_text(serde_json::to_vec(&value).unwrap_or_default())
    }

    /// JSON already serialized.
    pub fn json_text(body: Vec<u8>) -> Reply {
        Reply { body: Bytes::from(body), content_type: "application/json", cacheable: false }
    }

    pub fn html(page: String) -> Reply {
        Reply { body: Bytes::from(page), content_type: "text/html; charset=utf-8", cacheable: false }
    }

    pub fn text(text: String, content_type: &'static str) -> Reply {
        Reply { body: Bytes::from(text), content_type, cacheable: false }
    }

    pub fn asset(text: &'static str, content_type: &'static str) -> Reply {
        Reply { body: Bytes::from_static(text.as_bytes()), content_type, cacheable: true }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        let cache = if self.cacheable { "public, max-age=300" } else { "no-store" };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        response
    }
}

/// A refusal or failure, answered as JSON (`api`) or as a page.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    code: Code,
    message: String,
    api: bool,
    /// For 405: the method the path takes.
    allow: Option<HttpMethod>,
}

impl Failure {
    pub fn new(status: StatusCode, code: Code, message: String, api: bool) -> Failure {
        Failure { status, code, message, api, allow: None }
    }

    /// A domain error, with the status its code has.
    pub fn from_error(error: Error, api: bool) -> Failure {
        let code = crate::error::code(&error);
        Failure::new(http_status(code), code, crate::error::client_message(&error), api)
    }

    /// No such path. The path itself is not repeated.
    pub fn not_found(path: &str) -> Failure {
        let api = path.starts_with("/v1/");
        let message = if api {
            "no such endpoint: the API is described at /v1/openapi.json"
        } else {
            "no such page: the catalog starts at /"
        };
        Failure::new(StatusCode::NOT_FOUND, Code::NotFound, message.into(), api)
    }

    /// A method the path does not take.
    pub fn method_not_allowed(allowed: &HttpMethod, api: bool) -> Failure {
        Failure {
            allow: Some(allowed.clone()),
            ..Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                format!("this path takes {allowed} requests"),
                api,
            )
        }
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let reply = if self.api {
            Reply::json(serde_json::json!({
                "error": {"code": code_name(self.code), "message": self.message}
            }))
        } else {
            Reply::html(html::error_page(self.status, &self.message))
        };
        let mut response = reply.into_response();
        *response.status_mut() = self.status;
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow
            && let Ok(value) = HeaderValue::from_str(allow.as_str())
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response
    }
}

/// The headers every answer carries: no content sniffing, the content policy, no framing,
/// no referrer leaving the catalog.
pub fn secure(response: &mut Response<Full<Bytes>>) {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_its_status_and_name() {
        let cases = [
            (Code::InvalidArgument, 400, "INVALID_ARGUMENT"),
            (Code::Unauthenticated, 401, "UNAUTHENTICATED"),
            (Code::PermissionDenied, 403, "PERMISSION_DENIED"),
            (Code::NotFound, 404, "NOT_FOUND"),
            (Code::FailedPrecondition, 409, "FAILED_PRECONDITION"),
            (Code::ResourceExhausted, 429, "RESOURCE_EXHAUSTED"),
            (Code::Unavailable, 503, "UNAVAILABLE"),
            (Code::DeadlineExceeded, 504, "DEADLINE_EXCEEDED"),
            (Code::Internal, 500, "INTERNAL"),
            (Code::DataLoss, 500, "DATA_LOSS"),
        ];
        for (code, status, name) in cases {
            assert_eq!(http_status(code).as_u16(), status, "{name}");
            assert_eq!(code_name(code), name);
        }
    }

    #[test]
    fn a_failure_is_json_for_the_api_and_carries_the_security_headers() {
        let failure = Failure::from_error(Error::NotFound("feature view 'x' is not there".into()), true);
        let mut response = failure.into_response();
        secure(&mut response);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let refused = Failure::from_error(Error::NoCredentials("send a token".into()), true).into_response();
        assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
