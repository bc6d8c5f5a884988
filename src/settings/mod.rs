//! Loading and validating what an operator writes: the deployment config (`config/campaignd.toml`
//! plus `CAMPAIGND__…` environment overrides), the agent definitions (`agents/*.toml`) and the
//! campaign goals (`config/campaigns/*.toml`).
//!
//! Loading collects every problem rather than stopping at the first, each with the file, the key
//! path and the line, so that one `campaignd check` shows everything to fix. This module reads
//! files and the environment and nothing else: it must never open the knowledge base, start an
//! agent or install a logger; the daemon does that with the [`Settings`] it returns.
//!
//! # Where things come from
//!
//! - The main config: the file given with `--config` (it must exist), else `config/campaignd.toml`
//!   in the current folder when present, else the defaults compiled into the binary. Environment
//!   variables `CAMPAIGND__<SECTION>__<KEY>` override any key.
//! - Agents and campaigns: the folders named by `daemon.agents_dir` and `daemon.campaigns_dir`.
//!   When such a folder does not exist and is the default one, the shipped files compiled into the
//!   binary are used, so `campaignd run` works on a machine with no files.

pub mod agents;
pub mod campaigns;
pub mod config;
pub mod connectors;
pub mod deployment;
pub mod embedded {
    //! The shipped files compiled into the binary, listed by `build.rs`.
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
mod live;
pub mod problem;
pub mod reload;

use std::path::{Path, PathBuf};

pub use agents::{AgentDefinition, Supervision, shipped_agent_specs};
pub use config::{
    ClockMode, ClockSettings, Config, ConfigSource, DaemonSettings, EnvOverrides, LogSettings,
    MarketSettings, MarketSource, ProtocolSettings, RuntimeSettings,
};
pub use live::LiveSettings;
pub use problem::{Problem, Problems};

use crate::domain::campaign::CampaignGoal;

/// Everything the daemon needs from configuration, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    /// Which file (or the embedded defaults) the config came from.
    pub source: ConfigSource,
    /// Every definition in the agents folder, sorted by name, enabled or not.
    pub agents: Vec<AgentDefinition>,
    /// Every campaign, sorted by id.
    pub campaigns: Vec<CampaignGoal>,
    /// What came from the files compiled into the binary instead of the deployment's folders.
    pub embedded: Embedded,
}

/// Which parts of the settings are the shipped files compiled in, because their default folder
/// does not exist. A reload may not fall back on them where the running settings did not (see
/// [`reload::problems`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Embedded {
    pub agents: bool,
    pub campaigns: bool,
    pub tenants: bool,
}

impl Settings {
    /// Loads everything from the current folder and this process's environment.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, Problems> {
        Loader {
            base: None,
            env: config::env_overrides(),
        }
        .load(explicit)
    }

    /// Every problem [`Settings::load`] would report; empty when the configuration is valid.
    pub fn check(explicit: Option<&Path>) -> Vec<Problem> {
        Self::load(explicit).err().map(|p| p.0).unwrap_or_default()
    }

    /// Loads with relative paths resolved against `base` instead of the current folder, and with
    /// the given overrides instead of the process environment. For tests and embedding.
    pub fn load_from(
        base: &Path,
        explicit: Option<&Path>,
        env: EnvOverrides,
    ) -> Result<Settings, Problems> {
        Loader {
            base: Some(base.to_path_buf()),
            env,
        }
        .load(explicit)
    }

    /// The enabled agents' definitions.
    pub fn enabled_agents(&self) -> impl Iterator<Item = &AgentDefinition> {
        self.agents.iter().filter(|a| a.enabled)
    }

    /// The definition of agent `name`, enabled or not.
    pub fn agent(&self, name: &str) -> Option<&AgentDefinition> {
        self.agents.iter().find(|a| a.name.as_str() == name)
    }
}

/// A file read into memory with the name problems give it.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    /// The path as the operator would type it, or `<embedded …>`.
    pub label: String,
    /// The file name without `.toml`: the agent name or campaign id.
    pub stem: String,
    pub text: String,
}

