//! Which agents this binary can run, with what each needs from its definition file: the runtime's
//! registry of agent types plus the check of each agent's playbook, of its subscriptions, of
//! definitions that no agent implements, and of campaign regions no compliance rule set covers.
//!
//! `campaignd check`, `run` and every reload call [`Registry::check`], so a deployment that the
//! runtime or an agent would fail on is refused before anything starts.

use std::collections::BTreeMap;
use std::path::Path;

use super::messages::OBSERVATIONS_RECORDED;
use super::playbook::{Playbook, in_force};
use crate::agents::content::voice_for;
use crate::domain::brief::{review_claims, unproven_lines};
use crate::domain::campaign::CampaignGoal;
use crate::domain::compliance::{CompliancePlaybook, without_rule_set};
use crate::domain::content::ContentPlaybook;
use crate::protocol::AgentName;
use crate::runtime::{self, Agent};
use crate::settings::{AgentDefinition, Problem, Problems, Settings, deployment};

type PlaybookCheck = fn(&AgentDefinition) -> Option<Problem>;

/// Agent types by name, with their playbook checks.
#[derive(Clone)]
pub struct Registry {
    runtime: runtime::Registry,
    playbooks: BTreeMap<AgentName, PlaybookCheck>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut runtime = runtime::Registry::new();
        // Ingestion, in the campaign layer, announces every recorded batch.
        runtime.publisher(OBSERVATIONS_RECORDED, "campaign ingestion");
        Registry {
            runtime,
            playbooks: BTreeMap::new(),
        }
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs agent `A` under [`Agent::NAME`].
    pub fn agent<A: Agent>(mut self) -> Self {
        self.runtime.register::<A>(A::NAME);
        self
    }

    /// Runs agent `A`, whose definition file carries a playbook `P` that must be valid.
    pub fn agent_with_playbook<A: Agent, P: Playbook>(mut self) -> Self {
        self.playbooks.insert(AgentName::new(A::NAME), P::check);
        self.agent::<A>()
    }

    /// The runtime's view: agent types by name and who publishes on which topic.
    pub fn runtime(&self) -> &runtime::Registry {
        &self.runtime
    }

    /// The enabled definitions of `settings` this binary can run. A definition without an
    /// implementation is logged, not started, so one missing agent does not keep the rest down.
    pub fn specs(&self, settings: &Settings) -> Vec<runtime::AgentSpec> {
        settings
            .enabled_agents()
            .filter(|definition| {
                let known = self.runtime.contains(&definition.name);
                if !known {
                    tracing::warn!(agent = %definition.name, file = %definition.file, "no agent of this name is built into this binary; not started");
                }
                known
            })
            .map(AgentDefinition::spec)
            .collect()
    }

    /// Loads the settings (see [`Settings::load`]) and checks them against this registry: what
    /// `campaignd check`, `run` and a reload accept.
    ///
    /// A playbook an agent cannot work from refuses the settings. A definition without an
    /// implementation and a subscription nothing publishes on harm nothing running (the agent is
    /// not started; the subscription receives nothing), so `run` and a reload log them as warnings,
    /// and a deployment written for an earlier campaignd still starts; `campaignd check` reports
    /// them as problems ([`Registry::check`]).
    pub fn load(&self, config: Option<&Path>) -> Result<Settings, Problems> {
        let settings = Settings::load(config)?;
        let Checked { refused, warnings } = self.checked(&settings);
        for warning in &warnings {
            tracing::warn!(file = %warning.file, key = %warning.key, "{}", warning.message);
        }
        if refused.is_empty() {
            Ok(settings)
        } else {
            Err(Problems(refused))
        }
    }

    /// Every problem an enabled agent's definition has for this binary: a definition without an
    /// implementation, a subscription to a topic nothing publishes on, a playbook that cannot be
    /// read or is not valid.
    pub fn check(&self, settings: &Settings) -> Vec<Problem> {
        let Checked {
            mut refused,
            warnings,
        } = self.checked(settings);
        refused.extend(warnings);
        refused
    }

    fn checked(&self, settings: &Settings) -> Checked {
        let mut refused = Vec::new();
        let mut problems = Vec::new();
        for definition in settings.enabled_agents() {
            if !self.runtime.contains(&definition.name) {
                let known: Vec<&str> = self.runtime.names().map(AgentName::as_str).collect();
                problems.push(Problem::new(
                    &definition.file,
                    "",
                    format!(
                        "no agent named `{}` is built into this campaignd (known: {}); remove the file, set `enabled = false`, or build the agent in",
                        definition.name,
                        known.join(", ")
                    ),
                ));
                continue;
            }
            for (index, topic) in definition.subscribe.iter().enumerate() {
                if self.runtime.publishers_of(topic).is_empty() {
                    problems.push(Problem::new(
                        &definition.file,
                        format!("agent.subscribe[{index}]"),
                        format!("nothing publishes on topic `{topic}`, so this subscription would never receive an event"),
                    ));
                }
            }
            if let Some(check) = self.playbooks.get(&definition.name)
                && let Some(problem) = check(definition)
            {
                refused.push(problem);
            }
        }
        problems.extend(regions_without_rule_set(settings));
        problems.extend(regions_without_language(settings));
        problems.extend(unproven_brief_lines(settings));
        Checked {
            refused,
            warnings: problems,
        }
    }
}

