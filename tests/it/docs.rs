//! What the docs show is what campaignd does: the agent sample in `docs/agents.md` is the agent of
//! `examples/custom_agent.rs` line for line, and every `campaignd` command in a `sh` block of the
//! README and `docs/` is one the binary accepts; the ones that need no running daemon are run for
//! real and answer as the docs say.

use std::collections::BTreeSet;

use crate::support::{self, campaignd, manifest_dir};

/// The lines of every fenced block of `lang` in `text`, a line ending in `\` joined with the next.
fn blocks(text: &str, lang: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in text.lines() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == format!("```{lang}") => current = Some(Vec::new()),
            Some(_) if fence == "```" => found.extend(current.take()),
            Some(lines) => match line.strip_suffix('\\') {
                Some(start) => pending.push_str(start),
                None => {
                    pending.push_str(line);
                    lines.push(std::mem::take(&mut pending));
                }
            },
            None => {}
        }
    }
    found
}

/// Shell words: whitespace splits, single and double quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn doc_files() -> Vec<(String, String)> {
    let root = manifest_dir();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable doc");
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            (name, text)
        })
        .collect()
}

#[test]
fn the_agent_sample_is_the_examples_agent() {
    let doc = std::fs::read_to_string(manifest_dir().join("docs/agents.md")).expect("agents.md");
    let example =
        std::fs::read_to_string(manifest_dir().join("examples/custom_agent.rs")).expect("example");
    let example_lines: BTreeSet<&str> = example.lines().map(str::trim).collect();
    let sample = blocks(&doc, "rust")
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains("impl Agent for PacingGuard")))
        .expect("docs/agents.md shows the pacing guard");
    let mut compared = 0;
    for line in &sample {
        let line = line.trim();
        // The crate-internal spelling of imports and of the compiled-in definition differ.
        if line.is_empty()
            || line.starts_with("use ")
            || line.starts_with("//!")
            || line.starts_with("const DEFINITION")
            || line == "/// The definition file, compiled in as the embedded default."
        {
            continue;
        }
        assert!(
            example_lines.contains(line),
            "docs/agents.md shows a line examples/custom_agent.rs does not have: {line}"
        );
        compared += 1;
    }
    assert!(compared > 80, "only {compared} lines compared");
}

/// A documented command line: the words after `campaignd` (or `cargo run --release --`), without
/// environment assignments, redirections and pipes.
fn command_words(line: &str) -> Option<Vec<String>> {
    let line = line.split(['|', '>', '#']).next()?;
    let words = shell_words(line);
    // `C=$(campaignd …)` runs campaignd too.
    let start = words.iter().position(|w| {
        w == "campaignd" || w == "cargo" || w.ends_with("$(campaignd") || w.ends_with("$(cargo")
    })?;
    if words[..start].iter().any(|w| !w.contains('=')) {
        return None;
    }
    let rest = &words[start + 1..];
    let rest: &[String] = if words[start].ends_with("cargo") {
        let at = rest.iter().position(|w| w == "--")?;
        if !rest[..at].iter().any(|w| w == "run") || rest[..at].iter().any(|w| w == "--example") {
            return None;
        }
        &rest[at + 1..]
    } else {
        rest
    };
    Some(
        rest.iter()
            .map(|w| w.trim_end_matches(')').to_owned())
            .collect(),
    )
}

