//! What a reload may not take from freshly loaded settings: the embedded defaults where the
//! running settings had files. At start a missing default file or folder means "a machine with no
//! files", and the shipped ones serve; once running, the same absence means a file was deleted or
//! a mount is gone, and taking the defaults would silently swap every token, campaign or playbook.
//! So a reload that would is rejected with the reason and the running settings stay.

use super::deployment::tenants_dir;
use super::{ConfigSource, Problem, Settings};

/// The running settings' config file, when it is gone: checked before anything is read, since the
/// embedded defaults that would take its place name other folders and bring problems of their own.
pub fn missing_config(current: &Settings) -> Option<Problem> {
    match &current.source {
        ConfigSource::Default(path) | ConfigSource::Explicit(path) if !path.exists() => {
            Some(Problem::new(
                current.source.label(),
                "",
                "is gone; a reload does not fall back on the embedded defaults once the daemon runs on files: restore it (the running configuration stays)",
            ))
        }
        _ => None,
    }
}

/// Why `fresh` may not replace `current` in a reload; empty when it may.
pub fn problems(current: &Settings, fresh: &Settings) -> Vec<Problem> {
    let mut problems = Vec::new();
    let gone = "is gone; a reload does not fall back on the embedded defaults once the daemon runs on files: restore it (the running configuration stays)";
    if current.source != ConfigSource::Embedded && fresh.source == ConfigSource::Embedded {
        problems.push(Problem::new(current.source.label(), "", gone));
        // Everything else now comes from the defaults' folders: that is the same mistake.
        return problems;
    }
    let daemon = &current.config.daemon;
    for (embedded_now, embedded_before, folder) in [
        (
            fresh.embedded.agents,
            current.embedded.agents,
            daemon.agents_dir.clone(),
        ),
        (
            fresh.embedded.campaigns,
            current.embedded.campaigns,
            daemon.campaigns_dir.clone(),
        ),
        (
            fresh.embedded.tenants,
            current.embedded.tenants,
            tenants_dir(&current.config),
        ),
    ] {
        if embedded_now && !embedded_before {
            problems.push(Problem::new(folder.display().to_string(), "", gone));
        }
    }
    for running in current.enabled_agents() {
        if fresh.agent(running.name.as_str()).is_none() {
            problems.push(Problem::new(
                running.file.as_str(),
                "",
                format!(
                    "is gone, and agent `{}` runs on it: restore it (to stop an agent, set `enabled = false` and restart)",
                    running.name
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::settings::EnvOverrides;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn load(dir: &Path) -> Settings {
        Settings::load_from(dir, None, EnvOverrides::new()).unwrap()
    }

    #[test]
    fn a_start_without_files_may_reload_without_files() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path());
        assert!(problems(&settings, &settings).is_empty());
    }

    #[test]
    fn files_that_disappear_are_not_replaced_by_the_embedded_ones() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "config/campaignd.toml", "");
        for (name, text) in crate::settings::agents::EMBEDDED_AGENTS {
            write(base, &format!("agents/{name}.toml"), text);
        }
        for (name, text) in crate::settings::campaigns::EMBEDDED_CAMPAIGNS {
            write(base, &format!("config/campaigns/{name}.toml"), text);
        }
        for (name, text) in crate::settings::deployment::EMBEDDED_TENANTS {
            write(base, &format!("config/tenants/{name}.toml"), text);
        }
        let running = load(base);
        assert_eq!(running.embedded, Default::default());

        std::fs::remove_dir_all(base.join("config/tenants")).unwrap();
        let found = problems(&running, &load(base));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].file, "config/tenants");

        std::fs::remove_dir_all(base.join("config/campaigns")).unwrap();
        std::fs::remove_file(base.join("agents/content.toml")).unwrap();
        let found: Vec<String> = problems(&running, &load(base))
            .iter()
            .map(|p| p.file.clone())
            .collect();
        let content = base.join("agents/content.toml").display().to_string();
        assert_eq!(
            found,
            ["config/campaigns", "config/tenants", content.as_str()]
        );

        std::fs::remove_file(base.join("config/campaignd.toml")).unwrap();
        let found = problems(&running, &load(base));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].file.ends_with("config/campaignd.toml"),
            "{found:?}"
        );
    }
}
