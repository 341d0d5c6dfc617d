//! Labelled sentences and how a rubric's sentence-level items do on them.
//!
//! A corpus file holds one agent sentence per line, `label<TAB>sentence`; `#` starts a comment.
//! The label is a 禁语 category (a `forbidden_phrase` item's `category`, by default its id) or
//! [`CLEAN`] for a sentence that breaks no norm. [`check`] runs every `forbidden_phrase` item of
//! a rubric on each sentence as if an agent had said it, and counts, per category, what was
//! caught by the right item, what was caught by another item, what was missed, and what fired on
//! a sentence of another label: what `callqc rules check-text` prints, and what the corpus
//! test (tests/sentences.rs) holds to its bar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::sentence::CLEAN;
use super::{CallFacts, Kind, Rubric};
use crate::asr::Segment;
use crate::audio::Role;

/// One labelled sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Labelled {
    pub label: String,
    pub text: String,
    /// 1-based line in its file.
    pub line: usize,
}

/// A line that is not `label<TAB>sentence`.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Line {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

/// Read a corpus file.
pub fn read(path: &Path) -> Result<Vec<Labelled>, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parse corpus text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Labelled>, CorpusError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let bad = |message: &str| CorpusError::Line {
            file: file.to_path_buf(),
            line: i + 1,
            message: message.to_string(),
        };
        let (label, sentence) = line
            .split_once('\t')
            .ok_or_else(|| bad("expected label<TAB>sentence (no tab on this line)"))?;
        let (label, sentence) = (label.trim(), sentence.trim());
        if label.is_empty() || label.contains(char::is_whitespace) {
            return Err(bad("the label must be one word (a category, or ok)"));
        }
        if sentence.is_empty() {
            return Err(bad("the sentence is empty"));
        }
        out.push(Labelled {
            label: label.to_string(),
            text: sentence.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

/// Figures of one category.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryFigures {
    pub category: String,
    /// Sentences labelled with it.
    pub labelled: usize,
    /// …on which an item of this category fired.
    pub caught: usize,
    /// …on which only items of other categories fired (caught, but filed under another).
    pub caught_elsewhere: usize,
    /// Sentences of another label on which an item of this category fired.
    pub false_alarms: usize,
}

impl CategoryFigures {
    pub fn recall(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.caught as f64 / self.labelled as f64)
    }
    pub fn precision(&self) -> Option<f64> {
        let fired = self.caught + self.false_alarms;
        (fired > 0).then(|| self.caught as f64 / fired as f64)
    }
}

/// A sentence the rubric got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub line: usize,
    pub label: String,
    pub text: String,
    /// (category, evidence) of what fired.
    pub fired: Vec<(String, String)>,
}

/// How a rubric's sentence items did on a corpus.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub sentences: usize,
    pub categories: Vec<CategoryFigures>,
    /// Sentences on which any item fired.
    pub flagged: usize,
    /// …of which labelled [`CLEAN`]: the false deductions.
    pub flagged_clean: usize,
    pub errors: Vec<Miss>,
}

impl CheckReport {
    /// Share of flagged sentences that break a norm (whatever their category).
    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| 1.0 - self.flagged_clean as f64 / self.flagged as f64)
    }
    pub fn category(&self, name: &str) -> Option<&CategoryFigures> {
        self.categories.iter().find(|c| c.category == name)
    }
}

/// The category each sentence-level item answers for.
pub fn item_categories(rubric: &Rubric) -> Vec<(usize, String)> {
    rubric
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match &item.rule {
            super::Rule::ForbiddenPhrase(r) if item.rule.kind() == Kind::ForbiddenPhrase => {
                Some((i, r.category.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Which categories fire on one agent sentence, with their evidence.
pub fn judge(rubric: &Rubric, items: &[(usize, String)], text: &str) -> Vec<(String, String)> {
    let text = rubric
        .lexicon
        .correct(text)
        .unwrap_or_else(|| text.to_string());
    let seg = [Segment {
        role: Role::Agent,
        start: 0.0,
        end: 3.0,
        text,
        confidence: 1.0,
        avg_logprob: 0.0,
        no_speech_prob: 0.0,
    }];
    let facts = CallFacts {
        duration_s: 4.0,
        segments: &seg,
        speech: &[],
        tone: &[],
    };
    let mut fired = Vec::new();
    for (i, category) in items {
        let item = &rubric.items[*i];
        if let Some(f) = item.rule.as_kind().check(item, &facts).into_iter().next() {
            fired.push((category.clone(), f.evidence));
        }
    }
    fired
}

/// Run the rubric's sentence-level items over the corpus.
pub fn check(rubric: &Rubric, corpus: &[Labelled]) -> CheckReport {
    let items = item_categories(rubric);
    let mut figures: BTreeMap<String, CategoryFigures> = BTreeMap::new();
    let mut add = |c: &str| {
        figures
            .entry(c.to_string())
            .or_insert_with(|| CategoryFigures {
                category: c.to_string(),
                ..Default::default()
            });
    };
    items.iter().for_each(|(_, c)| add(c));
    corpus
        .iter()
        .filter(|s| s.label != CLEAN)
        .for_each(|s| add(&s.label));
    let mut report = CheckReport {
        sentences: corpus.len(),
        ..Default::default()
    };
    for s in corpus {
        let fired = judge(rubric, &items, &s.text);
        let right = fired.iter().any(|(c, _)| *c == s.label);
        if s.label != CLEAN {
            let f = figures.get_mut(&s.label).expect("added above");
            f.labelled += 1;
            if right {
                f.caught += 1;
            } else if !fired.is_empty() {
                f.caught_elsewhere += 1;
            }
        }
        let mut wrong = false;
        let mut counted: Vec<&str> = Vec::new();
        for (c, _) in &fired {
            if *c != s.label && !counted.contains(&c.as_str()) {
                figures.get_mut(c).expect("added above").false_alarms += 1;
                counted.push(c);
                wrong = true;
            }
        }
        if !fired.is_empty() {
            report.flagged += 1;
            report.flagged_clean += usize::from(s.label == CLEAN);
        }
        if wrong || (s.label != CLEAN && !right) {
            report.errors.push(Miss {
                line: s.line,
                label: s.label.clone(),
                text: s.text.clone(),
                fired,
            });
        }
    }
    report.categories = figures.into_values().collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_label_tab_sentence() {
        let c = parse(
            "# head\nrefusal\t跟我们没关系\n\nok\t好的\n",
            Path::new("c.tsv"),
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].label.as_str(), c[0].line), ("refusal", 2));
        let e = parse("ok 好的\n", Path::new("c.tsv"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.tsv:1: expected label<TAB>sentence"), "{e}");
        let e = parse("ok\t \n", Path::new("c.tsv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
