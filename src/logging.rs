//! Structured logs for the daemon and the command line: human-readable or JSON lines.
//!
//! Every message an agent handles runs inside a `handle` span carrying its correlation id, agent
//! and action (see `runtime`), so both formats show the chain of work each line belongs to. A JSON
//! line is one flat object: `timestamp`, `level`, `target`, the event's own fields under `fields`
//! (with `message`), the names of the enclosing spans under `spans` (outermost first), and the
//! fields of those spans at the top level, where the innermost span wins a name two spans share.
//! The line is built as one map before it is written, so it can never hold a key twice; a span
//! field that would take the name of one of the fixed keys is written as `span_<name>` instead.
//! Logs go to stderr: stdout belongs to commands that print data (ids, JSON, JSON Lines). Nothing
//! here may panic on what a log call records.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::VisitOutput;
use tracing_subscriber::fmt::format::{FormatEvent, JsonFields, JsonVisitor, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Coloured, multi-field lines for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}`: expected `pretty` or `json`"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter `{filter}`: {reason}")]
    Filter { filter: String, reason: String },
    #[error("a global logger was already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax (`info`, `campaignd=debug,sled=warn`);
/// the `RUST_LOG` environment variable, when set, wins over it.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => from_env,
        _ => filter.to_owned(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| LoggingError::Filter {
        filter: filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)
}

/// The keys every JSON line may have besides span fields.
const FIXED_KEYS: [&str; 5] = ["timestamp", "level", "target", "fields", "spans"];

/// Formats an event as one flat JSON object (see the module documentation). Span fields must have
/// been recorded with [`JsonFields`], which stores them as a JSON object per span.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = event_fields(event);
        let meta = event.metadata();
        // Records forwarded from the `log` crate carry their real origin in `log.*` fields.
        let target = match fields.remove("log.target") {
            Some(Value::String(target)) => target,
            _ => meta.target().to_owned(),
        };
        for key in ["log.module_path", "log.file", "log.line"] {
            fields.remove(key);
        }

        let mut line = Map::new();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                spans.push(Value::String(span.name().to_owned()));
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // A span without fields is stored as an empty string, not as `{}`.
                let Ok(Value::Object(span_fields)) = serde_json::from_str(&recorded.fields) else {
                    continue;
                };
                for (key, value) in span_fields {
                    let key = if FIXED_KEYS.contains(&key.as_str()) {
                        format!("span_{key}")
                    } else {
                        key
                    };
                    // Inner spans come later, so they overwrite: the innermost span wins.
                    line.insert(key, value);
                }
            }
        }
        line.insert("timestamp".to_owned(), Value::String(timestamp()));
        line.insert(
            "level".to_owned(),
            Value::String(meta.level().as_str().to_owned()),
        );
        line.insert("target".to_owned(), Value::String(target));
        line.insert("fields".to_owned(), Value::Object(fields));
        if !spans.is_empty() {
            line.insert("spans".to_owned(), Value::Array(spans));
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's own fields as a JSON map, with the same value encoding as span fields.
fn event_fields(event: &Event<'_>) -> Map<String, Value> {
    let mut text = String::new();
    let mut visitor = JsonVisitor::new(&mut text);
    event.record(&mut visitor);
    if visitor.finish().is_err() {
        return Map::new();
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every line written while `emit` runs, parsed.
    fn lines(emit: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The keys of a JSON object line in order, duplicates included (serde_json would keep one).
    fn top_level_keys(line: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                mut self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    self.0.push(key);
                }
                Ok(self.0)
            }
        }
        let mut de = serde_json::Deserializer::from_str(line);
        serde::Deserializer::deserialize_map(&mut de, Keys(Vec::new())).unwrap_or_default()
    }

    #[test]
    fn nested_spans_flatten_without_repeating_a_key_and_the_innermost_wins() {
        let found = lines(|| {
            let outer = tracing::info_span!("handle", correlation_id = "outer", agent = "strategy");
            let _outer = outer.enter();
            let inner =
                tracing::info_span!("handle", correlation_id = "inner", level = "x", name = 3);
            let _inner = inner.enter();
            tracing::info!(level = "custom", agent = "content", "hello {}", 1);
        });
        assert_eq!(found.len(), 1, "{found:?}");
        let line = &found[0];
        let keys = top_level_keys(line);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "duplicate keys in {line}");
        let parsed: Value = serde_json::from_str(line).unwrap_or_default();
        assert_eq!(parsed["correlation_id"], "inner", "{line}");
        assert_eq!(parsed["agent"], "strategy", "{line}");
        assert_eq!(parsed["level"], "INFO", "{line}");
        assert_eq!(parsed["span_level"], "x", "{line}");
        assert_eq!(parsed["name"], 3, "{line}");
        assert_eq!(parsed["fields"]["message"], "hello 1", "{line}");
        assert_eq!(parsed["fields"]["level"], "custom", "{line}");
        assert_eq!(parsed["fields"]["agent"], "content", "{line}");
        assert_eq!(
            parsed["spans"],
            serde_json::json!(["handle", "handle"]),
            "{line}"
        );
    }

    #[test]
    fn a_line_outside_any_span_has_no_span_keys() {
        let found = lines(|| tracing::warn!(n = 5_u64, "plain"));
        let parsed: Value =
            serde_json::from_str(found.first().map_or("", String::as_str)).unwrap_or_default();
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["fields"]["n"], 5);
        assert!(parsed.get("spans").is_none(), "{parsed}");
        assert!(parsed.get("correlation_id").is_none(), "{parsed}");
    }
}