impl SourceFile {
    /// Reads a file, turning every way that can fail into a problem naming the file.
    pub fn read(path: &Path) -> Result<SourceFile, Problem> {
        let label = path.display().to_string();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Ok(SourceFile { label, stem, text }),
                Err(e) => Err(Problem::new(
                    label,
                    "",
                    format!(
                        "is not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Problem::new(label, "", "file not found"))
            }
            Err(e) => Err(Problem::new(label, "", format!("cannot be read: {e}"))),
        }
    }
}

/// A name as campaignd writes them: lowercase ASCII letters, digits and `_`, starting with a
/// letter (`compliance`, `kr_students_signups`, `agent_isolated`).
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Loader {
    /// `None`: relative paths stay relative to the current folder (and print that way).
    base: Option<PathBuf>,
    env: EnvOverrides,
}

impl Loader {
    fn resolve(&self, path: &Path) -> PathBuf {
        match &self.base {
            Some(base) => base.join(path),
            None => path.to_path_buf(),
        }
    }

    fn load(&self, explicit: Option<&Path>) -> Result<Settings, Problems> {
        let mut problems = Vec::new();

        let (source, text) = match explicit {
            Some(path) => {
                let path = self.resolve(path);
                match SourceFile::read(&path) {
                    Ok(file) => (ConfigSource::Explicit(path), file.text),
                    Err(problem) => {
                        problems.push(problem);
                        (ConfigSource::Explicit(path), String::new())
                    }
                }
            }
            None => {
                let path = self.resolve(config::default_path());
                if path.exists() {
                    match SourceFile::read(&path) {
                        Ok(file) => (ConfigSource::Default(path), file.text),
                        Err(problem) => {
                            problems.push(problem);
                            (ConfigSource::Default(path), String::new())
                        }
                    }
                } else {
                    (ConfigSource::Embedded, config::EMBEDDED_CONFIG.to_owned())
                }
            }
        };

        // Even when the config is broken, the agents and campaigns are checked, from the folders
        // the broken file names when it can be read that far.
        let loaded = if problems.is_empty() {
            match config::load(&source, &text, &self.env) {
                Ok(config) => Some(config),
                Err(found) => {
                    problems.extend(found);
                    None
                }
            }
        } else {
            None
        };
        let (agents_dir, campaigns_dir, defaults) = match &loaded {
            Some(c) => (
                c.daemon.agents_dir.clone(),
                c.daemon.campaigns_dir.clone(),
                c.runtime.clone(),
            ),
            None => {
                let (a, c) = config::folders_of_broken(&text);
                (a, c, RuntimeSettings::default())
            }
        };
        let default_daemon = DaemonSettings::default();

        let mut embedded = Embedded::default();
        let mut agents = Vec::new();
        let agent_files = self.sources(
            &agents_dir,
            &default_daemon.agents_dir,
            agents::embedded,
            &mut problems,
            &mut embedded.agents,
        );
        for file in &agent_files {
            match agents::parse(file, &defaults) {
                Ok(def) => agents.push(def),
                Err(found) => problems.extend(found),
            }
        }

        let mut campaigns = Vec::new();
        let campaign_files = self.sources(
            &campaigns_dir,
            &default_daemon.campaigns_dir,
            campaigns::embedded,
            &mut problems,
            &mut embedded.campaigns,
        );
        for file in &campaign_files {
            match campaigns::parse(file) {
                Ok(goal) => campaigns.push((file.label.clone(), goal)),
                Err(found) => problems.extend(found),
            }
        }
        problems.extend(campaigns::validate_together(&campaigns));

        if let Some(config) = &loaded
            && agent_files.len() == agents.len()
        {
            for (index, sender) in config.runtime.command_senders.iter().enumerate() {
                if !agents.iter().any(|a| a.name.as_str() == sender) {
                    let key = format!("runtime.command_senders[{index}]");
                    let message = format!(
                        "`{sender}` is not an agent defined in {}",
                        agents_dir.display()
                    );
                    problems.push(
                        match config::env_var_for("runtime.command_senders", &self.env) {
                            Some(variable) => {
                                Problem::new("environment", format!("{variable} ({key})"), message)
                            }
                            None => Problem::new(source.label(), key, message),
                        },
                    );
                }
            }
        }

        // Across files only once each file reads on its own: a problem there would be reported twice.
        if let Some(config) = &loaded
            && problems.is_empty()
        {
            let (found, tenants) =
                deployment::problems(config, &source.label(), &agents, &campaigns, &|path| {
                    self.resolve(path)
                });
            problems.extend(found);
            embedded.tenants = tenants == deployment::TenantsSource::Embedded;
        }

        match loaded {
            Some(config) if problems.is_empty() => Ok(Settings {
                config,
                source,
                agents,
                campaigns: campaigns.into_iter().map(|(_, goal)| goal).collect(),
                embedded,
            }),
            _ => Err(Problems(problems)),
        }
    }

