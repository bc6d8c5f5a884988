//! `/v1/consents`: consent coming in from a real audience (a sign-up form, a CRM export), one
//! subject's records in force, and a subject's erasure.
//!
//! A batch is `{"tenant": "...", "consents": [...]}`; each item is a consent event in the form of
//! [`ConsentItem`] (a withdrawal is an item with `withdrawn_at`). Items are checked one by one and
//! the answer says, per index, recorded, duplicate or rejected with every problem, as for
//! observations; an `Idempotency-Key` makes a retried batch count once. The subject never goes
//! past this module: it is swapped for its pseudonym ([`SubjectKeys`]) before the compliance agent
//! records anything, and no answer or log line repeats it. A tenant token works on its own tenant
//! (or a client of it, named in `tenant`); an operator's token must name the tenant.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::Caller;
use super::codes::{INVALID_CONSENT, INVALID_ITEM, SUBJECT_ERASED, consent_problem_code_schema};
use super::error::{ApiError, ErrorBody, ErrorCode, RawBody, parse_batch, parse_item};
use super::idempotency;
use crate::agents::compliance::Compliance;
use crate::agents::messages::{ConsentFate, Consents, ConsentsOf, EraseSubject, RecordConsent};
use crate::agents::subjects::SubjectKeys;
use crate::domain::compliance::intake::{ConsentItem, Subject};
use crate::protocol::{Origin, TenantId};
use crate::runtime::{Agent, Client};

/// The most items one batch takes.
pub const MAX_ITEMS: usize = 1000;

/// Consent events of one tenant's audience.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBatch {
    /// The tenant whose ledger records them: a tenant token's own by default; an operator's token
    /// must name it.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Each: `subject` (a phone number, an address or a customer id, never stored), `channel`,
    /// `purpose`, `jurisdiction` (`KR`, `US`, `EU`), and for a grant `granted_at` and `source`;
    /// optionally `text_hash` (SHA-256 of the consent text shown), `night_consent`,
    /// `withdrawn_at`, `last_reconfirmed_at`, `existing_transaction_at`, `segments` (the audience
    /// segments the subject belongs to, which send lists are drawn from).
    #[schema(value_type = Vec<Object>)]
    pub consents: Vec<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    Recorded,
    /// The same event was recorded before; the first recording stands.
    Duplicate,
    Rejected,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentProblem {
    #[schema(schema_with = consent_problem_code_schema)]
    pub code: &'static str,
    /// What was wrong, naming the field (never the subject).
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentItemView {
    /// Position in `consents`, from 0.
    pub index: usize,
    pub status: ConsentStatus,
    /// The consent decision (for `recorded` and `duplicate`).
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ConsentProblem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAnswer {
    pub tenant: String,
    pub recorded: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub items: Vec<ConsentItemView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// The tenant: a tenant token's own by default; an operator's token must name it.
    pub tenant: Option<String>,
}

/// One subject's consents in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectConsents {
    pub tenant: String,
    /// The pseudonym the records are kept under.
    pub pseudonym: String,
    /// One record per channel: the one reviews use.
    #[schema(value_type = Vec<Object>)]
    pub consents: Vec<crate::domain::compliance::ConsentRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub tenant: String,
    /// The `erasure` decision (it names the pseudonym, which nothing links to the person now).
    pub decision: String,
    /// The channels whose consent stopped.
    pub channels: Vec<String>,
}

/// The tenant a caller works on: `requested` if the caller may, else its own. Only tenants a
/// configured campaign belongs to (or the organization of one) are known, so a typo is an error
/// rather than a ledger nobody reads.
fn tenant_of(
    state: &ApiState,
    caller: &Caller,
    requested: Option<&str>,
) -> Result<TenantId, ApiError> {
    let tenant = match (requested, caller) {
        (Some(t), _) => TenantId::new(t.trim()),
        (None, Caller::Tenant { tenant, .. }) => tenant.clone(),
        (None, Caller::Operator { .. }) => {
            return Err(ApiError::new(
                ErrorCode::UnknownTenant,
                "an operator's token works on every tenant: name the tenant (`tenant` in the body, `?tenant=` on the URL)",
            ));
        }
    };
    let configured = state.settings().campaigns.iter().any(|c| {
        c.tenant == tenant
            || c.tenant
                .as_str()
                .strip_prefix(tenant.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    });
    if !caller.admits(&tenant) || !configured {
        return Err(ApiError::new(
            ErrorCode::UnknownTenant,
            format!("no configured campaign belongs to tenant `{tenant}` for this token"),
        ));
    }
    Ok(tenant)
}

fn compliance_client(state: &ApiState, caller: &Caller, tenant: &TenantId) -> Client {
    state
        .runtime()
        .client(Origin::Operator(format!("api/{}", caller.name())))
        .with_tenant(tenant.clone())
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::ComplianceUnavailable,
        format!(
            "the compliance agent did not answer ({err}); send the same request again (nothing is recorded twice)"
        ),
    )
}

fn subject_of(raw: &str) -> Result<Subject, ApiError> {
    Subject::parse(raw).map_err(|why| ApiError::bad_parameter(format!("the subject {why}")))
}

/// Records a batch of consent events.
#[utoipa::path(
    post,
    path = "/v1/consents",
    tag = "consents",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 200 visible ASCII characters; a retry with the same key and body replays the first answer")
    ),
    request_body(content = ConsentBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Every item recorded, duplicate or rejected (see `items`)", body = ConsentAnswer),
        (status = 400, description = "Malformed JSON, no items, more than 1 000 items, or a bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "An unknown tenant, or an operator's token that names none", body = ErrorBody),
        (status = 413, description = "The body is over api.body_limit_bytes", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used before with a different body", body = ErrorBody),
        (status = 503, description = "The compliance agent did not answer; send the same batch again", body = ErrorBody)
    )
)]
pub async fn record_consents(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    if !caller.may_write() {
        return Err(ApiError::read_only("POST /v1/consents"));
    }
    let key = idempotency::key_of(&headers)?;
    let batch: ConsentBatch = parse_batch(&body, "{\"consents\": [...]}")?;
    if batch.consents.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `consents` is empty: send at least one consent event",
        ));
    }
    if batch.consents.len() > MAX_ITEMS {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "field `consents` holds {} items; send at most {MAX_ITEMS} per batch",
                batch.consents.len()
            ),
        ));
    }
    let tenant = tenant_of(&state, &caller, batch.tenant.as_deref())?;
    let task = (state.clone(), caller.clone());
    let run = async move { record(&task.0, &task.1, tenant, batch.consents).await };
    idempotency::answer_once(state, caller, key, body, "consent batch", run).await
}

