//! The rubric reference (`docs/rubric.md`), generated from the source docs.
//!
//! The file format is documented once, in `parse.rs`; phrase matching in `matcher.rs`; each rule
//! kind in its own file. [`reference_markdown`] stitches those `//!` docs together, so the
//! reference cannot drift from the code: a test compares it with `docs/rubric.md`.

use super::rules::KINDS;

/// How `docs/rubric.md` is regenerated (printed by the staleness test, written into the file).
pub const REGENERATE: &str = "CALLQC_UPDATE_DOCS=1 cargo test --test rubric";

/// The leading `//!` doc of a source file, as Markdown.
fn module_doc(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("//!") else {
            break;
        };
        out.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        out.push('\n');
    }
    out
}

/// Demote Markdown headings by `levels` (outside code blocks: `#` starts a TOML comment there).
fn demote(markdown: &str, levels: usize) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push_str(&"#".repeat(levels));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The whole reference: file format, phrase matching, then every rule kind.
pub fn reference_markdown() -> String {
    let mut md = String::new();
    md.push_str("# Rubric reference\n\n");
    md.push_str(&format!(
        "<!-- Generated from the docs in src/rubric/ (parse.rs, matcher.rs, rules/*.rs) by \
         callqc::rubric::reference_markdown(). Do not edit by hand; regenerate with: {REGENERATE} -->\n\n"
    ));
    md.push_str(
        "How to write a rubric: the file format, how phrases are matched through recognition \
         errors, and every rule kind with what it checks, why QC cares and an example. The \
         default rubric for a 12345 centre is `rubrics/12345.toml`.\n\n",
    );
    md.push_str(&demote(&module_doc(include_str!("parse.rs")), 1));
    md.push_str("\n## How phrases are matched\n\n");
    md.push_str(&module_doc(include_str!("matcher.rs")));
    md.push_str("\n## Rule kinds\n\n");
    for k in KINDS {
        md.push_str(&format!("- [`{0}`](#{0})\n", k.kind.name()));
    }
    for k in KINDS {
        md.push_str(&format!("\n### {}\n\n", k.kind.name()));
        md.push_str(&demote(&module_doc(k.source), 3));
    }
    md.push_str("\n## 禁语 by meaning\n\n");
    md.push_str(&demote(&module_doc(include_str!("grammar.rs")), 2));
    md.push('\n');
    md.push_str(&demote(&module_doc(include_str!("sentence.rs")), 2));
    md.push_str(&default_constructions(include_str!(
        "../../rubrics/12345.toml"
    )));
    // One trailing newline, however the last doc ended.
    while md.ends_with("\n\n") {
        md.pop();
    }
    md
}

/// The shipped rubric's constructions, item by item: each pattern with what it catches and the
/// example it is checked against at load.
fn default_constructions(rubric: &str) -> String {
    let mut md = String::from(
        "\n### The default rubric's constructions\n\nGenerated from `rubrics/12345.toml`: \
         each construction with what it catches and the example it must catch.\n",
    );
    let Ok(doc) = rubric.parse::<toml::Table>() else {
        return md;
    };
    let items = doc
        .get("items")
        .and_then(|i| i.as_array())
        .cloned()
        .unwrap_or_default();
    for item in items {
        let rule = item.get("rule").and_then(|r| r.as_table());
        let Some(patterns) = rule
            .and_then(|r| r.get("patterns"))
            .and_then(|p| p.as_array())
        else {
            continue;
        };
        let id = item.get("id").and_then(|v| v.as_str()).unwrap_or("?");
        let min = rule
            .and_then(|r| r.get("scorer"))
            .and_then(|s| s.get("min"))
            .and_then(|m| m.as_float())
            .map_or(String::new(), |m| format!("; scorer min {m}"));
        md.push_str(&format!(
            "\n#### `{id}` ({} constructions{min})\n\n",
            patterns.len()
        ));
        md.push_str("| construction | catches | example |\n| --- | --- | --- |\n");
        for p in patterns {
            let get = |k: &str| {
                p.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .replace('|', "\\|")
            };
            md.push_str(&format!(
                "| `{}` | {} | {} |\n",
                get("pattern"),
                get("what"),
                get("example")
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_documents_exactly_the_three_sections_with_a_parsable_example() {
        for k in KINDS {
            let doc = module_doc(k.source);
            let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("# ")).collect();
            assert_eq!(
                headings,
                vec!["# What it checks", "# Why QC cares", "# Example"],
                "{}",
                k.kind.name()
            );
            let example = doc
                .split("```toml\n")
                .nth(1)
                .and_then(|rest| rest.split("```").next())
                .unwrap_or_else(|| panic!("{}: no ```toml example", k.kind.name()));
            let text = format!("name = \"example\"\nversion = \"1\"\n{example}");
            let r = crate::rubric::parse(&text, std::path::Path::new(k.kind.name()))
                .unwrap_or_else(|e| panic!("{}: example does not parse: {e}", k.kind.name()));
            assert_eq!(r.items[0].rule.kind(), k.kind);
        }
    }

    #[test]
    fn file_format_example_parses() {
        let doc = module_doc(include_str!("parse.rs"));
        let example = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("an example");
        crate::rubric::parse(example, std::path::Path::new("format")).unwrap();
    }

    #[test]
    fn headings_are_demoted_outside_code_only() {
        let md = "# A\n```toml\n# comment\n```\n## B\n";
        assert_eq!(demote(md, 2), "### A\n```toml\n# comment\n```\n#### B\n");
    }

    #[test]
    fn reference_covers_every_kind() {
        let md = reference_markdown();
        for k in KINDS {
            assert!(
                md.contains(&format!("\n### {}\n", k.kind.name())),
                "{}",
                k.kind.name()
            );
        }
        assert!(md.contains("## Rubric files"));
        assert!(md.contains("## 禁语 by meaning"));
        // Every default construction is listed, and the document ends in one newline.
        assert!(md.contains("| `{X}不{Y}就是{X}不{Y}` |"));
        assert!(md.ends_with("|\n") && !md.ends_with("\n\n"));
    }
}
