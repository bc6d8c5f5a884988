//! Every code the API answers with, in one place: the error codes of `{"error": {"code": ...}}`
//! ([`ErrorCode`], with the HTTP status each one is sent with) and the codes of a rejected
//! observation item (`items[].problems[].code`, [`item_problem_codes`]).
//!
//! The OpenAPI document's schemas for both `code` fields and `docs/error-codes.md` are generated
//! from here, so a client, the docs and the server cannot disagree. A code's string is part of the
//! API: once released it never changes meaning or spelling; a new failure gets a new code.

use std::borrow::Cow;
use std::fmt::Write as _;

use axum::http::StatusCode;
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::market::ObservationProblem;

/// Why a request failed, as `error.code` spells it. Each code has one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MalformedJson,
    InvalidBody,
    UnreadableBody,
    InvalidParameter,
    InvalidIdempotencyKey,
    MalformedRequest,
    RepeatedHeader,
    MissingToken,
    InvalidToken,
    OperatorOnly,
    ReadOnlyToken,
    UnknownCampaign,
    UnknownApproval,
    UnknownTrace,
    UnknownDecision,
    UnknownAgent,
    UnknownTenant,
    UnknownSubject,
    UnknownOrder,
    NoSuchRoute,
    MethodNotAllowed,
    BodyTimeout,
    CommandIgnored,
    CampaignFinished,
    CommandRefused,
    ReviveRefused,
    ApprovalAnswered,
    OrderSettled,
    BodyTooLarge,
    UriTooLong,
    HeadersTooLarge,
    IdempotencyKeyReused,
    InvalidConfig,
    InvalidAmendment,
    Internal,
    OrchestratorUnavailable,
    ReviveFailed,
    NotAnnounced,
    ComplianceUnavailable,
}

