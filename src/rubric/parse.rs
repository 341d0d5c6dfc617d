//! # Rubric files
//!
//! A rubric is a UTF-8 TOML file: a named, versioned list of items. At the top:
//!
//! | key | required | meaning |
//! | --- | --- | --- |
//! | `name` | yes | shown with every score |
//! | `version` | yes | a string such as `"2026.1"` (a number is read as text). Change it whenever the items change: every score records the rubric's name, version and a hash of the file |
//! | `description` | no | free text |
//! | `synonyms` | no | groups of interchangeable phrases, e.g. `[["再见", "拜拜", "再会"]]`: any phrase rule that lists a member of a group accepts every member |
//! | `[[lexicon]]` | no | domain terms corrected in the transcript by sound, in context: `term = "热线"`, `after = ["12345"]` and / or `before = ["#number"]` (see below) |
//! | `mask_personal_data` | no (`false`) | mask phone, 身份证, bank card and address numbers in transcripts as they are recognised (`138****5678`): the store, the pages and the evidence never hold them. Off by default, because a centre may need to find a work order by number; exports mask anyway |
//! | `lexicon_files` | no | the centre's own term files (`[[lexicon]]` entries only), relative to the rubric, e.g. `["chengdu-terms.toml"]`: city, districts, departments. They count in the rubric's hash |
//! | `sentence_model` | no | the learned 禁语 sentence scorer (ONNX, trained by `callqc rules train`), relative to the rubric; a rubric copied elsewhere finds the same file name in `./models`. Needed by items with `scorer`; its hash counts in the rubric's |
//!
//! Then one `[[items]]` table per item:
//!
//! | key | required | meaning |
//! | --- | --- | --- |
//! | `id` | yes | unique in the rubric; findings and reports name the item by it |
//! | `description` | yes | what reviewers and agents read |
//! | `dimension` | no (`"general"`) | score dimension for per-dimension reports (服务规范, 服务态度, …) |
//! | `points` | yes | deducted per finding; `0` flags the call for review without a deduction |
//! | `veto` | no (`false`) | 一票否决: any finding of the item sets the call's total to 0 |
//! | `role` | no | whose speech the item looks at: `"agent"`, `"caller"` or `"both"`. Default `"both"` for `silence` and `call_duration`, `"agent"` for every other kind. A mono recording's two voices are told apart where callqc is sure (docs/mono.md); where it is not, nobody can tell who spoke, so speech counts for every scope and findings carry role `mixed` |
//! | `max_count` | no (`1`) | at most this many findings of the item deduct points; later ones are still listed, with 0 points, so reviewers see every occurrence |
//! | `applies_if` | no | when the item is judged at all: `{ min_duration_s = 20 }` — only on calls at least that long. A wrong number or a caller who hangs up after the greeting has no closing to miss; the default rubric sets it on `closing`, `ask_before_goodbye` and `speech_rate` |
//! | `[items.rule]` | yes | `kind = "…"` and the kind's settings (see *Rule kinds*); `rule = { kind = "…", … }` on one line works too |
//!
//! ```toml
//! name = "示例中心质检标准"
//! version = "2026.1"
//!
//! synonyms = [["再见", "拜拜", "再会"]]
//!
//! [[items]]
//! id = "closing"
//! description = "结束语：询问其他需求 / 感谢来电 / 再见"
//! dimension = "服务规范"
//! points = 2
//! [items.rule]
//! kind = "required_phrase"
//! phrases = ["还有其他可以帮您", "感谢您的来电", "再见"]
//! position = "end"
//! within_s = 20
//! ```
//!
//! # Scoring
//!
//! A call starts at 100 points. Each finding deducts its item's `points`, for at most
//! `max_count` findings per item; the total is 100 minus the deductions, never below 0, and 0
//! when any `veto` item has a finding. Each finding carries the item, its time span in the call
//! and evidence: the transcript with the hit marked 【…】, or the measurement and its limit.
//!
//! # Lexicon
//!
//! `[[lexicon]]` entries correct domain terms whisper mishears (热线 → 任县, 工号 → 功耗) before
//! any rule reads the transcript: a stretch that sounds like the term (each syllable a homophone
//! or a near-homophone, at most one not a homophone; `close = true` also accepts that one one
//! pinyin letter off) becomes the term; the store keeps the raw text beside the corrected one.
//! Digits are never rewritten. A term of fewer than
//! four characters is corrected only in context — right after one of `after`, or right before one
//! of `before` (`"#number"`: a digit) — because by sound alone 午夜 is 物业 and 成都是 is 成都市.
//!
//! ```toml
//! [[lexicon]]
//! term = "热线"
//! after = ["12345"]
//!
//! [[lexicon]]
//! term = "工号"
//! before = ["#number"]
//! ```
//!
//! # Mistakes in the file
//!
//! Loading stops at the first mistake with one line naming file, line, column and the problem,
//! e.g. `rubrics/12345.toml:14:1: item "greeting": unknown rule kind "required_phrases"
//! (expected one of required_phrase, forbidden_phrase, …)`. Unknown keys are mistakes too, so a
//! misspelt setting never silently falls back to its default.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::rules::{self, Compile, KINDS, RuleError};
use super::scope::RoleScope;
use super::{Item, Rubric};

