//! Who is watching, and what they are shown: every desktop page (agent or supervisor) and every
//! PBX link gets its own bounded queue. A page that stops reading loses its oldest messages
//! (counted, and told so), never anyone else's — and never audio, which does not pass here.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sync::lock;

use serde::Serialize;
use tokio::sync::Notify;

use super::auth::Identity;
use crate::audio::Role;
use crate::store::{AlertKind, EndReason};

/// A warning as pushed to pages.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub id: u64,
    pub call_id: String,
    pub agent_id: String,
    pub kind: AlertKind,
    pub item_id: String,
    /// The pop-up's heading: 语气提醒 / 禁语提醒 / 静音提醒.
    pub title: String,
    /// The pop-up's text: 请注意语气 / 「phrase」.
    pub text: String,
    pub evidence: String,
    /// Audio time (s from the call's start) of the evidence.
    pub evidence_start_s: f64,
    pub evidence_end_s: f64,
    /// Unix ms: when the frame carrying the evidence's end arrived, and when this was sent.
    pub frame_ms: i64,
    pub sent_ms: i64,
}

/// A call in progress, as the supervisor page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    pub agent_id: String,
    pub started_ms: i64,
    pub warnings: usize,
    pub last_warning: Option<String>,
    /// The agent's latest live tone (probability of agitation), if scored yet.
    pub tone: Option<f64>,
}

/// An agent as the supervisor page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub agent_id: String,
    /// Call in progress, if any.
    pub call_id: Option<String>,
    /// Desktop pages of this agent connected now.
    pub pages: usize,
    pub warnings_today: usize,
}

/// Everything pushed to pages and PBX links (JSON, `type` says which).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// First message after sign-in: who the page is.
    Hello {
        who: String,
        role: &'static str,
        agent_id: Option<String>,
    },
    CallStarted {
        call_id: String,
        agent_id: String,
        started_ms: i64,
    },
    CallEnded {
        call_id: String,
        agent_id: String,
        reason: EndReason,
        duration_s: f64,
    },
    Warning(Warning),
    /// The agent's live tone trend (supervisors).
    Tone {
        call_id: String,
        agent_id: String,
        at_s: f64,
        p_agitated: f64,
    },
    /// A recognised utterance (supervisors).
    Transcript {
        call_id: String,
        agent_id: String,
        role: Role,
        start_s: f64,
        end_s: f64,
        text: String,
    },
    /// Calls in progress and agents (supervisors; after sign-in and whenever a call starts or ends).
    Snapshot {
        calls: Vec<CallView>,
        agents: Vec<AgentView>,
    },
    /// This page was not reading: `count` older messages were dropped for it.
    Dropped {
        count: u64,
    },
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq)]
enum Audience {
    /// The agent's pages, supervisors, and the call's PBX links.
    Call {
        call_id: String,
        agent_id: String,
    },
    Supervisors,
}

/// What a subscriber is.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscriber {
    Page(Identity),
    /// A PBX's ingest connection, echoed the warnings of its own call.
    Link {
        call_id: String,
    },
}

/// Where a message went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub agent_pages: usize,
    pub supervisor_pages: usize,
    pub pbx_links: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Arc<str>>,
    dropped: u64,
    closed: bool,
}

/// One subscriber's bounded queue.
pub struct Client {
    pub subscriber: Subscriber,
    queue: Mutex<Queue>,
    notify: Notify,
    cap: usize,
}