async fn record(
    state: &ApiState,
    caller: &Caller,
    tenant: TenantId,
    consents: Vec<serde_json::Value>,
) -> Result<String, ApiError> {
    let received_at = chrono::Utc::now();
    let keys = SubjectKeys::open(state.kb())
        .map_err(|e| ApiError::internal("the subjects' pseudonyms cannot be opened", e))?;
    let mut items: Vec<ConsentItemView> = Vec::with_capacity(consents.len());
    let mut records = Vec::new();
    // Positions in `items` of the records sent to compliance, in order.
    let mut positions = Vec::new();
    for (index, value) in consents.into_iter().enumerate() {
        let rejected = |code, messages: Vec<String>| ConsentItemView {
            index,
            status: ConsentStatus::Rejected,
            decision: None,
            problems: messages
                .into_iter()
                .map(|message| ConsentProblem { code, message })
                .collect(),
        };
        let item = match parse_item::<ConsentItem>(value) {
            Ok(item) => item,
            Err(message) => {
                items.push(rejected(INVALID_ITEM, vec![message]));
                continue;
            }
        };
        let problems = item.problems(received_at);
        let subject = match Subject::parse(&item.subject) {
            Ok(subject) if problems.is_empty() => subject,
            _ => {
                items.push(rejected(INVALID_CONSENT, problems));
                continue;
            }
        };
        let pseudonym = keys
            .pseudonym(&tenant, &subject)
            .map_err(|e| ApiError::internal("a subject's pseudonym cannot be kept", e))?;
        positions.push(items.len());
        items.push(ConsentItemView {
            index,
            status: ConsentStatus::Recorded,
            decision: None,
            problems: Vec::new(),
        });
        records.push(item.into_record(pseudonym));
    }
    if !records.is_empty() {
        // Durable before any decision names a pseudonym, or a crash could leave consents nobody
        // can look up or erase.
        keys.flush()
            .await
            .map_err(|e| ApiError::internal("the subjects' pseudonyms cannot be flushed", e))?;
        let recorded = compliance_client(state, caller, &tenant)
            .request(
                Compliance::NAME,
                RecordConsent {
                    tenant: tenant.clone(),
                    records,
                },
            )
            .await
            .map_err(unavailable)?;
        for (position, result) in positions.into_iter().zip(recorded.decisions) {
            let Some(view) = items.get_mut(position) else {
                continue;
            };
            view.decision = Some(result.decision.to_string());
            view.status = match result.fate {
                ConsentFate::Recorded => ConsentStatus::Recorded,
                ConsentFate::Duplicate => ConsentStatus::Duplicate,
                ConsentFate::Erased => {
                    view.decision = None;
                    view.problems.push(ConsentProblem {
                        code: SUBJECT_ERASED,
                        message: "the subject was erased while this batch was recorded".to_owned(),
                    });
                    ConsentStatus::Rejected
                }
            };
        }
    }
    tracing::info!(
        token_name = caller.name(),
        tenant = %tenant,
        items = items.len(),
        "consent batch received through the API"
    );
    let count = |status| items.iter().filter(|i| i.status == status).count();
    let answer = ConsentAnswer {
        tenant: tenant.to_string(),
        recorded: count(ConsentStatus::Recorded),
        duplicates: count(ConsentStatus::Duplicate),
        rejected: count(ConsentStatus::Rejected),
        items,
    };
    serde_json::to_string(&answer).map_err(|e| ApiError::internal("the answer does not encode", e))
}