impl ErrorCode {
    /// Every code, in the order the docs list them (by status).
    pub const ALL: [ErrorCode; 39] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidBody,
        ErrorCode::UnreadableBody,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::MalformedRequest,
        ErrorCode::RepeatedHeader,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::OperatorOnly,
        ErrorCode::ReadOnlyToken,
        ErrorCode::UnknownCampaign,
        ErrorCode::UnknownApproval,
        ErrorCode::UnknownTrace,
        ErrorCode::UnknownDecision,
        ErrorCode::UnknownAgent,
        ErrorCode::UnknownTenant,
        ErrorCode::UnknownSubject,
        ErrorCode::UnknownOrder,
        ErrorCode::NoSuchRoute,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BodyTimeout,
        ErrorCode::CommandIgnored,
        ErrorCode::CampaignFinished,
        ErrorCode::CommandRefused,
        ErrorCode::ReviveRefused,
        ErrorCode::ApprovalAnswered,
        ErrorCode::OrderSettled,
        ErrorCode::BodyTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidAmendment,
        ErrorCode::HeadersTooLarge,
        ErrorCode::Internal,
        ErrorCode::OrchestratorUnavailable,
        ErrorCode::ReviveFailed,
        ErrorCode::NotAnnounced,
        ErrorCode::ComplianceUnavailable,
    ];

    /// The stable snake_case string a client branches on.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnreadableBody => "unreadable_body",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::RepeatedHeader => "repeated_header",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::OperatorOnly => "operator_only",
            ErrorCode::ReadOnlyToken => "read_only_token",
            ErrorCode::UnknownApproval => "unknown_approval",
            ErrorCode::ApprovalAnswered => "approval_answered",
            ErrorCode::InvalidAmendment => "invalid_amendment",
            ErrorCode::UnknownCampaign => "unknown_campaign",
            ErrorCode::UnknownTrace => "unknown_trace",
            ErrorCode::UnknownDecision => "unknown_decision",
            ErrorCode::NoSuchRoute => "no_such_route",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::CommandIgnored => "command_ignored",
            ErrorCode::CampaignFinished => "campaign_finished",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::UnknownTenant => "unknown_tenant",
            ErrorCode::UnknownSubject => "unknown_subject",
            ErrorCode::UnknownOrder => "unknown_order",
            ErrorCode::OrderSettled => "order_settled",
            ErrorCode::CommandRefused => "command_refused",
            ErrorCode::ReviveRefused => "revive_refused",
            ErrorCode::ReviveFailed => "revive_failed",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::Internal => "internal",
            ErrorCode::OrchestratorUnavailable => "orchestrator_unavailable",
            ErrorCode::NotAnnounced => "not_announced",
            ErrorCode::ComplianceUnavailable => "compliance_unavailable",
        }
    }

    /// The HTTP status every error with this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::InvalidBody
            | ErrorCode::UnreadableBody
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidIdempotencyKey
            | ErrorCode::MalformedRequest
            | ErrorCode::RepeatedHeader => StatusCode::BAD_REQUEST,
            ErrorCode::MissingToken | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::OperatorOnly | ErrorCode::ReadOnlyToken => StatusCode::FORBIDDEN,
            ErrorCode::UnknownCampaign
            | ErrorCode::UnknownApproval
            | ErrorCode::UnknownTrace
            | ErrorCode::UnknownDecision
            | ErrorCode::UnknownAgent
            | ErrorCode::UnknownTenant
            | ErrorCode::UnknownSubject
            | ErrorCode::UnknownOrder
            | ErrorCode::NoSuchRoute => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::CommandIgnored
            | ErrorCode::CampaignFinished
            | ErrorCode::CommandRefused
            | ErrorCode::ReviveRefused
            | ErrorCode::ApprovalAnswered
            | ErrorCode::OrderSettled => StatusCode::CONFLICT,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::IdempotencyKeyReused
            | ErrorCode::InvalidConfig
            | ErrorCode::InvalidAmendment => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::OrchestratorUnavailable
            | ErrorCode::ReviveFailed
            | ErrorCode::NotAnnounced
            | ErrorCode::ComplianceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// When a client gets this code, in one line (the docs' "meaning" column).
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => {
                "the body is not JSON (the message gives the field reached, line and column)"
            }
            ErrorCode::InvalidBody => {
                "a field is missing, has the wrong type or is unknown, or a value is not allowed (the message names the field and the allowed values)"
            }
            ErrorCode::UnreadableBody => "the body could not be read",
            ErrorCode::InvalidParameter => {
                "a query or path parameter is wrong (`limit`, `cursor`, `from`, a correlation id that is not a UUID, …)"
            }
            ErrorCode::InvalidIdempotencyKey => {
                "an `Idempotency-Key` that is empty, over 200 bytes or not visible ASCII"
            }
            ErrorCode::MalformedRequest => {
                "the request is not HTTP/1.1 campaignd can read (request line, header syntax, framing)"
            }
            ErrorCode::RepeatedHeader => {
                "`Authorization` or `Idempotency-Key` sent more than once; send each at most once"
            }
            ErrorCode::MissingToken => "no `Authorization: Bearer …` header",
            ErrorCode::InvalidToken => {
                "the `Authorization` header is not `Bearer <token>`, or the token is not in the config"
            }
            ErrorCode::OperatorOnly => {
                "a token that is not an operator's (a tenant's, or role read-only or approver) on an operator route (agents, reload, commands)"
            }
            ErrorCode::ReadOnlyToken => {
                "a token with role `read-only` on a route that changes something (answering an approval, setting autonomy, posting observations)"
            }
            ErrorCode::UnknownApproval => {
                "no approval request with that id is visible to this token"
            }
            ErrorCode::ApprovalAnswered => {
                "the approval request was answered already (by a person, or by its expiry); the first answer stands and `message` names it"
            }
            ErrorCode::InvalidAmendment => {
                "an approval's `amend` is outside the proposal's bounds, or the request's kind cannot be amended; the message says what is allowed"
            }
            ErrorCode::UnknownCampaign => {
                "no such campaign is configured, or it is not this token's tenant's"
            }
            ErrorCode::UnknownTrace => {
                "no decision or outcome with that correlation id is visible to this token"
            }
            ErrorCode::UnknownDecision => "no decision with that id is visible to this token",
            ErrorCode::NoSuchRoute => "no route has this path (`GET /v1/openapi.json` lists them)",
            ErrorCode::MethodNotAllowed => "the route exists but not with this method",
            ErrorCode::BodyTimeout => {
                "the body did not arrive within `api.body_timeout_secs` (default 30 s)"
            }
            ErrorCode::UnknownAgent => {
                "no agent of that name is configured (`GET /v1/agents` lists them)"
            }
            ErrorCode::UnknownTenant => {
                "no configured campaign belongs to that tenant, or it is not this token's; an operator token must name the tenant"
            }
            ErrorCode::UnknownSubject => {
                "no consent is recorded for that subject in the tenant, or the subject was erased"
            }
            ErrorCode::UnknownOrder => {
                "no order has that key (`GET /v1/campaigns/{id}/orders` lists them)"
            }
            ErrorCode::OrderSettled => {
                "the order was delivered or cancelled already; only a pending or dead-lettered order is retried or cancelled"
            }
            ErrorCode::CommandIgnored => {
                "the orchestrator has not set the campaign up yet and ignored the command"
            }
            ErrorCode::CampaignFinished => {
                "a command to a campaign that is over (achieved, or past its deadline)"
            }
            ErrorCode::CommandRefused => {
                "the orchestrator refused the command and says why (a `resume` while compliance is isolated: revive it first)"
            }
            ErrorCode::ReviveRefused => {
                "the agent is not isolated, or the orchestrator (which records every revive) is not running: revive it first"
            }
            ErrorCode::ReviveFailed => {
                "the isolated agent could not be started again (its status shows why), or its revive could not be recorded"
            }
            ErrorCode::BodyTooLarge => "the body is over `api.body_limit_bytes` (default 1 MiB)",
            ErrorCode::UriTooLong => "the request line's path and query are too long",
            ErrorCode::HeadersTooLarge => "too many headers, or headers too large in total",
            ErrorCode::IdempotencyKeyReused => {
                "an `Idempotency-Key` already used with a different body"
            }
            ErrorCode::InvalidConfig => {
                "a reload found problems; `error.problems` lists each with `file`, `key`, `message`"
            }
            ErrorCode::Internal => "a failure inside campaignd; the daemon log has the details",
            ErrorCode::OrchestratorUnavailable => {
                "the orchestrator cannot take the command now; try again"
            }
            ErrorCode::NotAnnounced => {
                "the observations were recorded but the optimizer could not be told; send the same batch again"
            }
            ErrorCode::ComplianceUnavailable => {
                "the compliance agent, which keeps the consent ledger, cannot take the request now (isolated or restarting); nothing was lost: send the same request again"
            }
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let strings = ErrorCode::ALL.map(ErrorCode::as_str);
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable, snake_case; each code has one HTTP status (docs/error-codes.md).",
            ))
            .enum_values(Some(strings))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// The code for an observation item that is not an observation at all (a missing, mistyped or