/// Why a rubric could not be loaded. Display is one line: `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
pub enum RubricError {
    #[error("{}: cannot read rubric: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not valid TOML, or not the shape of a rubric.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A problem with one item.
    #[error("{}:{line}:{column}: item \"{item}\": {message}", file.display())]
    Item {
        file: PathBuf,
        line: usize,
        column: usize,
        item: String,
        message: String,
    },
}

impl RubricError {
    pub fn file(&self) -> &Path {
        match self {
            RubricError::Io { file, .. }
            | RubricError::Syntax { file, .. }
            | RubricError::Item { file, .. } => file,
        }
    }

    /// 1-based line of the problem (none for read errors).
    pub fn line(&self) -> Option<usize> {
        match self {
            RubricError::Io { .. } => None,
            RubricError::Syntax { line, .. } | RubricError::Item { line, .. } => Some(*line),
        }
    }

    /// 1-based column, in characters.
    pub fn column(&self) -> Option<usize> {
        match self {
            RubricError::Io { .. } => None,
            RubricError::Syntax { column, .. } | RubricError::Item { column, .. } => Some(*column),
        }
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> String {
        match self {
            RubricError::Io { source, .. } => source.to_string(),
            RubricError::Syntax { message, .. } | RubricError::Item { message, .. } => {
                message.clone()
            }
        }
    }
}

/// Read and parse a rubric file.
pub fn load(path: &Path) -> Result<Rubric, RubricError> {
    let text = std::fs::read_to_string(path).map_err(|source| RubricError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRubric {
    name: Spanned<String>,
    version: Spanned<toml::Value>,
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    synonyms: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(default)]
    lexicon: Option<Spanned<Vec<super::lexicon::TermSpec>>>,
    /// The centre's own term files (relative to the rubric), added to `lexicon`.
    #[serde(default)]
    lexicon_files: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    mask_personal_data: bool,
    /// The learned sentence scorer's ONNX file, relative to the rubric.
    sentence_model: Option<Spanned<String>>,
    #[serde(default)]
    items: Vec<RawItem>,
}

/// A centre's lexicon file: `[[lexicon]]` entries only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLexiconFile {
    #[serde(default)]
    lexicon: Vec<super::lexicon::TermSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: Spanned<String>,
    description: Option<String>,
    dimension: Option<String>,
    points: Option<f64>,
    veto: Option<bool>,
    role: Option<String>,
    max_count: Option<i64>,
    applies_if: Option<RawAppliesIf>,
    rule: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppliesIf {
    min_duration_s: Option<f64>,
}

/// The text being parsed, for turning byte offsets and keys into line:column.
struct Source<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Source<'_> {
    /// 1-based (line, column in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn syntax(&self, offset: usize, message: impl Into<String>) -> RubricError {
        let (line, column) = self.position(offset);
        RubricError::Syntax {
            file: self.file.to_path_buf(),
            line,
            column,
            message: one_line(&message.into()),
        }
    }

    /// Byte range of the `[[items]]` table holding byte `offset`: from its header (or the file's
    /// start) to the next `[[items]]` header (or the end).
    fn item_region(&self, offset: usize) -> (usize, usize) {
        let header = |line: &str| line.trim_start().starts_with("[[items]]");
        let mut start = 0;
        let mut end = self.text.len();
        let mut pos = 0;
        for line in self.text.split_inclusive('\n') {
            if header(line) {
                if pos <= offset {
                    start = pos;
                } else {
                    end = pos;
                    break;
                }
            }
            pos += line.len();
        }
        (start, end)
    }

