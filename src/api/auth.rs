//! Who is calling: bearer tokens from `[api]` (inline or `tokens_file`), compared in constant
//! time, and what each kind of caller may see. An operator token sees everything; a tenant token
//! sees its own organization, or one client of it, and nothing else.
//!
//! The secret must never be logged, echoed or compared with an early-exit comparison; handlers
//! learn only the token's name and tenant. Isolation does not stop here: handlers turn a caller
//! into knowledge-base [`Scope`]s, so the query itself cannot return another tenant's records.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::{ApiError, ErrorCode};
use crate::domain::campaign::CampaignGoal;
use crate::kb::Scope;
use crate::protocol::TenantId;
use crate::settings::Settings;
use crate::settings::config::{ApiToken, Role};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A token without a tenant: sees every tenant (and, with role operator, may do everything).
    Operator { name: String, role: Role },
    /// A token bound to `organization` or `organization/client`.
    Tenant {
        name: String,
        tenant: TenantId,
        role: Role,
    },
}

impl Caller {
    /// The token's name, for logs.
    pub fn name(&self) -> &str {
        match self {
            Caller::Operator { name, .. } | Caller::Tenant { name, .. } => name,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Caller::Operator { role, .. } | Caller::Tenant { role, .. } => *role,
        }
    }

    /// Whether this is an operator's token: no tenant and the operator role.
    pub fn is_operator(&self) -> bool {
        matches!(
            self,
            Caller::Operator {
                role: Role::Operator,
                ..
            }
        )
    }

    /// Whether the token may change anything: answer approval requests, post observations.
    pub fn may_write(&self) -> bool {
        self.role() >= Role::Approver
    }

