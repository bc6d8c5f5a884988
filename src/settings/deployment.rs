//! The checks across files: what each file is right about on its own but wrong about together with
//! the others. A campaign's or a token's tenant must have a tenant file (and its client an entry in
//! it) that reads; a campaign's currency needs an exchange rate in the strategy playbook; a
//! deadline must not have passed when the clock starts.
//!
//! These run inside every load, so `check`, `run` and a reload refuse the same deployments. The
//! module reads the tenant files and nothing else; it never opens the data directory (see
//! [`data_dir_problems`], which `check` adds).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::config::{ClockMode, Config};
use super::{AgentDefinition, Problem, problem};
use crate::domain::brand::{BrandError, TenantFile};
use crate::domain::campaign::CampaignGoal;
use crate::domain::strategy::{DEFAULT_STRATEGY_TOML, StrategyPlaybook};
use crate::protocol::{CampaignId, TenantId};

/// The shipped tenant files, used when the tenants folder does not exist (by these checks, the
/// content agent and compliance alike): a fresh machine runs the example campaigns of `acme` and
/// `globex`.
pub const EMBEDDED_TENANTS: [(&str, &str); 2] = [
    ("acme", include_str!("../../config/tenants/acme.toml")),
    ("globex", include_str!("../../config/tenants/globex.toml")),
];

/// Where the tenant files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantsSource {
    /// The folder beside the campaigns folder.
    Folder(PathBuf),
    /// The folder does not exist: the shipped files.
    Embedded,
}

/// Reads tenant files once per organization and answers for campaigns and tokens.
struct Tenants<'a> {
    dir: &'a Path,
    embedded: bool,
}

impl Tenants<'_> {
    /// The organization's parsed file, or the problem that names what to fix.
    fn file(&self, organization: &str) -> Result<TenantFile, (String, String)> {
        let path = self.dir.join(format!("{organization}.toml"));
        let label = path.display().to_string();
        let text = if self.embedded {
            match EMBEDDED_TENANTS
                .iter()
                .find(|(name, _)| *name == organization)
            {
                Some((_, text)) => (*text).to_owned(),
                None => {
                    return Err((
                        label,
                        format!(
                            "organization `{organization}` has no tenant file (the folder {} does not exist, and the shipped files are only acme and globex); create it",
                            self.dir.display()
                        ),
                    ));
                }
            }
        } else {
            match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err((
                        label,
                        format!("organization `{organization}` has no tenant file; create it"),
                    ));
                }
                Err(e) => return Err((label, format!("cannot be read: {e}"))),
            }
        };
        TenantFile::from_toml_str(organization, &text).map_err(|e| match e {
            // toml's own error spans several lines; the usual one-line problem names key and line.
            BrandError::Parse { source, .. } => {
                let found = problem::deserialize_problem(&label, &text, &source);
                let message = if found.key.is_empty() {
                    found.message
                } else {
                    format!("{}: {}", found.key, found.message)
                };
                (label, message)
            }
            other => (label, other.to_string()),
        })
    }
}

/// The tenants folder of a deployment: `tenants` beside the campaigns folder.
pub fn tenants_dir(config: &Config) -> PathBuf {
    config
        .daemon
        .campaigns_dir
        .parent()
        .map_or_else(|| PathBuf::from("tenants"), |p| p.join("tenants"))
}