    /// Byte offset of `key = …` inside the item around `offset`.
    fn find_key(&self, offset: usize, key: &str) -> Option<usize> {
        let (start, end) = self.item_region(offset);
        let region = &self.text[start..end];
        let mut from = 0;
        while let Some(i) = region[from..].find(key) {
            let at = from + i;
            let before_ok = region[..at]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || c == '{' || c == ',');
            let after = region[at + key.len()..].trim_start_matches([' ', '\t']);
            if before_ok && after.starts_with('=') {
                return Some(start + at);
            }
            from = at + key.len();
        }
        None
    }
}

/// Messages must stay on one line (they are printed as `file:line:col: message`).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kind_names() -> String {
    KINDS
        .iter()
        .map(|k| k.kind.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse rubric text; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path) -> Result<Rubric, RubricError> {
    let src = Source { text, file };
    let raw: RawRubric = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        src.syntax(offset, e.message())
    })?;

    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.syntax(raw.name.span().start, "name must not be empty"));
    }
    let version = match raw.version.get_ref() {
        toml::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        _ => {
            return Err(src.syntax(
                raw.version.span().start,
                "version must be a non-empty string such as \"2026.1\"",
            ));
        }
    };

    let mut cx = Compile::default();
    if let Some(syn) = &raw.synonyms {
        for group in syn.get_ref() {
            if group.len() < 2
                || group
                    .iter()
                    .any(|p| crate::text::normalize_for_compare(p).is_empty())
            {
                return Err(src.syntax(
                    syn.span().start,
                    format!(
                        "synonyms: each group needs at least two phrases with characters to \
                         match, not {group:?}"
                    ),
                ));
            }
            cx.synonyms.push(group.clone());
        }
    }

    if let Some(model) = &raw.sentence_model {
        // Beside the rubric as written; for a rubric copied elsewhere (a centre's edited copy),
        // the same file name in ./models, where scripts/setup.sh trains it.
        let beside = file
            .parent()
            .unwrap_or(Path::new("."))
            .join(model.get_ref());
        let fallback =
            Path::new("models").join(Path::new(model.get_ref()).file_name().unwrap_or_default());
        let path = if !beside.exists() && fallback.exists() {
            fallback
        } else {
            beside
        };
        // The runtime sits in the models folder beside the model (models/onnxruntime/).
        let models_dir = path.parent().unwrap_or(Path::new("."));
        let scorer = super::sentence::SentenceScorer::load(models_dir, &path).map_err(|e| {
            src.syntax(
                model.span().start,
                format!(
                    "sentence_model: {e} (scripts/setup.sh trains it; or run `callqc rules train`)"
                ),
            )
        })?;
        cx.scorer = Some(std::sync::Arc::new(scorer));
    }

    if raw.items.is_empty() {
        return Err(src.syntax(0, "the rubric has no items (add [[items]] tables)"));
    }
    let mut items: Vec<Item> = Vec::with_capacity(raw.items.len());
    for r in raw.items {
        items.push(compile_item(&src, &cx, r, &items)?);
    }

    // The hash covers the centre's lexicon files too: a changed term changes the transcripts.
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    // And the sentence model: a retrained model changes the findings.
    if let Some(scorer) = &cx.scorer {
        hasher.update(scorer.sha256.as_bytes());
    }
    let mut specs: Vec<super::lexicon::TermSpec> = raw
        .lexicon
        .as_ref()
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    if let Some(files) = &raw.lexicon_files {
        for name in files.get_ref() {
            let path = file.parent().unwrap_or(Path::new(".")).join(name);
            let body = std::fs::read_to_string(&path).map_err(|source| RubricError::Io {
                file: path.clone(),
                source,
            })?;
            let extra: RawLexiconFile = toml::from_str(&body).map_err(|e| {
                let lex_src = Source {
                    text: &body,
                    file: &path,
                };
                lex_src.syntax(e.span().map_or(0, |s| s.start), e.message())
            })?;
            hasher.update(body.as_bytes());
            specs.extend(extra.lexicon);
        }
    }
    let source_hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let span = raw
        .lexicon
        .as_ref()
        .map(|l| l.span().start)
        .or(raw.lexicon_files.as_ref().map(|l| l.span().start))
        .unwrap_or(0);
    let lexicon = super::lexicon::Lexicon::new(&specs).map_err(|e| src.syntax(span, &e))?;
    Ok(Rubric {
        name,
        version,
        items,
        lexicon,
        mask_personal_data: raw.mask_personal_data,
        source_hash,
    })
}