/// A campaign region no compliance rule set covers: every variant of the campaign would be
/// blocked (nothing could check a message sent there), so `check` refuses it; `run` and a reload
/// warn and the campaign stays held with the reason.
fn regions_without_rule_set(settings: &Settings) -> Vec<Problem> {
    let mut problems = Vec::new();
    for goal in &settings.campaigns {
        let missing = without_rule_set(&goal.regions);
        for (index, region) in goal.regions.iter().enumerate() {
            if missing.contains(&region.as_str()) {
                problems.push(Problem::new(
                    campaign_file(settings, goal),
                    format!("regions[{index}]"),
                    format!(
                        "region `{region}` has no compliance rule set (campaignd has rules for KR, US, the EU and its member states), so every variant of campaign `{}` would be blocked; remove the region or run that audience as its own campaign once rules exist",
                        goal.id
                    ),
                ));
            }
        }
    }
    problems
}

/// A campaign region whose copy the content playbook in force cannot write (its brief's language
/// has no templates): content would write no copy for it, never another language's, so `check`
/// refuses it; `run` and a reload warn, and the campaign is not set up, with the reason.
fn regions_without_language(settings: &Settings) -> Vec<Problem> {
    let content = in_force::<ContentPlaybook>(settings, crate::agents::content::Content::NAME);
    let Ok(content) = content else {
        // An invalid content playbook is reported on its own file.
        return Vec::new();
    };
    settings
        .campaigns
        .iter()
        .flat_map(|goal| {
            content.unwritable(goal).into_iter().map(|problem| {
                Problem::new(
                    campaign_file(settings, goal),
                    "brief.languages",
                    format!("campaign `{}` would get no copy: {problem}", goal.id),
                )
            })
        })
        .collect()
}

/// A message or call to action of a brief that states a claim nothing substantiates: every variant
/// using it would be blocked, so `check` refuses it; `run` and a reload warn.
fn unproven_brief_lines(settings: &Settings) -> Vec<Problem> {
    let compliance =
        in_force::<CompliancePlaybook>(settings, crate::agents::compliance::Compliance::NAME);
    let Ok(compliance) = compliance else {
        // An invalid compliance playbook is reported on its own file.
        return Vec::new();
    };
    let rule = &compliance.rules.substantiation;
    let tenants = deployment::tenants_dir(&settings.config);
    let mut problems = Vec::new();
    for goal in &settings.campaigns {
        let Some(brief) = &goal.brief else { continue };
        // A tenant file that cannot be read fails the campaign's reviews, and says so there.
        let (registry, terms) = voice_for(&tenants, goal)
            .map(|v| (v.claim_registry(), v.preferred_terms))
            .unwrap_or_default();
        let claims = review_claims(goal, registry, &terms);
        for (key, message) in unproven_lines(brief, &claims, rule) {
            problems.push(Problem::new(
                campaign_file(settings, goal),
                format!("brief.{key}"),
                message,
            ));
        }
    }
    problems
}

/// The file a campaign's problems are reported at.
fn campaign_file(settings: &Settings, goal: &CampaignGoal) -> String {
    let dir = &settings.config.daemon.campaigns_dir;
    dir.join(format!("{}.toml", goal.id)).display().to_string()
}

/// The problems of a deployment for this binary: what refuses it, and what only `check` reports.
struct Checked {
    refused: Vec<Problem>,
    warnings: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use crate::settings::{EnvOverrides, Settings};

    use super::super::registry as builtin;

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
            Ok(settings) => builtin()
                .check(&settings)
                .iter()
                .map(ToString::to_string)
                .collect(),
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
    fn a_subscription_nothing_publishes_on_is_reported() {
        let problems = problems_with(
            "optimization",
            "subscribe = [\"observations_recorded\", \"goal_achieved\"]",
            "subscribe = [\"observations_recorded\", \"goal_achieved\", \"spend_recorded\"]",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("agent.subscribe[2]"), "{problems:?}");
        assert!(problems[0].contains("spend_recorded"), "{problems:?}");
    }