#[test]
fn every_documented_command_is_one_the_binary_accepts() {
    let mut commands = Vec::new();
    for (file, text) in doc_files() {
        for block in blocks(&text, "sh") {
            for line in block {
                if let Some(words) = command_words(&line) {
                    commands.push((file.clone(), line.trim().to_owned(), words));
                }
            }
        }
    }
    assert!(
        commands.len() >= 15,
        "only {} commands found",
        commands.len()
    );
    let mut ran = 0;
    for (file, line, words) in &commands {
        // The subcommand path (`kb decisions`, `check`), then what it is given.
        let subcommand: Vec<&str> = words
            .iter()
            .take_while(|w| !w.starts_with('-') && !w.contains('/') && !w.starts_with('$'))
            .map(String::as_str)
            .take(2)
            .collect();
        // The commands that group subcommands of their own.
        let grouped = matches!(
            subcommand.first().copied(),
            Some("kb" | "consents" | "observations" | "orders")
        );
        let (path, flags) = if grouped {
            (subcommand.clone(), &words[subcommand.len()..])
        } else {
            (
                subcommand[..subcommand.len().min(1)].to_vec(),
                &words[subcommand.len().min(1)..],
            )
        };
        let help = support::run(campaignd().args(&path).arg("--help"), None);
        assert_eq!(
            help.code,
            Some(0),
            "{file}: `{line}`: no subcommand {path:?}: {}",
            help.stderr
        );
        for flag in flags.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.stdout.contains(flag),
                "{file}: `{line}`: `campaignd {}` has no flag {flag}",
                path.join(" ")
            );
        }
        // What runs without a daemon or a database is run, from the repository's root as the docs
        // assume.
        if matches!(path.first().copied(), Some("check" | "plan" | "review")) {
            let outcome = support::run(campaignd().args(words).current_dir(manifest_dir()), None);
            assert!(
                matches!(outcome.code, Some(0 | 1)),
                "{file}: `{line}` exited {:?}: {}",
                outcome.code,
                outcome.stderr
            );
            if path == ["check"] || path == ["plan"] {
                assert_eq!(
                    outcome.code,
                    Some(0),
                    "{file}: `{line}`: {}",
                    outcome.stderr
                );
            }
            ran += 1;
        }
    }
    assert!(ran >= 4, "only {ran} documented commands were run");
}

#[test]
fn the_documented_review_commands_answer_as_the_docs_say() {
    let doc = std::fs::read_to_string(manifest_dir().join("docs/compliance.md")).expect("doc");
    let reviews: Vec<Vec<String>> = blocks(&doc, "sh")
        .into_iter()
        .flatten()
        .filter_map(|line| command_words(&line))
        .filter(|w| w.first().is_some_and(|w| w == "review"))
        .collect();
    assert!(
        reviews.len() >= 2,
        "docs/compliance.md shows {} reviews",
        reviews.len()
    );
    for words in reviews {
        let outcome = support::run(campaignd().args(&words).current_dir(manifest_dir()), None);
        let expected = if words.iter().any(|w| w == "--fix") {
            0
        } else {
            1
        };
        assert_eq!(
            outcome.code,
            Some(expected),
            "campaignd {}: {}{}",
            words.join(" "),
            outcome.stdout,
            outcome.stderr
        );
    }
}

#[test]
fn the_command_extraction_reads_what_the_docs_write() {
    assert_eq!(
        command_words("CAMPAIGND__LOG__FORMAT=json campaignd check"),
        Some(vec!["check".to_owned()])
    );
    assert_eq!(
        command_words("cargo run --release -- kb decisions --campaign kr | jq ."),
        Some(vec![
            "kb".into(),
            "decisions".into(),
            "--campaign".into(),
            "kr".into()
        ])
    );
    assert_eq!(command_words("cargo run --example custom_agent"), None);
    assert_eq!(command_words("curl -s $API/healthz"), None);
    assert_eq!(
        command_words("campaignd review --text '[광고] 봄세일 최대30% 할인!' --fix"),
        Some(vec![
            "review".into(),
            "--text".into(),
            "[광고] 봄세일 최대30% 할인!".into(),
            "--fix".into()
        ])
    );
    assert_eq!(
        command_words("C=$(campaignd kb decisions --campaign kr | head -1)"),
        Some(vec![
            "kb".into(),
            "decisions".into(),
            "--campaign".into(),
            "kr".into()
        ])
    );
}