/// unknown field); the API decides it, before validation.
pub const INVALID_ITEM: &str = "invalid_item";

/// Every code a rejected observation item can carry, with its meaning: [`INVALID_ITEM`], then the
/// market layer's validation problems ([`ObservationProblem::code`]).
pub fn item_problem_codes() -> Vec<(&'static str, &'static str)> {
    let mut codes = vec![(
        INVALID_ITEM,
        "not an observation: a field is missing, has the wrong type or is unknown",
    )];
    codes.extend(
        observation_problem_samples()
            .iter()
            .map(|p| (p.code(), observation_problem_meaning(p))),
    );
    codes
}

/// The schema of `items[].problems[].code`: a string, one of [`item_problem_codes`].
pub fn item_problem_code_schema() -> Schema {
    let strings: Vec<&str> = item_problem_codes().iter().map(|(code, _)| *code).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "Stable, snake_case: `invalid_item` (not an observation) or a validation problem (docs/error-codes.md).",
        ))
        .enum_values(Some(strings))
        .into()
}

/// One value of each [`ObservationProblem`] variant, for listing their codes (the market layer
/// has no list of its own). A new variant is caught twice: [`observation_problem_meaning`] stops
/// compiling, and a test compares these with the variants serde knows.
fn observation_problem_samples() -> [ObservationProblem; 14] {
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    [
        ObservationProblem::Negative {
            field: String::new(),
            value: String::new(),
        },
        ObservationProblem::NotFinite {
            field: String::new(),
            value: String::new(),
        },
        ObservationProblem::ClicksAboveImpressions {
            clicks: 0,
            impressions: 0,
        },
        ObservationProblem::ConversionsAboveClicks {
            conversions: 0,
            clicks: 0,
        },
        ObservationProblem::UnknownCampaign {
            campaign: String::new(),
        },
        ObservationProblem::UnknownVariant {
            campaign: String::new(),
            variant: String::new(),
        },
        ObservationProblem::WindowEndsBeforeStart { start: at, end: at },
        ObservationProblem::DayAfterDeadline { day: 0, last: 0 },
        ObservationProblem::AboveMaximum {
            field: String::new(),
            value: String::new(),
            max: String::new(),
        },
        ObservationProblem::ChannelMismatch {
            variant: String::new(),
            channel: crate::domain::campaign::Channel::Email,
            expected: String::new(),
        },
        ObservationProblem::SegmentMismatch {
            variant: String::new(),
            segment: String::new(),
            expected: String::new(),
        },
        ObservationProblem::WindowOutsideCampaign {
            start: at,
            end: at,
            campaign_start: at,
            deadline: at,
        },
        ObservationProblem::WindowNotInDay {
            day: 0,
            start: at,
            end: at,
            day_start: at,
            day_end: at,
        },
        ObservationProblem::CampaignFinished {
            campaign: String::new(),
            why: String::new(),
        },
    ]
}

