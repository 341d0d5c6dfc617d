//! Who is asking: a token from the configuration file, compared in constant time.

use std::fmt;

use axum::http::{HeaderMap, header};

/// Someone the configuration file lets in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A PBX streaming audio (its name in `[tokens.ingest]`).
    Pbx(String),
    /// An agent, by the agent id the PBX sends: sees their own calls' warnings only.
    Agent(String),
    /// Sees every agent's calls and warnings.
    Supervisor(String),
    /// A trainer or QC lead.
    Reviewer(String),
}

impl Identity {
    /// May this identity see warnings of `agent_id`'s calls?
    pub fn may_watch(&self, agent_id: &str) -> bool {
        match self {
            Identity::Agent(a) => a == agent_id,
            Identity::Supervisor(_) => true,
            Identity::Pbx(_) | Identity::Reviewer(_) => false,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Pbx(n) => write!(f, "PBX {n}"),
            Identity::Agent(n) => write!(f, "agent {n}"),
            Identity::Supervisor(n) => write!(f, "supervisor {n}"),
            Identity::Reviewer(n) => write!(f, "reviewer {n}"),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Every token of the configuration file and whose it is.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(Vec<u8>, Identity)>,
}

impl Tokens {
    pub fn new(entries: Vec<(String, Identity)>) -> Tokens {
        Tokens {
            entries: entries
                .into_iter()
                .map(|(t, who)| (t.into_bytes(), who))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whose token this is. Every entry is compared, each in time independent of where the
    /// bytes differ, so the answer's timing says nothing about any token.
    pub fn identify(&self, presented: &str) -> Option<Identity> {
        let presented = presented.trim().as_bytes();
        let mut found = None;
        for (token, who) in &self.entries {
            if constant_time_eq(token, presented) && found.is_none() {
                found = Some(who.clone());
            }
        }
        found
    }

    /// Everyone with a token.
    pub fn names(&self) -> impl Iterator<Item = Identity> + '_ {
        self.entries.iter().map(|(_, who)| who.clone())
    }

    /// The token of an identity (for clients built from the same file, such as `simulate`).
    pub fn token_of(&self, pred: impl Fn(&Identity) -> bool) -> Option<String> {
        self.entries
            .iter()
            .find(|(_, who)| pred(who))
            .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who: Vec<String> = self.entries.iter().map(|(_, w)| w.to_string()).collect();
        write!(
            f,
            "Tokens({} tokens, redacted: {})",
            self.entries.len(),
            who.join(", ")
        )
    }
}

/// Equal bytes, compared without an early exit (length differences are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The identity of an `Authorization: Bearer …` header, if it has one that matches.
pub fn bearer(tokens: &Tokens, headers: &HeaderMap) -> Option<Identity> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    tokens.identify(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_identify_their_owner_only() {
        let t = Tokens::new(vec![
            ("agent-token-0001xx".into(), Identity::Agent("1001".into())),
            (
                "super-token-0001xx".into(),
                Identity::Supervisor("wang".into()),
            ),
        ]);
        assert_eq!(
            t.identify("agent-token-0001xx"),
            Some(Identity::Agent("1001".into()))
        );
        assert_eq!(t.identify("agent-token-0001xy"), None);
        assert_eq!(t.identify(""), None);
        assert_eq!(t.identify("agent-token-0001x"), None);
        assert!(Identity::Agent("1001".into()).may_watch("1001"));
        assert!(!Identity::Agent("1001".into()).may_watch("1002"));
        assert!(Identity::Supervisor("w".into()).may_watch("1002"));
        assert!(
            !format!("{t:?}").contains("token-0001"),
            "Debug never shows tokens"
        );
    }
}