impl Client {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, msg: Arc<str>) {
        let mut q = self.queue();
        if q.closed {
            return;
        }
        if q.items.len() >= self.cap {
            q.items.pop_front();
            q.dropped += 1;
        }
        q.items.push_back(msg);
        drop(q);
        self.notify.notify_one();
    }

    /// The next message, waiting for one; `None` once closed. After an overflow the first
    /// message says how many were dropped.
    pub async fn next(&self) -> Option<Arc<str>> {
        loop {
            {
                let mut q = self.queue();
                if q.dropped > 0 {
                    let count = std::mem::take(&mut q.dropped);
                    return Some(to_json(&LiveMessage::Dropped { count }));
                }
                if let Some(m) = q.items.pop_front() {
                    return Some(m);
                }
                if q.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Messages dropped so far and not yet reported.
    pub fn pending(&self) -> usize {
        self.queue().items.len()
    }

    pub fn close(&self) {
        self.queue().closed = true;
        self.notify.notify_one();
    }
}

fn to_json(msg: &LiveMessage) -> Arc<str> {
    serde_json::to_string(msg)
        .unwrap_or_else(|_| "{}".into())
        .into()
}

/// The live server's subscribers and its view of calls in progress.
pub struct Hub {
    clients: Mutex<Vec<Arc<Client>>>,
    calls: Mutex<BTreeMap<String, CallView>>,
    /// Agents of the configuration file, listed on the supervisor page even when idle.
    known_agents: Vec<String>,
    warnings_by_agent: Mutex<BTreeMap<String, usize>>,
    cap: usize,
}

impl Hub {
    pub fn new(known_agents: Vec<String>, queue_cap: usize) -> Hub {
        Hub {
            clients: Mutex::new(Vec::new()),
            calls: Mutex::new(BTreeMap::new()),
            known_agents,
            warnings_by_agent: Mutex::new(BTreeMap::new()),
            cap: queue_cap.max(1),
        }
    }

    pub fn subscribe(&self, subscriber: Subscriber) -> Arc<Client> {
        let client = Arc::new(Client {
            subscriber,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            cap: self.cap,
        });
        lock(&self.clients).push(client.clone());
        client
    }

    pub fn unsubscribe(&self, client: &Arc<Client>) {
        client.close();
        lock(&self.clients).retain(|c| !Arc::ptr_eq(c, client));
    }

    /// Send one message to the subscriber only (the greeting, a first snapshot).
    pub fn send_to(&self, client: &Client, msg: &LiveMessage) {
        client.push(to_json(msg));
    }

    fn publish(&self, audience: &Audience, msg: &LiveMessage) -> Delivery {
        let json = to_json(msg);
        let mut d = Delivery::default();
        for c in lock(&self.clients).iter() {
            let to = match (&c.subscriber, audience) {
                (Subscriber::Page(Identity::Supervisor(_)), _) => {
                    d.supervisor_pages += 1;
                    true
                }
                (Subscriber::Page(who @ Identity::Agent(_)), Audience::Call { agent_id, .. }) => {
                    let to = who.may_watch(agent_id);
                    d.agent_pages += usize::from(to);
                    to
                }
                (Subscriber::Link { call_id: mine }, Audience::Call { call_id, .. }) => {
                    let to = mine == call_id && matches!(msg, LiveMessage::Warning(_));
                    d.pbx_links += usize::from(to);
                    to
                }
                _ => false,
            };
            if to {
                c.push(json.clone());
            }
        }
        d
    }

    fn call_audience(call_id: &str, agent_id: &str) -> Audience {
        Audience::Call {
            call_id: call_id.to_string(),
            agent_id: agent_id.to_string(),
        }
    }

    pub fn call_started(&self, call_id: &str, agent_id: &str, started_ms: i64) {
        lock(&self.calls).insert(
            call_id.to_string(),
            CallView {
                call_id: call_id.to_string(),
                agent_id: agent_id.to_string(),
                started_ms,
                warnings: 0,
                last_warning: None,
                tone: None,
            },
        );
        self.publish(
            &Self::call_audience(call_id, agent_id),
            &LiveMessage::CallStarted {
                call_id: call_id.to_string(),
                agent_id: agent_id.to_string(),
                started_ms,
            },
        );
        self.publish_snapshot();
    }

    pub fn call_ended(&self, call_id: &str, agent_id: &str, reason: EndReason, duration_s: f64) {
        lock(&self.calls).remove(call_id);
        self.publish(
            &Self::call_audience(call_id, agent_id),
            &LiveMessage::CallEnded {
                call_id: call_id.to_string(),
                agent_id: agent_id.to_string(),
                reason,
                duration_s,
            },
        );
        self.publish_snapshot();
    }

    pub fn warning(&self, w: Warning) -> Delivery {
        if let Some(c) = lock(&self.calls).get_mut(&w.call_id) {
            c.warnings += 1;
            c.last_warning = Some(format!("{}：{}", w.title, w.text));
        }
        *lock(&self.warnings_by_agent)
            .entry(w.agent_id.clone())
            .or_default() += 1;
        let audience = Self::call_audience(&w.call_id, &w.agent_id);
        self.publish(&audience, &LiveMessage::Warning(w))
    }

    pub fn tone(&self, call_id: &str, agent_id: &str, at_s: f64, p_agitated: f64) {
        if let Some(c) = lock(&self.calls).get_mut(call_id) {
            c.tone = Some(p_agitated);
        }
        self.publish(
            &Audience::Supervisors,
            &LiveMessage::Tone {
                call_id: call_id.to_string(),
                agent_id: agent_id.to_string(),
                at_s,
                p_agitated,
            },
        );
    }

    pub fn transcript(&self, msg: LiveMessage) {
        self.publish(&Audience::Supervisors, &msg);
    }

    /// Calls in progress and every agent's state.
    pub fn snapshot(&self) -> LiveMessage {
        let calls: Vec<CallView> = lock(&self.calls).values().cloned().collect();
        let pages = |agent: &str| {
            lock(&self.clients)
                .iter()
                .filter(|c| c.subscriber == Subscriber::Page(Identity::Agent(agent.to_string())))
                .count()
        };
        let warned = lock(&self.warnings_by_agent).clone();
        let mut ids: Vec<String> = self.known_agents.clone();
        ids.extend(calls.iter().map(|c| c.agent_id.clone()));
        ids.sort();
        ids.dedup();
        let agents = ids
            .into_iter()
            .map(|agent_id| AgentView {
                call_id: calls
                    .iter()
                    .find(|c| c.agent_id == agent_id)
                    .map(|c| c.call_id.clone()),
                pages: pages(&agent_id),
                warnings_today: warned.get(&agent_id).copied().unwrap_or(0),
                agent_id,
            })
            .collect();
        LiveMessage::Snapshot { calls, agents }
    }

    fn publish_snapshot(&self) {
        let snap = self.snapshot();
        self.publish(&Audience::Supervisors, &snap);
    }

    /// Calls in progress (for the HTTP API).
    pub fn calls(&self) -> Vec<CallView> {
        lock(&self.calls).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(call: &str, agent: &str) -> Warning {
        Warning {
            id: 1,
            call_id: call.into(),
            agent_id: agent.into(),
            kind: AlertKind::Forbidden,
            item_id: "x".into(),
            title: "禁语提醒".into(),
            text: "「不归我们管」".into(),
            evidence: String::new(),
            evidence_start_s: 1.0,
            evidence_end_s: 2.0,
            frame_ms: 0,
            sent_ms: 0,
        }
    }

    #[tokio::test]
    async fn agents_get_their_own_warnings_and_a_stalled_page_only_loses_its_oldest() {
        let hub = Hub::new(vec!["1001".into(), "1002".into()], 3);
        let a1 = hub.subscribe(Subscriber::Page(Identity::Agent("1001".into())));
        let a2 = hub.subscribe(Subscriber::Page(Identity::Agent("1002".into())));
        let sup = hub.subscribe(Subscriber::Page(Identity::Supervisor("w".into())));
        let link = hub.subscribe(Subscriber::Link {
            call_id: "c1".into(),
        });
        let d = hub.warning(warning("c1", "1001"));
        assert_eq!(
            d,
            Delivery {
                agent_pages: 1,
                supervisor_pages: 1,
                pbx_links: 1
            }
        );
        assert!(a1.next().await.unwrap().contains("不归我们管"));
        assert_eq!(a2.pending(), 0, "another agent's page gets nothing");
        assert!(link.next().await.unwrap().contains("\"type\":\"warning\""));
        // The supervisor never reads: its queue keeps the newest 3 and reports the rest.
        for _ in 0..10 {
            hub.warning(warning("c1", "1001"));
        }
        assert_eq!(sup.pending(), 3);
        assert!(sup.next().await.unwrap().contains("\"dropped\""));
        assert_eq!(a1.pending(), 3, "each page has its own bound");
    }
}