/// What a validation problem means, in one line (no wildcard arm: a new variant must say).
fn observation_problem_meaning(problem: &ObservationProblem) -> &'static str {
    match problem {
        ObservationProblem::Negative { .. } => {
            "a count, `spend` or `revenue` is below zero (the message names the field)"
        }
        ObservationProblem::NotFinite { .. } => "`spend` or `revenue` is not a finite number",
        ObservationProblem::ClicksAboveImpressions { .. } => "`clicks` exceed `impressions`",
        ObservationProblem::ConversionsAboveClicks { .. } => "`conversions` exceed `clicks`",
        ObservationProblem::UnknownCampaign { .. } => {
            "the item's `campaign` is not the batch's, or not a known campaign"
        }
        ObservationProblem::UnknownVariant { .. } => {
            "`variant` is not one of the campaign's variants"
        }
        ObservationProblem::WindowEndsBeforeStart { .. } => "`window_end` is before `window_start`",
        ObservationProblem::DayAfterDeadline { .. } => {
            "the batch's `day` begins at or after the campaign's deadline; every item is rejected"
        }
        ObservationProblem::AboveMaximum { .. } => {
            "a count is above 1 000 000 000, or `spend` or `revenue` above 1e12, for one observation (the message names the field)"
        }
        ObservationProblem::ChannelMismatch { .. } => {
            "`channel` is not the channel the variant was written for"
        }
        ObservationProblem::SegmentMismatch { .. } => {
            "`segment` is not the audience segment the variant was written for"
        }
        ObservationProblem::WindowOutsideCampaign { .. } => {
            "the window starts before the campaign's start or after its deadline"
        }
        ObservationProblem::WindowNotInDay { .. } => {
            "the window is not inside the batch's `day` (day N runs from start + N days to start + N + 1 days)"
        }
        ObservationProblem::CampaignFinished { .. } => {
            "the campaign reached its goal, or its deadline passed more than a day ago; every item is rejected"
        }
    }
}

/// The code of a consent item that is an event of a subject erased while the batch ran.
pub const SUBJECT_ERASED: &str = "subject_erased";
/// The code of a consent item that fails a check ([`crate::domain::compliance::intake`]).
pub const INVALID_CONSENT: &str = "invalid_consent";

