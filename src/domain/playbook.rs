//! Reading an agent's `[playbook]` table out of its definition file `agents/<name>.toml`, for the
//! domain modules whose data lives there. Parsing only: each module validates its own values and
//! wraps these errors in its own type. The `[agent]` part belongs to settings and is ignored here.

use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize)]
struct AgentFile {
    playbook: Option<toml::Value>,
}

/// Why an agent file's `[playbook]` could not be read. The TOML error is shown as it is (it names
/// the line and the key), so the wrapping module's prefix is the only context added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The file is not TOML, or the table does not have the keys and types `T` needs.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("`playbook` must be a table")]
    NotATable,
}

/// The `[playbook]` table of a whole agent definition file; `Ok(None)` when the file has none.
pub fn table_of(agent_file: &str) -> Result<Option<toml::Table>, TableError> {
    let file: AgentFile = toml::from_str(agent_file)?;
    match file.playbook {
        Some(toml::Value::Table(table)) => Ok(Some(table)),
        Some(_) => Err(TableError::NotATable),
        None => Ok(None),
    }
}

/// The contents of a `[playbook]` table as `T`.
pub fn parse_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T, TableError> {
    Ok(toml::Value::Table(table.clone()).try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Small {
        draws: u32,
    }

    #[test]
    fn the_playbook_table_is_found_or_its_absence_reported() {
        let table = table_of("[agent]\nname = \"x\"\n[playbook]\ndraws = 3\n").unwrap();
        let small: Small = parse_table(&table.unwrap()).unwrap();
        assert_eq!(small, Small { draws: 3 });
        assert_eq!(table_of("[agent]\nname = \"x\"\n").unwrap(), None);
    }

    #[test]
    fn errors_keep_their_text() {
        let err = table_of("playbook = 3\n").unwrap_err();
        assert_eq!(err, TableError::NotATable);
        assert_eq!(err.to_string(), "`playbook` must be a table");
        let syntax = table_of("[playbook\n").unwrap_err();
        let toml_text = toml::from_str::<toml::Table>("[playbook\n")
            .unwrap_err()
            .to_string();
        assert_eq!(syntax.to_string(), toml_text, "the TOML error as it is");
        let table = table_of("[playbook]\ndraws = \"many\"\n").unwrap().unwrap();
        let wrong = parse_table::<Small>(&table).unwrap_err();
        assert!(matches!(wrong, TableError::Toml(_)));
        assert!(wrong.to_string().contains("draws"), "{wrong}");
    }
}