/// Every problem across files; `resolve` turns a configured path into the one to read.
pub(super) fn problems(
    config: &Config,
    config_file: &str,
    agents: &[AgentDefinition],
    campaigns: &[(String, CampaignGoal)],
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> (Vec<Problem>, TenantsSource) {
    let mut problems = Vec::new();
    let dir = resolve(&tenants_dir(config));
    let embedded = !dir.exists();
    let tenants = Tenants {
        dir: &dir,
        embedded,
    };
    let source = if embedded {
        TenantsSource::Embedded
    } else {
        TenantsSource::Folder(dir.clone())
    };

    for (file, goal) in campaigns {
        if let Some(problem) = campaign_tenant(&tenants, &goal.tenant, &goal.id) {
            problems.push(Problem::new(file.as_str(), "tenant", problem));
        }
        for (channel, name) in &goal.connectors {
            let key = format!("connectors.{channel}");
            if !goal.channels.contains(channel) {
                problems.push(Problem::new(
                    file.as_str(),
                    key.clone(),
                    format!(
                        "the campaign does not run on {channel}; its channels are {:?}",
                        goal.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>()
                    ),
                ));
            }
            if !config.connectors.contains_key(name)
                && !super::connectors::BUILT_IN.contains(&name.as_str())
            {
                let mut known: Vec<&str> = super::connectors::BUILT_IN.to_vec();
                known.extend(config.connectors.keys().map(String::as_str));
                problems.push(Problem::new(
                    file.as_str(),
                    key,
                    format!(
                        "no connector `{name}`: define [connectors.{name}] in {config_file}, or use one of {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    for (index, token) in config.api.tokens.iter().enumerate() {
        let Some(tenant) = &token.tenant else {
            continue;
        };
        let (organization, client) = match tenant.split_once('/') {
            Some((o, c)) => (o, Some(c)),
            None => (tenant.as_str(), None),
        };
        let message = match tenants.file(organization) {
            Err((file, message)) => Some(format!("`{tenant}`: {file}: {message}")),
            Ok(found) => client
                .filter(|c| !found.clients.contains_key(*c))
                .map(|c| {
                    format!(
                        "`{tenant}`: organization `{organization}` has no client `{c}` in its tenant file"
                    )
                }),
        };
        if let Some(message) = message {
            problems.push(Problem::new(
                config_file,
                format!("api.tokens[{index}] `{}`.tenant", token.name),
                format!("{message}; a token's tenant must exist"),
            ));
        }
    }

    if let Some(playbook) = strategy_playbook(agents) {
        for (file, goal) in campaigns {
            let currency = &goal.budget.currency;
            if playbook.exchange_rate(currency).is_none() {
                problems.push(Problem::new(
                    file.as_str(),
                    "budget.currency",
                    format!(
                        "`{currency}` has no exchange rate: the strategy priors are in {}; add `{currency} = <units per {}>` under [playbook.exchange_rates] in agents/strategy.toml",
                        playbook.currency, playbook.currency
                    ),
                ));
            }
        }
    }

    let (now, why) = clock_start(config);
    for (file, goal) in campaigns {
        if goal.deadline <= now {
            problems.push(Problem::new(
                file.as_str(),
                "deadline",
                format!(
                    "{} has already passed ({why} is {now}); move the deadline or remove the finished campaign's file (its decisions stay in the knowledge base)",
                    goal.deadline
                ),
            ));
        }
    }
    (problems, source)
}

/// Why a campaign's tenant cannot be used, if it cannot.
fn campaign_tenant(tenants: &Tenants<'_>, tenant: &TenantId, id: &CampaignId) -> Option<String> {
    let organization = tenant.as_str().split('/').next().unwrap_or_default();
    match tenants.file(organization) {
        Err((file, message)) => Some(format!("`{tenant}`: {file}: {message}")),
        Ok(found) => found
            .voice_for(tenant, id)
            .err()
            .map(|e| format!("`{tenant}`: {e}")),
    }
}

/// The strategy playbook the deployment plans with, when the strategy agent is enabled and its
/// playbook reads (an unreadable one is reported by the agent's own check).
fn strategy_playbook(agents: &[AgentDefinition]) -> Option<StrategyPlaybook> {
    #[derive(Deserialize)]
    struct Shipped {
        playbook: StrategyPlaybook,
        #[serde(rename = "agent")]
        _agent: IgnoredAny,
    }
    let definition = agents
        .iter()
        .find(|a| a.name.as_str() == "strategy" && a.enabled)?;
    match definition.playbook {
        Some(_) => definition.parse_playbook::<StrategyPlaybook>().ok(),
        None => toml::from_str::<Shipped>(DEFAULT_STRATEGY_TOML)
            .ok()
            .map(|s| s.playbook),
    }
}

/// The time the clock reads when the daemon starts, and how to name it.
fn clock_start(config: &Config) -> (DateTime<Utc>, &'static str) {
    match (config.clock.mode, config.clock.start) {
        (ClockMode::Real, _) | (_, None) => (Utc::now(), "now"),
        (_, Some(start)) => (start, "clock.start"),
    }
}

/// Why the data directory cannot hold the knowledge base: it (or the first folder of its path that
/// exists) is not a folder, or campaignd cannot create files in it. Found by creating and
/// removing a probe file there, the only test that holds for every user, root included.
pub fn data_dir_problems(config: &Config, config_file: &str) -> Vec<Problem> {
    let data_dir = &config.daemon.data_dir;
    let mut existing = data_dir.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    let problem = |message: String| vec![Problem::new(config_file, "daemon.data_dir", message)];
    if !existing.is_dir() {
        return problem(format!(
            "{} is not a folder, so the data directory {} cannot be created there; point daemon.data_dir at a folder",
            existing.display(),
            data_dir.display()
        ));
    }
    let probe = existing.join(format!(".campaignd-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Vec::new()
        }
        Err(e) => problem(format!(
            "campaignd cannot write in {} ({e}), so the knowledge base cannot live in {}; fix the folder's owner or mode, or choose another",
            existing.display(),
            data_dir.display()
        )),
    }
}