/// One subject's consents in force, one per channel.
#[utoipa::path(
    get,
    path = "/v1/consents/{subject}",
    tag = "consents",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The subject as the consent named it (URL-encoded)"), TenantQuery),
    responses(
        (status = 200, description = "The records in force", body = SubjectConsents),
        (status = 400, description = "An empty or over-long subject", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No consent of this subject in the tenant (or it was erased), or an unknown tenant", body = ErrorBody),
        (status = 503, description = "The compliance agent did not answer", body = ErrorBody)
    )
)]
pub async fn subject_consents(
    State(state): State<ApiState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Result<Json<SubjectConsents>, ApiError> {
    let (tenant, _, _, pseudonym) = looked_up(&state, &caller, &subject, &query)?;
    let Consents { records } = compliance_client(&state, &caller, &tenant)
        .request(
            Compliance::NAME,
            ConsentsOf {
                tenant: tenant.clone(),
                subject: pseudonym.clone(),
            },
        )
        .await
        .map_err(unavailable)?;
    Ok(Json(SubjectConsents {
        tenant: tenant.to_string(),
        pseudonym,
        consents: records,
    }))
}

/// The tenant, the subject, its keys and its pseudonym, for a route naming the subject.
fn looked_up(
    state: &ApiState,
    caller: &Caller,
    subject: &str,
    query: &TenantQuery,
) -> Result<(TenantId, Subject, SubjectKeys, String), ApiError> {
    let tenant = tenant_of(state, caller, query.tenant.as_deref())?;
    let subject = subject_of(subject)?;
    let keys = SubjectKeys::open(state.kb())
        .map_err(|e| ApiError::internal("the subjects' pseudonyms cannot be opened", e))?;
    let pseudonym = keys
        .find(&tenant, &subject)
        .map_err(|e| ApiError::internal("the subjects' pseudonyms cannot be read", e))?
        .ok_or_else(|| unknown_subject(&tenant))?;
    Ok((tenant, subject, keys, pseudonym))
}

fn unknown_subject(tenant: &TenantId) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownSubject,
        format!("no consent of this subject is recorded in tenant `{tenant}` (or it was erased)"),
    )
}

/// Erases a subject (GDPR article 17): its consents stop, recorded as an `erasure` decision, and
/// then nothing links the person to the pseudonym the decisions name.
#[utoipa::path(
    delete,
    path = "/v1/consents/{subject}",
    tag = "consents",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The subject as the consent named it (URL-encoded)"), TenantQuery),
    responses(
        (status = 200, description = "Erased", body = Erased),
        (status = 400, description = "An empty or over-long subject", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No consent of this subject in the tenant (or it was erased already), or an unknown tenant", body = ErrorBody),
        (status = 503, description = "The compliance agent did not answer; nothing was erased, send it again", body = ErrorBody)
    )
)]
pub async fn erase_subject(
    State(state): State<ApiState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Result<Json<Erased>, ApiError> {
    if !caller.may_write() {
        return Err(ApiError::read_only("DELETE /v1/consents/{subject}"));
    }
    let (tenant, subject, keys, pseudonym) = looked_up(&state, &caller, &subject, &query)?;
    // The consents stop first: if the link were deleted first and this failed, consents would be
    // left in force that nobody could erase any more.
    let erased = compliance_client(&state, &caller, &tenant)
        .request(
            Compliance::NAME,
            EraseSubject {
                tenant: tenant.clone(),
                subject: pseudonym,
                by: caller.name().to_owned(),
            },
        )
        .await
        .map_err(unavailable)?;
    keys.erase(&tenant, &subject)
        .await
        .map_err(|e| ApiError::internal("the subject's pseudonym cannot be deleted", e))?;
    tracing::info!(token_name = caller.name(), tenant = %tenant, decision = %erased.decision, "subject erased through the API");
    Ok(Json(Erased {
        tenant: tenant.to_string(),
        decision: erased.decision.to_string(),
        channels: erased
            .channels
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    }))
}