    /// The `.toml` files of a folder, sorted by name; the embedded files when the folder is the
    /// default one and does not exist.
    fn sources(
        &self,
        dir: &Path,
        default_dir: &Path,
        embedded: fn(&Path) -> Vec<SourceFile>,
        problems: &mut Vec<Problem>,
        used_embedded: &mut bool,
    ) -> Vec<SourceFile> {
        let resolved = self.resolve(dir);
        let entries = match std::fs::read_dir(&resolved) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir == default_dir {
                    *used_embedded = true;
                    return embedded(dir);
                }
                problems.push(Problem::new(
                    resolved.display().to_string(),
                    "",
                    "folder not found",
                ));
                return Vec::new();
            }
            Err(e) => {
                problems.push(Problem::new(
                    resolved.display().to_string(),
                    "",
                    format!("cannot be read: {e}"),
                ));
                return Vec::new();
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && !path.is_dir())
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            match SourceFile::read(&path) {
                Ok(file) => files.push(file),
                Err(problem) => problems.push(problem),
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn snake_case_names() {
        for good in ["compliance", "a1_b2", "kr_students_signups"] {
            assert!(is_snake_case(good), "{good}");
        }
        for bad in ["", "Compliance", "1abc", "_x", "kr-students", "광고"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }

    #[test]
    fn an_empty_folder_runs_on_the_embedded_files() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load_from(dir.path(), None, EnvOverrides::new()).unwrap();
        assert_eq!(settings.source, ConfigSource::Embedded);
        assert_eq!(settings.agents.len(), agents::EMBEDDED_AGENTS.len());
        assert_eq!(
            settings.campaigns.len(),
            campaigns::EMBEDDED_CAMPAIGNS.len()
        );
        assert!(settings.agent("orchestrator").is_some());
    }

    #[test]
    fn a_missing_explicit_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let problems = Settings::load_from(
            dir.path(),
            Some(Path::new("nope.toml")),
            EnvOverrides::new(),
        )
        .unwrap_err();
        assert_eq!(
            problems.0[0].file,
            dir.path().join("nope.toml").display().to_string()
        );
        assert_eq!(problems.0[0].message, "file not found");
    }

    #[test]
    fn problems_from_every_file_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "config/campaignd.toml",
            "[daemon]\nagents_dir = \"my_agents\"\ncampaigns_dir = \"goals\"\n[log]\nformat = \"xml\"\n",
        );
        write(
            base,
            "my_agents/orchestrator.toml",
            "[agent]\nmailbox = \"big\"\n",
        );
        write(base, "my_agents/scout.toml", "[agent]\n");
        write(base, "my_agents/notes.txt", "not a definition");
        write(base, "goals/spring.toml", "id = \"spring\"\n");
        write(base, "goals/broken.toml", "id = \n");
        let problems = Settings::load_from(base, None, EnvOverrides::new()).unwrap_err();
        let found: Vec<(String, String)> = problems
            .iter()
            .map(|p| {
                (
                    p.file
                        .strip_prefix(&base.display().to_string())
                        .unwrap_or(&p.file)
                        .to_owned(),
                    p.key.clone(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("/config/campaignd.toml".to_owned(), "log.format".to_owned()),
                (
                    "/my_agents/orchestrator.toml".to_owned(),
                    "agent.mailbox".to_owned()
                ),
                ("/goals/broken.toml".to_owned(), "id".to_owned()),
                ("/goals/spring.toml".to_owned(), "tenant".to_owned()),
            ],
            "{problems}"
        );
    }

    #[test]
    fn a_configured_folder_that_is_missing_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config/campaignd.toml",
            "[daemon]\ncampaigns_dir = \"goals\"\n",
        );
        let problems = Settings::load_from(dir.path(), None, EnvOverrides::new()).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        assert!(problems.0[0].file.ends_with("goals"));
        assert_eq!(problems.0[0].message, "folder not found");
    }

    #[test]
    fn command_senders_must_be_agents() {
        let dir = tempfile::tempdir().unwrap();
        let env = [(
            "CAMPAIGND__RUNTIME__COMMAND_SENDERS".to_owned(),
            "orchestrator,boss".to_owned(),
        )]
        .into();
        let problems = Settings::load_from(dir.path(), None, env).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        assert_eq!(problems.0[0].file, "environment");
        assert_eq!(
            problems.0[0].key,
            "CAMPAIGND__RUNTIME__COMMAND_SENDERS (runtime.command_senders[1])"
        );
    }
}