fn compile_item(
    src: &Source,
    cx: &Compile,
    raw: RawItem,
    earlier: &[Item],
) -> Result<Item, RubricError> {
    let id = raw.id.get_ref().trim().to_string();
    let id_at = raw.id.span().start;
    // An error about this item, at `key` if it can be found, else at the id.
    let fail = |key: Option<&str>, message: String| {
        let at = key.and_then(|k| src.find_key(id_at, k)).unwrap_or(id_at);
        let (line, column) = src.position(at);
        RubricError::Item {
            file: src.file.to_path_buf(),
            line,
            column,
            item: id.clone(),
            message: one_line(&message),
        }
    };
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(fail(
            Some("id"),
            "id must be non-empty and without spaces".into(),
        ));
    }
    if let Some(first) = earlier.iter().find(|i| i.id == id) {
        return Err(fail(
            Some("id"),
            format!("duplicate item id (first defined on line {})", first.line),
        ));
    }
    let description = match raw.description {
        Some(d) if !d.trim().is_empty() => d.trim().to_string(),
        _ => {
            return Err(fail(
                Some("description"),
                "missing description (what reviewers read about this item)".into(),
            ));
        }
    };
    let points = raw.points.ok_or_else(|| {
        fail(
            None,
            "missing points (deducted per finding; 0 flags without deducting)".into(),
        )
    })?;
    if !(points.is_finite() && points >= 0.0) {
        return Err(fail(
            Some("points"),
            format!("points must be a number ≥ 0, not {points}"),
        ));
    }
    let max_count = match raw.max_count {
        None => 1,
        Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => n as u32,
        Some(n) => {
            return Err(fail(
                Some("max_count"),
                format!("max_count must be at least 1, not {n}"),
            ));
        }
    };

    let applies_if = match raw.applies_if {
        None => super::AppliesIf::default(),
        Some(a) => {
            let min_duration_s = a.min_duration_s.unwrap_or(0.0);
            if !(min_duration_s.is_finite() && min_duration_s >= 0.0) {
                return Err(fail(
                    Some("applies_if"),
                    format!("applies_if.min_duration_s must be seconds ≥ 0, not {min_duration_s}"),
                ));
            }
            super::AppliesIf { min_duration_s }
        }
    };

    let Some(rule) = raw.rule else {
        return Err(fail(
            None,
            format!(
                "missing [items.rule] table (kind = one of {})",
                kind_names()
            ),
        ));
    };
    let rule_at = rule.span().start;
    let mut table = rule.into_inner();
    let kind_name = match table.remove("kind") {
        Some(toml::Value::String(k)) => k,
        Some(other) => {
            return Err(fail(
                Some("kind"),
                format!("rule kind must be a string, not {}", other.type_str()),
            ));
        }
        None => {
            return Err(fail(
                None,
                format!("the rule has no kind (expected one of {})", kind_names()),
            ));
        }
    };
    let Some(kind) = rules::kind(&kind_name) else {
        return Err(fail(
            Some("kind"),
            format!(
                "unknown rule kind \"{kind_name}\" (expected one of {})",
                kind_names()
            ),
        ));
    };
    let role = match &raw.role {
        None => kind.default_role,
        Some(r) => RoleScope::parse(r.trim()).ok_or_else(|| {
            fail(
                Some("role"),
                format!("unknown role \"{r}\" (expected agent, caller or both)"),
            )
        })?,
    };
    let rule = kind
        .compile(table, &cx.for_item(&id))
        .map_err(|RuleError { message, key }| {
            // Point at the offending key, else at the rule's `kind`, else the rule table.
            let at = key
                .as_deref()
                .and_then(|k| src.find_key(id_at, k))
                .or_else(|| src.find_key(id_at, "kind"))
                .unwrap_or(rule_at);
            let (line, column) = src.position(at);
            RubricError::Item {
                file: src.file.to_path_buf(),
                line,
                column,
                item: id.clone(),
                message: one_line(&format!("{kind_name}: {message}")),
            }
        })?;

    Ok(Item {
        line: src.position(id_at).0,
        id: id.clone(),
        description,
        dimension: raw
            .dimension
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "general".into()),
        points,
        veto: raw.veto.unwrap_or(false),
        role,
        max_count,
        applies_if,
        rule,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_centres_lexicon_file_is_read_beside_the_rubric_and_counts_in_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let rubric = "name = \"t\"\nversion = \"1\"\nlexicon_files = [\"terms.toml\"]\n\
                      [[items]]\nid = \"d\"\ndescription = \"d\"\npoints = 0\n\
                      [items.rule]\nkind = \"call_duration\"\nmin_s = 1\nmax_s = 9\n";
        let path = dir.path().join("r.toml");
        std::fs::write(&path, rubric).unwrap();
        // Missing: an error naming the file.
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("terms.toml"), "{e}");
        std::fs::write(
            dir.path().join("terms.toml"),
            "[[lexicon]]\nterm = \"成都市\"\nbefore = [\"12345\"]\n",
        )
        .unwrap();
        let a = load(&path).unwrap();
        assert_eq!(
            a.lexicon.correct("成都是12345热线").as_deref(),
            Some("成都市12345热线")
        );
        std::fs::write(
            dir.path().join("terms.toml"),
            "[[lexicon]]\nterm = \"南京市\"\nbefore = [\"12345\"]\n",
        )
        .unwrap();
        let b = load(&path).unwrap();
        assert_ne!(
            a.source_hash, b.source_hash,
            "the terms file is in the hash"
        );
        // A mistake in it names it.
        std::fs::write(
            dir.path().join("terms.toml"),
            "[[lexicon]]\nterms = \"x\"\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("terms.toml"), "{e}");
    }
    use super::*;

    fn err(text: &str) -> RubricError {
        parse(text, Path::new("rubrics/x.toml")).expect_err("should not parse")
    }

    const HEAD: &str = "name = \"t\"\nversion = \"1\"\n";

    #[test]
    fn toml_syntax_error_names_file_line_and_column() {
        let e = err(&format!(
            "{HEAD}[[items]]\nid = \"greeting\"\ndescription = \"g\"\npoints == 2\n"
        ));
        let s = e.to_string();
        assert!(s.starts_with("rubrics/x.toml:6:"), "{s}");
        assert_eq!(e.line(), Some(6));
        assert!(!s.contains('\n'), "{s}");
    }

    #[test]
    fn unknown_rule_kind_points_at_the_kind_line() {
        let text = format!(
            "{HEAD}\n[[items]]\nid = \"greeting\"\ndescription = \"g\"\npoints = 2\n[items.rule]\nkind = \"foo\"\n"
        );
        let s = err(&text).to_string();
        assert!(
            s.starts_with(
                "rubrics/x.toml:9:1: item \"greeting\": unknown rule kind \"foo\" (expected one of required_phrase, "
            ),
            "{s}"
        );
    }

    #[test]
    fn bad_regex_points_at_the_regex_line() {
        let text = format!(
            "{HEAD}[[items]]\nid = \"a\"\ndescription = \"a\"\npoints = 1\n[items.rule]\nkind = \"keywords\"\nmode = \"any\"\nregex = \"工号(\"\n"
        );
        let e = err(&text);
        let s = e.to_string();
        assert!(
            s.starts_with(
                "rubrics/x.toml:10:1: item \"a\": keywords: regex \"工号(\" is not a valid regex"
            ),
            "{s}"
        );
        assert!(!s.contains('\n'), "{s}");
    }

    #[test]
    fn missing_points_points_at_the_item() {
        let text = format!(
            "{HEAD}[[items]]\nid = \"ok\"\ndescription = \"a\"\npoints = 1\nrule = {{ kind = \"call_duration\", min_s = 20 }}\n\n[[items]]\nid = \"nopoints\"\ndescription = \"b\"\nrule = {{ kind = \"call_duration\", min_s = 20 }}\n"
        );
        let s = err(&text).to_string();
        assert!(
            s.starts_with("rubrics/x.toml:10:6: item \"nopoints\": missing points"),
            "{s}"
        );
    }

    #[test]
    fn semantic_errors_point_at_their_key() {
        let item = |rule: &str| {
            format!(
                "{HEAD}[[items]]\nid = \"a\"\ndescription = \"a\"\npoints = 1\n[items.rule]\n{rule}"
            )
        };
        let s = err(&item("kind = \"call_duration\"\nmin_s = 30\nmax_s = 10\n")).to_string();
        assert!(s.starts_with("rubrics/x.toml:9:1: item \"a\": call_duration: min_s (30) is greater than max_s (10)"), "{s}");
        let s = err(&item("kind = \"silence\"\nmax_gap = 10\n")).to_string();
        assert!(
            s.starts_with("rubrics/x.toml:9:1: item \"a\": silence: unknown field `max_gap`"),
            "{s}"
        );
        let s = err(&item("kind = \"required_phrase\"\nwithin_s = 10\n")).to_string();
        assert!(s.contains("missing field `phrases`"), "{s}");
        assert!(s.starts_with("rubrics/x.toml:8:1:"), "{s}");
        let s = err(&item("kind = \"forbidden_phrase\"\nphrases = [\"，\"]\n")).to_string();
        assert!(s.starts_with("rubrics/x.toml:9:1:"), "{s}");
        assert!(s.contains("no characters to match"), "{s}");
    }

    #[test]
    fn duplicate_ids_and_bad_roles_are_rejected() {
        let one = "[[items]]\nid = \"a\"\ndescription = \"a\"\npoints = 1\nrule = { kind = \"call_duration\", min_s = 20 }\n";
        let s = err(&format!("{HEAD}{one}{one}")).to_string();
        assert!(
            s.starts_with(
                "rubrics/x.toml:9:1: item \"a\": duplicate item id (first defined on line 4)"
            ),
            "{s}"
        );
        let s = err(&format!(
            "{HEAD}{}",
            one.replace("points = 1", "points = 1\nrole = \"boss\"")
        ))
        .to_string();
        assert!(
            s.starts_with("rubrics/x.toml:7:1: item \"a\": unknown role \"boss\""),
            "{s}"
        );
        let s = err(&format!(
            "{HEAD}{}",
            one.replace("points = 1", "points = 1\nmax_count = 0")
        ))
        .to_string();
        assert!(s.contains("max_count must be at least 1"), "{s}");
        let s = err(&format!(
            "{HEAD}{}",
            one.replace(
                "points = 1",
                "points = 1\napplies_if = { min_duration_s = -3 }"
            )
        ))
        .to_string();
        assert!(
            s.contains("applies_if.min_duration_s must be seconds"),
            "{s}"
        );
        let s = err(&format!(
            "{HEAD}{}",
            one.replace(
                "points = 1",
                "points = 1\napplies_if = { min_duraton_s = 20 }"
            )
        ))
        .to_string();
        assert!(s.contains("unknown field `min_duraton_s`"), "{s}");
    }

    #[test]
    fn applies_if_keeps_an_item_off_short_calls() {
        let one = "[[items]]\nid = \"a\"\ndescription = \"a\"\npoints = 1\napplies_if = { min_duration_s = 20 }\nrule = { kind = \"call_duration\", min_s = 60 }\n";
        let rubric = parse(&format!("{HEAD}{one}"), Path::new("rubrics/x.toml")).unwrap();
        let facts = |duration_s| super::super::CallFacts {
            duration_s,
            segments: &[],
            speech: &[],
            tone: &[],
        };
        assert!(super::super::check(&rubric, &facts(11.0)).0.is_empty());
        assert_eq!(super::super::check(&rubric, &facts(30.0)).0.len(), 1);
    }

    #[test]
    fn unknown_item_keys_and_empty_rubrics_are_rejected() {
        let s = err(&format!("{HEAD}[[items]]\nid = \"a\"\npionts = 1\n")).to_string();
        assert!(
            s.starts_with("rubrics/x.toml:5:1: unknown field `pionts`"),
            "{s}"
        );
        let s = err(HEAD).to_string();
        assert!(s.contains("no items"), "{s}");
        let s = err("version = \"1\"\n[[items]]\nid = \"a\"\n").to_string();
        assert!(s.contains("missing field `name`"), "{s}");
    }

    #[test]
    fn a_good_rubric_loads_with_defaults() {
        let text = format!(
            "{HEAD}[[items]]\nid = \"dead_air\"\ndescription = \"d\"\npoints = 2\n[items.rule]\nkind = \"silence\"\nmax_gap_s = 10\n"
        );
        let r = parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!((r.name.as_str(), r.version.as_str()), ("t", "1"));
        let item = &r.items[0];
        assert_eq!(
            (
                item.role,
                item.max_count,
                item.veto,
                item.dimension.as_str(),
                item.line
            ),
            (RoleScope::Both, 1, false, "general", 4)
        );
        assert_eq!(item.rule.kind(), super::rules::Kind::Silence);
        assert_eq!(r.source_hash.len(), 64);
        let r2 = parse(&text.replace("= 2", "= 3"), Path::new("x.toml")).unwrap();
        assert_ne!(r.source_hash, r2.source_hash);
        let numeric = parse(&text.replace("\"1\"", "3"), Path::new("x.toml")).unwrap();
        assert_eq!(numeric.version, "3");
    }
}