    /// The campaigns of `campaigns` whose tenant this caller reads (see [`Caller::admits`]).
    pub fn visible<'a>(
        &self,
        campaigns: &'a [CampaignGoal],
    ) -> impl Iterator<Item = &'a CampaignGoal> {
        campaigns.iter().filter(|c| self.admits(&c.tenant))
    }

    /// Whether records of `tenant` are this caller's to read: a tenant token `acme` reads `acme`
    /// and `acme/<client>`; `acme/kr_retail` reads only itself.
    pub fn admits(&self, tenant: &TenantId) -> bool {
        match self {
            Caller::Operator { .. } => true,
            Caller::Tenant { tenant: own, .. } => {
                tenant == own
                    || tenant
                        .as_str()
                        .strip_prefix(own.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }

    /// The knowledge-base scopes this caller reads through. An operator reads across all tenants;
    /// a tenant reads its own tenant and every client of it that the configured campaigns name
    /// (the knowledge base scopes by exact tenant, so each is queried on its own).
    pub fn scopes(&self, settings: &Settings) -> Vec<Scope> {
        match self {
            Caller::Operator { .. } => vec![Scope::AllTenants],
            Caller::Tenant { tenant, .. } => {
                let mut tenants: Vec<TenantId> = vec![tenant.clone()];
                for campaign in &settings.campaigns {
                    if self.admits(&campaign.tenant) && !tenants.contains(&campaign.tenant) {
                        tenants.push(campaign.tenant.clone());
                    }
                }
                tenants.into_iter().map(Scope::Tenant).collect()
            }
        }
    }
}

/// Finds the token `presented` among `tokens`. Every configured token is compared, and each
/// comparison takes the same time whatever bytes differ, so timing does not reveal a prefix.
pub fn authenticate(tokens: &[ApiToken], presented: &str) -> Option<Caller> {
    let mut found: Option<&ApiToken> = None;
    for token in tokens {
        let equal: bool = token.token.as_bytes().ct_eq(presented.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(token);
        }
    }
    found.map(|token| match &token.tenant {
        None => Caller::Operator {
            name: token.name.clone(),
            role: token.role(),
        },
        Some(tenant) => Caller::Tenant {
            name: token.name.clone(),
            tenant: TenantId::new(tenant.clone()),
            role: token.role(),
        },
    })
}

/// The token of an `Authorization` header value, or `None` if it is not `Bearer <token>`.
///
/// The scheme is matched in any case (`Bearer`, `bearer`, `BEARER`: RFC 9110 makes it
/// case-insensitive). Spaces and tabs around the scheme and the token are ignored, as many as
/// there are. The token itself is compared byte for byte and cannot contain a space or a tab
/// (RFC 6750's token syntax has none), so `Bearer a b` is refused rather than guessed at.
pub fn bearer_token(value: &str) -> Option<&str> {
    let blank = |c: char| c == ' ' || c == '\t';
    let (scheme, rest) = value.trim_matches(blank).split_once(blank)?;
    let token = rest.trim_matches(blank);
    let plain = !token.is_empty() && !token.contains(blank);
    (scheme.eq_ignore_ascii_case("bearer") && plain).then_some(token)
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                ErrorCode::MissingToken,
                "this endpoint needs a token: send `Authorization: Bearer <token>`",
            ));
        };
        let presented = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidToken,
                "the Authorization header must be `Bearer <token>` (the scheme in any case, the token exactly as configured)",
            )
        })?;
        let settings = state.settings();
        match authenticate(&settings.config.api.tokens, presented) {
            Some(caller) => Ok(caller),
            None => Err(ApiError::new(
                ErrorCode::InvalidToken,
                "the bearer token is not one of the tokens in [api] (tokens or tokens_file)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, tenant: Option<&str>) -> ApiToken {
        ApiToken {
            name: name.into(),
            token: secret.into(),
            tenant: tenant.map(Into::into),
            role: None,
        }
    }

    #[test]
    fn tokens_map_to_callers() {
        let tokens = [
            token("ops", "operator-secret-0001", None),
            token("acme", "acme-secret-00000001", Some("acme")),
        ];
        assert_eq!(
            authenticate(&tokens, "operator-secret-0001"),
            Some(Caller::Operator {
                name: "ops".into(),
                role: Role::Operator
            })
        );
        assert_eq!(
            authenticate(&tokens, "acme-secret-00000001"),
            Some(Caller::Tenant {
                name: "acme".into(),
                tenant: "acme".into(),
                role: Role::Approver
            })
        );
        assert_eq!(authenticate(&tokens, "acme-secret-0000000"), None);
        assert_eq!(authenticate(&tokens, ""), None);
        assert_eq!(authenticate(&[], "operator-secret-0001"), None);
    }

    #[test]
    fn the_scheme_is_matched_in_any_case_and_blanks_around_the_token_are_ignored() {
        for value in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR s3cret",
            "Bearer   s3cret",
            "Bearer\ts3cret",
            " \tBearer s3cret \t",
        ] {
            assert_eq!(bearer_token(value), Some("s3cret"), "{value:?}");
        }
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer \t ",
            "Basic s3cret",
            "Bearers3cret",
            "Bearer s3 cret",
            "Bearer s3\tcret",
            "s3cret",
            "",
        ] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_tenant_admits_itself_and_its_clients_only() {
        let org = Caller::Tenant {
            name: "t".into(),
            tenant: "acme".into(),
            role: Role::Approver,
        };
        assert!(org.admits(&"acme".into()));
        assert!(org.admits(&"acme/kr_retail".into()));
        assert!(!org.admits(&"acmeco".into()));
        assert!(!org.admits(&"globex".into()));
        let client = Caller::Tenant {
            name: "t".into(),
            tenant: "acme/kr_retail".into(),
            role: Role::ReadOnly,
        };
        assert!(client.admits(&"acme/kr_retail".into()));
        assert!(!client.admits(&"acme".into()));
        assert!(!client.admits(&"acme/jp_retail".into()));
        let watcher = Caller::Operator {
            name: "o".into(),
            role: Role::ReadOnly,
        };
        assert!(watcher.admits(&"globex".into()));
        assert!(!watcher.is_operator() && !watcher.may_write());
        assert!(!client.may_write() && org.may_write() && !org.is_operator());
    }
}
