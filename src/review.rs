//! Calibration agreement: how often reviewers who judged the same findings independently
//! agree, as a share and as Cohen's kappa (agreement beyond what chance would give — a pair
//! that confirms everything agrees 90 % on a rule that is right 90 % of the time, kappa 0).
//! The verdicts themselves live in the store (`store/review.rs`).

use serde::Serialize;

use crate::store::{CalibrationRecord, VerdictAction};

/// One finding of a calibration round and each reviewer's latest verdict on it.
#[derive(Debug, Clone, Serialize)]
pub struct CalibratedFinding {
    pub finding_id: i64,
    pub call_key: String,
    pub item_id: String,
    /// In the round's reviewer order; None where that reviewer gave none.
    pub verdicts: Vec<Option<VerdictAction>>,
    /// Two reviewers judged it differently.
    pub disagree: bool,
}

/// Agreement of two reviewers over the findings both judged.
#[derive(Debug, Clone, Serialize)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    pub both: usize,
    pub agreed: usize,
    pub share: Option<f64>,
    pub kappa: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub findings: Vec<CalibratedFinding>,
    pub judged_by_all: usize,
    pub pairs: Vec<PairAgreement>,
}

/// Cohen's kappa of two raters' yes / no verdicts; None when undefined (no items, or chance
/// agreement is total, e.g. both said "confirm" to everything).
pub fn cohen_kappa(pairs: &[(bool, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let a_yes = pairs.iter().filter(|(a, _)| *a).count() as f64 / n;
    let b_yes = pairs.iter().filter(|(_, b)| *b).count() as f64 / n;
    let chance = a_yes * b_yes + (1.0 - a_yes) * (1.0 - b_yes);
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((observed - chance) / (1.0 - chance))
}

/// Each reviewer's latest verdict per finding, and agreement per pair of reviewers.
pub fn agreement(round: &CalibrationRecord) -> Agreement {
    let findings: Vec<CalibratedFinding> = round
        .findings
        .iter()
        .map(|f| {
            let verdicts: Vec<Option<VerdictAction>> = round
                .reviewers
                .iter()
                .map(|r| {
                    round
                        .verdicts
                        .iter()
                        .rev()
                        .find(|v| v.finding_id == f.finding.id && &v.by == r)
                        .map(|v| v.action)
                })
                .collect();
            let given: Vec<VerdictAction> = verdicts.iter().flatten().copied().collect();
            CalibratedFinding {
                finding_id: f.finding.id,
                call_key: f.call_key.clone(),
                item_id: f.finding.item_id.clone(),
                disagree: given.windows(2).any(|w| w[0] != w[1]),
                verdicts,
            }
        })
        .collect();
    let judged_by_all = findings
        .iter()
        .filter(|f| f.verdicts.iter().all(Option::is_some))
        .count();
    let mut pairs = Vec::new();
    for i in 0..round.reviewers.len() {
        for j in i + 1..round.reviewers.len() {
            let both: Vec<(bool, bool)> = findings
                .iter()
                .filter_map(|f| match (f.verdicts[i], f.verdicts[j]) {
                    (Some(a), Some(b)) => {
                        Some((a == VerdictAction::Confirm, b == VerdictAction::Confirm))
                    }
                    _ => None,
                })
                .collect();
            let agreed = both.iter().filter(|(a, b)| a == b).count();
            pairs.push(PairAgreement {
                a: round.reviewers[i].clone(),
                b: round.reviewers[j].clone(),
                both: both.len(),
                agreed,
                share: (!both.is_empty()).then(|| agreed as f64 / both.len() as f64),
                kappa: cohen_kappa(&both),
            });
        }
    }
    Agreement {
        findings,
        judged_by_all,
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::cohen_kappa;

    #[test]
    fn kappa_is_one_for_full_agreement_and_zero_for_chance() {
        let same = [(true, true), (false, false), (true, true), (false, false)];
        assert!((cohen_kappa(&same).unwrap() - 1.0).abs() < 1e-9);
        // Independent 50/50 raters: observed 0.5, chance 0.5.
        let chance = [(true, true), (true, false), (false, true), (false, false)];
        assert!(cohen_kappa(&chance).unwrap().abs() < 1e-9);
        // Both confirm everything: kappa undefined, not 1.
        assert!(cohen_kappa(&[(true, true), (true, true)]).is_none());
        assert!(cohen_kappa(&[]).is_none());
        // A worked example: 20 items, 17 agreements.
        let mut v = vec![(true, true); 10];
        v.extend(vec![(false, false); 7]);
        v.extend(vec![(true, false); 2]);
        v.push((false, true));
        let k = cohen_kappa(&v).unwrap();
        // observed .85; a_yes .6, b_yes .55 → chance .6·.55 + .4·.45 = .51; (.85 − .51)/.49
        assert!((k - 0.34 / 0.49).abs() < 1e-9, "{k}");
    }
}
