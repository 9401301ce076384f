//! The README's commands and documents, checked: the install line names this crate and its
//! features, the two commands name what exists and what CI runs, every TOML document loads as a
//! configuration, and every metric and label value in the alert expressions is one the crate
//! records. (The README's Rust blocks are compiled as doc-tests: it is the crate's doc.)

use altinn_systemuser::config::AuthConfig;
use altinn_systemuser::telemetry::metrics::{ALL, label};
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The fenced blocks of this language: (info string, body).
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None if trimmed.starts_with("```") && trimmed[3..].split(',').next() == Some(lang) => current = Some((indent, Vec::new())),
            Some((_, body)) if trimmed.starts_with("```") => {
                out.push(body.join("\n"));
                current = None;
            }
            Some((indent, body)) => body.push(line.get(*indent..).unwrap_or(trimmed).to_owned()),
            None => {}
        }
    }
    out
}

#[test]
fn the_install_line_names_this_crate_and_its_features() {
    let readme = read("README.md");
    let cargo: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let features = cargo["features"].as_table().unwrap();
    let first = &blocks(&readme, "sh")[0];
    assert!(
        readme.find(first.as_str()) < readme.find("## The two commands"),
        "the install line comes first"
    );
    let words: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(&words[..3], ["cargo", "add", env!("CARGO_PKG_NAME")]);
    let i = words.iter().position(|w| *w == "--features").unwrap();
    for f in words[i + 1].split(',') {
        assert!(features.contains_key(f), "feature {f} in the install line");
    }
}

#[test]
fn the_two_commands_name_what_exists_and_what_ci_runs() {
    let readme = read("README.md");
    let commands = blocks(&readme, "sh");
    let two = commands.iter().find(|b| b.contains("cargo test")).unwrap();
    for line in two.lines() {
        let command = line.split('#').next().unwrap().trim();
        if let Some(example) = command.strip_prefix("cargo run --example ") {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("examples/{example}.rs"))
                    .exists()
            );
        }
        if command.starts_with("cargo test") {
            assert!(
                read(".ci/run").lines().any(|l| l.trim() == command),
                "{command} is what .ci/run runs"
            );
        }
    }
}

#[test]
fn every_toml_document_loads_as_a_configuration() {
    let docs = blocks(&read("README.md"), "toml");
    assert!(!docs.is_empty());
    // altinn-pep's file (with [[routes]]) is checked by tests/pep/docs.rs.
    for doc in docs.into_iter().filter(|d| !d.contains("[[routes]]")) {
        let config: AuthConfig = toml::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        // The secrets are references, not values: nothing to read here, and no value to leak.
        assert!(!format!("{config:?}").contains("BEGIN"));
    }
}

#[test]
fn the_alerts_name_real_metrics_and_labels() {
    let readme = read("README.md");
    let start = readme.find("| alert | expression (PromQL)").expect("the alert table");
    let table: String = readme[start..]
        .lines()
        .take_while(|l| l.trim_start().starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = 0;
    for word in table.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(rest) = word.strip_prefix("altinn_systemuser_") {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .fold(word, |w, s| w.strip_suffix(s).unwrap_or(w));
            assert!(ALL.contains(&base), "{word} ({rest}) is not a metric of the crate");
            names += 1;
        }
    }
    assert!(names >= 6);
    let values = [
        label::BREAKER_OPEN,
        label::ERROR,
        label::REFUSED,
        label::RESULT,
        label::OUTCOME,
        label::REASON,
    ];
    for pair in table.split('{').skip(1).map(|s| s.split('}').next().unwrap()) {
        for assignment in pair.split(',').filter(|a| a.contains('=')) {
            let (k, v) = assignment.split_once('=').unwrap();
            assert!(values.contains(&k.trim()), "label {k}");
            assert!(values.contains(&v.trim().trim_matches('"')), "label value {v}");
        }
    }
}
