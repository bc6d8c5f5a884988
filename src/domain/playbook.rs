//! Reading an agent's `[playbook]` table out of its definition file `agents/<name>.toml`, for the
//! domain modules whose data lives there. Parsing only: each module validates its own values and
//! wraps these errors in its own type. The `[agent]` part belongs to settings and is ignored here.

use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize)]
struct AgentFile {
    playbook: Option<toml::Value>,
}

/// The `[playbook]` table of a whole agent definition file; `Ok(None)` when the file has none.
pub fn table_of(agent_file: &str) -> Result<Option<toml::Table>, String> {
    let file: AgentFile = toml::from_str(agent_file).map_err(|e| e.to_string())?;
    match file.playbook {
        Some(toml::Value::Table(table)) => Ok(Some(table)),
        Some(_) => Err("`playbook` must be a table".to_owned()),
        None => Ok(None),
    }
}

/// The contents of a `[playbook]` table as `T`.
pub fn parse_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())
}
