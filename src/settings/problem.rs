//! A problem found in the configuration: which file, which key, what is wrong. Also turns the
//! `toml` crate's errors into such problems, with the key path worked out from the error's span.
//!
//! Every message must let an operator fix the file without reading campaignd's source: it names the
//! file and the key, says what was expected and what was found, and gives the line. Nothing here
//! reads files or the environment.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in, as the operator would type it (`config/campaigns/kr.toml`), or
    /// `environment` for an override from a `CAMPAIGND__…` variable.
    pub file: String,
    /// The key path inside the file (`budget.total`, `segments[1].share`); empty when the problem
    /// concerns the whole file.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// Every problem found while loading, in the order found: the main config, then agents, then
/// campaigns. Never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} problem{} in the configuration",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            write!(f, "\n{problem}")?;
        }
        Ok(())
    }
}

impl Problems {
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Every syntax error in `text`, at most one per line (later errors on a line are usually echoes of
/// the first). Empty when the document parses.
pub fn syntax_problems(file: &str, text: &str) -> Vec<Problem> {
    let (table, errors) = DeTable::parse_recoverable(text);
    let mut problems: Vec<(usize, Problem)> = Vec::new();
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        let (line, column) = line_column(text, span.start);
        if problems.iter().any(|(seen, _)| *seen == line) {
            continue;
        }
        let key = key_at(table.get_ref(), &span);
        let message = format!(
            "syntax error at line {line}, column {column}: {}",
            error.message()
        );
        problems.push((line, Problem::new(file, key, message)));
    }
    problems.sort_by_key(|(line, _)| *line);
    problems.into_iter().map(|(_, p)| p).collect()
}

/// Turns an error from deserializing `text` (which parsed) into a problem naming the key.
pub fn deserialize_problem(file: &str, text: &str, error: &toml::de::Error) -> Problem {
    let span = error.span().unwrap_or(0..0);
    let (mut key, located) = match DeTable::parse(text) {
        // An empty span means the whole document (a missing top-level key).
        Ok(table) if !span.is_empty() => (key_at(table.get_ref(), &span), true),
        _ => (String::new(), !span.is_empty()),
    };
    let raw = error.message();
    // serde names the missing or unknown field only in the message; put it into the key path.
    if let Some(field) = quoted_after(raw, "missing field `") {
        push_key(&mut key, field);
    }
    let mut message = humanize(raw);
    if located {
        let (line, column) = line_column(text, span.start);
        message.push_str(&format!(" (line {line}, column {column})"));
    }
    Problem::new(file, key, message)
}

/// Rewrites serde's wording into an operator's: "expected a number, found a string \"ten\"".
pub fn humanize(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                expected_phrase(expected),
                found_phrase(found)
            );
        }
    }
    if let Some(field) = quoted_after(message, "missing field `") {
        return format!("required key `{field}` is missing");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    message.to_owned()
}