/// Every code a rejected consent item can carry, with its meaning.
pub fn consent_problem_codes() -> [(&'static str, &'static str); 3] {
    [
        (
            INVALID_ITEM,
            "not a consent event: a field is missing, has the wrong type or is unknown (a channel or jurisdiction campaignd does not know)",
        ),
        (
            INVALID_CONSENT,
            "a check failed: an empty or over-long subject, purpose or source; a grant without `granted_at` or `source`; a time after the item was received; a re-confirmation before the grant; a `text_hash` that is not a SHA-256",
        ),
        (
            SUBJECT_ERASED,
            "the subject was erased while the batch was recorded; send the item again to record it under a new pseudonym",
        ),
    ]
}

/// The schema of a consent item's `problems[].code`.
pub fn consent_problem_code_schema() -> Schema {
    let strings: Vec<&str> = consent_problem_codes().iter().map(|(c, _)| *c).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "Stable, snake_case: why a consent item was rejected (docs/error-codes.md).",
        ))
        .enum_values(Some(strings))
        .into()
}

/// Where the rendered table lives, relative to the repository.
pub const DOC_PATH: &str = "docs/error-codes.md";

/// `docs/error-codes.md`, rendered from [`ErrorCode`] and [`item_problem_codes`].
pub fn render_doc() -> String {
    let mut out = String::new();
    out.push_str("# API error codes\n\n");
    out.push_str(
        "<!-- Generated from src/api/codes.rs; do not edit by hand. After changing the codes, run\n     \
         `CAMPAIGND_BLESS=1 cargo test --lib api::codes` to rewrite this file. -->\n\n",
    );
    out.push_str(
        "Every error the HTTP API answers is JSON with a stable `code` a client can branch on and \
         a `message` that names what was wrong (the field, the campaign, the limit):\n\n",
    );
    out.push_str("```json\n");
    out.push_str(
        "{ \"error\": { \"code\": \"unknown_campaign\", \"message\": \"no campaign `spring_sale` is configured for this token\" } }\n",
    );
    out.push_str("```\n\n");
    out.push_str(
        "Each code is always answered with the same status. A code's spelling never changes; a new \
         failure gets a new code. The server keeps serving after any of them.\n\n",
    );
    out.push_str("| status | code | meaning |\n| --- | --- | --- |\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            code.status().as_u16(),
            code.as_str(),
            code.description()
        );
    }
    out.push_str("\n## Rejected observation items\n\n");
    out.push_str(
        "`POST /v1/observations` checks each item on its own: a batch with bad items is still \
         answered 200, and each rejected item lists its problems, every one with one of these \
         codes:\n\n",
    );
    out.push_str("| code | meaning |\n| --- | --- |\n");
    for (code, meaning) in item_problem_codes() {
        let _ = writeln!(out, "| `{code}` | {meaning} |");
    }
    out.push_str("\n## Rejected consent items\n\n");
    out.push_str(
        "`POST /v1/consents` checks each item on its own as well; a rejected item lists its \
         problems with one of these codes:\n\n",
    );
    out.push_str("| code | meaning |\n| --- | --- |\n");
    for (code, meaning) in consent_problem_codes() {
        let _ = writeln!(out, "| `{code}` | {meaning} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_all_listed() {
        let strings: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            strings.len(),
            ErrorCode::ALL.len(),
            "a code is spelled twice"
        );
        for code in &strings {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "`{code}` is not snake_case"
            );
        }
        // An exhaustive match: a new variant stops this compiling until it is put in `ALL`.
        for code in ErrorCode::ALL {
            match code {
                ErrorCode::MalformedJson
                | ErrorCode::InvalidBody
                | ErrorCode::UnreadableBody
                | ErrorCode::InvalidParameter
                | ErrorCode::InvalidIdempotencyKey
                | ErrorCode::MalformedRequest
                | ErrorCode::RepeatedHeader
                | ErrorCode::MissingToken
                | ErrorCode::InvalidToken
                | ErrorCode::OperatorOnly
                | ErrorCode::ReadOnlyToken
                | ErrorCode::UnknownApproval
                | ErrorCode::ApprovalAnswered
                | ErrorCode::InvalidAmendment
                | ErrorCode::UnknownCampaign
                | ErrorCode::UnknownTrace
                | ErrorCode::UnknownDecision
                | ErrorCode::UnknownAgent
                | ErrorCode::UnknownTenant
                | ErrorCode::UnknownSubject
                | ErrorCode::UnknownOrder
                | ErrorCode::OrderSettled
                | ErrorCode::NoSuchRoute
                | ErrorCode::MethodNotAllowed
                | ErrorCode::BodyTimeout
                | ErrorCode::CommandIgnored
                | ErrorCode::CampaignFinished
                | ErrorCode::CommandRefused
                | ErrorCode::ReviveRefused
                | ErrorCode::BodyTooLarge
                | ErrorCode::UriTooLong
                | ErrorCode::HeadersTooLarge
                | ErrorCode::IdempotencyKeyReused
                | ErrorCode::InvalidConfig
                | ErrorCode::Internal
                | ErrorCode::OrchestratorUnavailable
                | ErrorCode::ReviveFailed
                | ErrorCode::NotAnnounced
                | ErrorCode::ComplianceUnavailable => {}
            }
            assert!(code.status().is_client_error() || code.status().is_server_error());
            assert!(!code.description().is_empty());
        }
        // Sorted by status, so the table reads in order.
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status().as_u16()).collect();
        assert!(statuses.is_sorted(), "{statuses:?}");
    }

    #[test]
    fn a_code_serializes_as_its_string() {
        assert_eq!(
            serde_json::to_value(ErrorCode::NotAnnounced).unwrap(),
            serde_json::json!("not_announced")
        );
    }

    /// serde's own list of the problem tags, from the error it gives for an unknown one.
    fn serde_problem_tags() -> BTreeSet<String> {
        let err = serde_json::from_str::<ObservationProblem>(r#"{"problem": "?"}"#)
            .unwrap_err()
            .to_string();
        let (_, expected) = err
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("serde's message changed: {err}"));
        expected
            .split(", ")
            .filter_map(|piece| piece.split('`').nth(1))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_observation_problem_is_listed() {
        let listed: BTreeSet<String> = observation_problem_samples()
            .iter()
            .map(|p| p.code().to_owned())
            .collect();
        assert_eq!(listed, serde_problem_tags());
        let codes = item_problem_codes();
        let unique: BTreeSet<&str> = codes.iter().map(|(c, _)| *c).collect();
        assert_eq!(unique.len(), codes.len(), "an item code is listed twice");
    }

    #[test]
    fn docs_error_codes_md_is_rendered_from_the_codes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC_PATH);
        let expected = render_doc();
        if std::env::var_os("CAMPAIGND_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            found == expected,
            "{DOC_PATH} is not what src/api/codes.rs renders. Run \
             `CAMPAIGND_BLESS=1 cargo test --lib api::codes` or paste this:\n\n{expected}"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_code() {
        use utoipa::OpenApi;

        // The document as the router builds it, for the one route that uses item codes.
        let (_, api) = utoipa_axum::router::OpenApiRouter::<super::super::ApiState>::with_openapi(
            super::super::openapi::ApiDoc::openapi(),
        )
        .routes(utoipa_axum::routes!(
            super::super::observations::ingest_observations
        ))
        .split_for_parts();
        let doc = serde_json::to_value(api).unwrap();
        let schemas = &doc["components"]["schemas"];
        let strings = |schema: &serde_json::Value| -> Vec<String> {
            schema["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("no enum in {schema}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let error_codes: Vec<String> = ErrorCode::ALL.iter().map(|c| c.to_string()).collect();
        assert_eq!(strings(&schemas["ErrorCode"]), error_codes);
        assert_eq!(
            schemas["ErrorDetail"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode",
            "{}",
            schemas["ErrorDetail"]
        );
        let item_codes: Vec<String> = item_problem_codes()
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .collect();
        assert_eq!(
            strings(&schemas["ItemProblem"]["properties"]["code"]),
            item_codes,
            "{}",
            schemas["ItemProblem"]
        );
    }
}
