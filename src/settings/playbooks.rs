//! Checks each built-in agent's `[playbook]` with the domain module that will read it, so that a
//! broken rule set or price prior is found by `campaignd check` and refused by `run` and by a
//! reload, with its file, key and line, before any agent works from it.
//!
//! Only parsing and validation happen here; the parsed playbooks are not kept (each agent parses its
//! own at start). An agent without a playbook parser here (a custom agent) is not checked.

use super::agents::AgentDefinition;
use super::problem::Problem;
use crate::domain::compliance::CompliancePlaybook;
use crate::domain::content::ContentPlaybook;
use crate::domain::optimization::OptimizationPlaybook;
use crate::domain::strategy::StrategyPlaybook;

/// Every problem in the playbooks of `agents`.
pub fn check(agents: &[AgentDefinition]) -> Vec<Problem> {
    agents.iter().filter_map(check_one).collect()
}

fn check_one(agent: &AgentDefinition) -> Option<Problem> {
    let validated = match agent.name.as_str() {
        "compliance" => parse(agent, CompliancePlaybook::validate),
        "content" => parse(agent, ContentPlaybook::validate),
        "strategy" => parse(agent, StrategyPlaybook::validate),
        "optimization" => parse(agent, OptimizationPlaybook::validate),
        _ => return None,
    };
    validated.err()
}

/// Parses the playbook (errors name the key and line) and then checks what the types cannot.
fn parse<T: serde::de::DeserializeOwned, E: std::error::Error>(
    agent: &AgentDefinition,
    validate: impl FnOnce(&T) -> Result<(), E>,
) -> Result<(), Problem> {
    if agent.playbook.is_none() {
        return Err(Problem::new(
            &agent.file,
            "playbook",
            "missing: this agent works from a [playbook] table",
        ));
    }
    let playbook = agent.parse_playbook::<T>()?;
    validate(&playbook).map_err(|err| Problem::new(&agent.file, "playbook", err.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::settings::{EnvOverrides, Settings};

    /// The shipped agents folder with one file's text replaced.
    fn problems_with(agent: &str, from: &str, to: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let agents = dir.path().join("agents");
        std::fs::create_dir_all(&agents).expect("agents folder");
        for &(name, text) in crate::settings::agents::EMBEDDED_AGENTS {
            let text = if name == agent {
                text.replacen(from, to, 1)
            } else {
                text.to_owned()
            };
            assert!(
                name != agent || text.contains(to),
                "the replacement must apply"
            );
            std::fs::write(agents.join(format!("{name}.toml")), text).expect("write agent");
        }
        match Settings::load_from(dir.path(), None, EnvOverrides::new()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_shipped_playbooks_are_valid() {
        assert_eq!(problems_with("compliance", "", ""), Vec::<String>::new());
    }

    #[test]
    fn a_wrongly_typed_playbook_key_names_file_key_and_line() {
        let problems = problems_with("compliance", "approve_max = 59", "approve_max = \"most\"");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("agents/compliance.toml"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("playbook.risk.approve_max"),
            "{problems:?}"
        );
        assert!(problems[0].contains("line"), "{problems:?}");
    }

    #[test]
    fn a_value_the_types_accept_but_the_domain_refuses_is_reported() {
        let problems = problems_with("compliance", "cap = 99", "cap = 100");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("agents/compliance.toml: playbook"),
            "{problems:?}"
        );
        assert!(problems[0].contains("playbook.risk.cap"), "{problems:?}");
    }

    #[test]
    fn a_missing_playbook_is_reported() {
        let problems = problems_with("strategy", "[playbook]", "[unused]");
        assert!(
            problems.iter().any(|p| p.contains("agents/strategy.toml")),
            "{problems:?}"
        );
    }
}