fn expected_phrase(expected: &str) -> String {
    match expected {
        "f64" | "f32" => "a number".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        "an RFC 3339 formatted date and time string" => {
            "a date and time in quotes, such as \"2026-12-31T23:59:59Z\"".to_owned()
        }
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

fn found_phrase(found: &str) -> String {
    let articled = [
        ("string ", "a string "),
        ("integer ", "the integer "),
        ("floating point ", "the number "),
        ("boolean ", "the boolean "),
    ];
    for (from, to) in articled {
        if let Some(rest) = found.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.to_owned(),
    }
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(field, _)| field)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Appends a key to a dotted path, quoting it when it is not a bare TOML key.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

/// The key path of the entry an error span points at. Prefers the deepest entry whose key or value
/// contains the whole span; failing that (a table header for a missing key), the deepest one that
/// overlaps it.
fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> String {
    let mut best = Best::default();
    walk_table(table, "", span, &mut best);
    best.containing
        .or(best.overlapping)
        .map(|(_, path)| path)
        .unwrap_or_default()
}

#[derive(Default)]
struct Best {
    containing: Option<(usize, String)>,
    overlapping: Option<(usize, String)>,
}

impl Best {
    fn consider(
        &mut self,
        candidate: &Range<usize>,
        depth: usize,
        path: &str,
        span: &Range<usize>,
    ) {
        let contains = candidate.start <= span.start && span.end <= candidate.end;
        let overlaps = candidate.start < span.end && span.start < candidate.end;
        let slot = if contains {
            &mut self.containing
        } else if overlaps {
            &mut self.overlapping
        } else {
            return;
        };
        if slot.as_ref().is_none_or(|(d, _)| depth >= *d) {
            *slot = Some((depth, path.to_owned()));
        }
    }
}

fn walk_table(table: &DeTable<'_>, path: &str, span: &Range<usize>, best: &mut Best) {
    for (key, value) in table {
        let mut child = path.to_owned();
        push_key(&mut child, key.get_ref());
        let depth = child.matches(['.', '[']).count() + 1;
        best.consider(&key.span(), depth, &child, span);
        best.consider(&value.span(), depth, &child, span);
        walk_value(value.get_ref(), &child, span, best);
    }
}

fn walk_value(value: &DeValue<'_>, path: &str, span: &Range<usize>, best: &mut Best) {
    match value {
        DeValue::Table(table) => walk_table(table, path, span, best),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                let child = format!("{path}[{index}]");
                let depth = child.matches(['.', '[']).count() + 1;
                best.consider(&item.span(), depth, &child, span);
                walk_value(item.get_ref(), &child, span, best);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        id: String,
        budget: Budget,
        #[serde(default)]
        segments: Vec<Segment>,
        #[serde(default)]
        agent: Option<Agent>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Budget {
        total: f64,
        currency: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Segment {
        id: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Agent {
        supervision: Supervision,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Supervision {
        max_restarts: u32,
    }

    fn problem(text: &str) -> Problem {
        let error = toml::from_str::<Doc>(text).unwrap_err();
        deserialize_problem("c.toml", text, &error)
    }

    #[test]
    fn wrong_type_names_key_expected_and_found() {
        let p = problem("id = \"x\"\n[budget]\ntotal = \"ten\"\ncurrency = \"USD\"\n");
        assert_eq!(p.key, "budget.total");
        assert_eq!(
            p.message,
            "expected a number, found a string \"ten\" (line 3, column 9)"
        );
        assert_eq!(
            p.to_string(),
            "c.toml: budget.total: expected a number, found a string \"ten\" (line 3, column 9)"
        );
    }

    #[test]
    fn unknown_key_in_an_array_element_names_its_index() {
        let p = problem(
            "id = \"x\"\nsegments = [{id = \"a\"}, {idd = \"b\"}]\n[budget]\ntotal = 1.0\ncurrency = \"USD\"\n",
        );
        assert_eq!(p.key, "segments[1].idd");
        assert!(
            p.message.starts_with("unknown key `idd`, expected `id`"),
            "{}",
            p.message
        );
    }

    #[test]
    fn missing_keys_name_their_table() {
        let p = problem("id = \"x\"\n[budget]\ntotal = 1.0\n");
        assert_eq!(p.key, "budget.currency");
        assert!(
            p.message.starts_with("required key `currency` is missing"),
            "{}",
            p.message
        );

        let p =
            problem("id = \"x\"\n[budget]\ntotal = 1.0\ncurrency = \"USD\"\n[agent.supervision]\n");
        assert_eq!(p.key, "agent.supervision.max_restarts");

        let p = problem("[budget]\ntotal = 1.0\ncurrency = \"USD\"\n");
        assert_eq!(p.key, "id");
    }

    #[test]
    fn negative_where_unsigned_expected() {
        let text = "id = \"x\"\n[budget]\ntotal = 1.0\ncurrency = \"USD\"\n[agent.supervision]\nmax_restarts = -1\n";
        let p = problem(text);
        assert_eq!(p.key, "agent.supervision.max_restarts");
        assert!(
            p.message
                .starts_with("expected a whole number, 0 or more, found the integer `-1`"),
            "{}",
            p.message
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column_once_per_line() {
        let text = "id = \"x\"\nkind = = \"a\"\n[budget\ntotal = 1\n";
        let problems = syntax_problems("c.toml", text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .message
                .starts_with("syntax error at line 2, column 8"),
            "{problems:?}"
        );
        assert!(
            problems[1].message.starts_with("syntax error at line 3"),
            "{problems:?}"
        );
        assert!(syntax_problems("c.toml", "a = 1\n").is_empty());
    }

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("a = \"광고\"\nb = 1", 13), (2, 1));
        assert_eq!(line_column("광고 = 1", 7), (1, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }

    #[test]
    fn odd_keys_are_quoted() {
        let mut path = String::new();
        push_key(&mut path, "rules");
        push_key(&mut path, "KR AD");
        assert_eq!(path, "rules.\"KR AD\"");
    }
}
