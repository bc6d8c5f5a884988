//! What queries take and give back: the tenant scope every query is bound to, and results that
//! carry the records that could not be read alongside those that could.
//!
//! Plain data: nothing here reads the database.

use serde::Serialize;

use crate::protocol::TenantId;

/// Whose records a query may see. There is no default: every caller says which tenant it works for,
/// or says explicitly that it is an operator looking across all of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only this tenant's records.
    Tenant(TenantId),
    /// Every tenant's records: for operators (the command line, an admin token), never for an agent
    /// or a tenant's API token.
    AllTenants,
}

impl Scope {
    pub fn tenant(tenant: impl Into<TenantId>) -> Self {
        Scope::Tenant(tenant.into())
    }

    /// Whether a record of `tenant` is visible in this scope.
    pub fn admits(&self, tenant: &TenantId) -> bool {
        match self {
            Scope::Tenant(own) => own == tenant,
            Scope::AllTenants => true,
        }
    }
}

/// A stored record that could not be read: its key and why. Reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorruptRecord {
    /// `decision/<uuid>`, `outcome/<uuid>`, or the key in hex when it is not one of those.
    pub key: String,
    pub reason: String,
}

/// The records a query found, in time order, and the ones it had to skip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryResult<T> {
    pub records: Vec<T>,
    pub skipped: Vec<CorruptRecord>,
}

impl<T> Default for QueryResult<T> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExportSummary {
    /// Records written, one JSON object per line.
    pub records: usize,
    pub skipped: Vec<CorruptRecord>,
}