    #[test]
    fn the_agents_folder_of_0_1_0_is_warned_of_but_not_refused() {
        // 0.1.0 shipped content and strategy subscribed to topics nothing publishes on.
        let dir = tempfile::tempdir().expect("tempdir");
        let agents = dir.path().join("agents");
        std::fs::create_dir_all(&agents).expect("agents folder");
        for &(name, text) in crate::settings::agents::EMBEDDED_AGENTS {
            let text = match name {
                "content" => {
                    text.replacen("subscribe = []", "subscribe = [\"variant_blocked\"]", 1)
                }
                "strategy" => {
                    text.replacen("subscribe = []", "subscribe = [\"outcomes_recorded\"]", 1)
                }
                _ => text.to_owned(),
            };
            std::fs::write(agents.join(format!("{name}.toml")), text).expect("write agent");
        }
        let settings = Settings::load_from(dir.path(), None, EnvOverrides::new()).expect("loads");
        let checked = builtin().checked(&settings);
        assert!(checked.refused.is_empty(), "{:?}", checked.refused);
        let warned: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(
            warned.iter().any(|w| w.contains("variant_blocked")),
            "{warned:?}"
        );
        assert!(
            warned.iter().any(|w| w.contains("outcomes_recorded")),
            "{warned:?}"
        );
    }

    #[test]
    fn a_definition_without_an_implementation_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agents = dir.path().join("agents");
        std::fs::create_dir_all(&agents).expect("agents folder");
        for &(name, text) in crate::settings::agents::EMBEDDED_AGENTS {
            std::fs::write(agents.join(format!("{name}.toml")), text).expect("write agent");
        }
        std::fs::write(agents.join("pacing.toml"), "[agent]\n").expect("write agent");
        let settings = Settings::load_from(dir.path(), None, EnvOverrides::new()).expect("loads");
        let problems: Vec<String> = builtin()
            .check(&settings)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("pacing.toml"), "{problems:?}");
        assert!(
            problems[0].contains("no agent named `pacing`"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_campaign_region_without_a_rule_set_is_reported_by_check_and_warned_of_by_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let campaigns = dir.path().join("config/campaigns");
        std::fs::create_dir_all(&campaigns).expect("campaigns folder");
        // Each region in its own language; `ja` and `de` have no templates.
        let goal = |id: &str, regions: &[(&str, &str)]| {
            let list: Vec<String> = regions.iter().map(|(r, _)| format!("\"{r}\"")).collect();
            let languages: Vec<String> = regions
                .iter()
                .map(|(r, l)| format!("{r} = \"{l}\""))
                .collect();
            let mut copy: Vec<&str> = regions.iter().map(|(_, l)| *l).collect();
            copy.dedup();
            let copy: String = copy
                .iter()
                .map(|l| format!("[brief.copy.{l}]\nproduct = \"p\"\nmessages = [\"m\"]\n"))
                .collect();
            format!(
                "id = \"{id}\"\ntenant = \"acme\"\nobjective = \"signups\"\ntarget = 10\ndeadline = \"2026-12-31T00:00:00Z\"\nchannels = [\"search\"]\nregions = [{}]\n[budget]\ntotal = 100.0\ncurrency = \"USD\"\n[[segments]]\nid = \"everyone\"\n[brief]\nproduct = \"p\"\nlanding_url = \"https://example.com/p\"\nlanguages = {{ {} }}\n{copy}",
                list.join(", "),
                languages.join(", ")
            )
        };
        std::fs::write(
            campaigns.join("tokyo.toml"),
            goal("tokyo", &[("KR", "ko"), ("JP", "ja")]),
        )
        .expect("write campaign");
        std::fs::write(
            campaigns.join("nowhere.toml"),
            goal("nowhere", &[("XX", "en")]),
        )
        .expect("write campaign");
        std::fs::write(
            campaigns.join("europe.toml"),
            goal("europe", &[("DE", "de"), ("US", "en")]),
        )
        .expect("write campaign");
        std::fs::write(
            dir.path().join("config/campaignd.toml"),
            "[daemon]\ncampaigns_dir = \"config/campaigns\"\n",
        )
        .expect("write config");
        let settings = Settings::load_from(
            dir.path(),
            Some(&dir.path().join("config/campaignd.toml")),
            EnvOverrides::new(),
        )
        .expect("loads");
        let problems: Vec<String> = builtin()
            .check(&settings)
            .iter()
            .map(ToString::to_string)
            .collect();
        let rule_sets: Vec<&String> = problems
            .iter()
            .filter(|p| p.contains("no compliance rule set"))
            .collect();
        assert_eq!(rule_sets.len(), 2, "{problems:?}");
        // Regions no content language is written for, DE among them: never silent English.
        let languages: Vec<&String> = problems
            .iter()
            .filter(|p| p.contains("which the content playbook has no templates for"))
            .collect();
        assert_eq!(languages.len(), 2, "{problems:?}");
        assert!(
            languages
                .iter()
                .any(|p| p.contains("europe.toml: brief.languages") && p.contains("`DE`")),
            "{problems:?}"
        );
        let tokyo = rule_sets.iter().find(|p| p.contains("tokyo.toml"));
        assert!(
            tokyo.is_some_and(|p| p.contains("regions[1]") && p.contains("`JP`")),
            "{problems:?}"
        );
        assert!(
            rule_sets
                .iter()
                .any(|p| p.contains("nowhere.toml") && p.contains("regions[0]")),
            "{problems:?}"
        );
        // `run` starts and holds the campaign with the reason instead.
        assert!(builtin().checked(&settings).refused.is_empty());
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
