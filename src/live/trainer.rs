//! The trainer side of `callqc serve`: the flagged list with filters, a call with its
//! transcript, findings and clips, confirm / dismiss / note, appeal rulings, and the rules
//! table — the same store and the same queries as `callqc flagged`, `review` and `rules stats`.
//!
//! Every request carries a reviewer token (`Authorization: Bearer …`); the verdict's author is
//! the token's reviewer name, never a name the page sends.

use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Identity;
use super::auth::bearer;
use super::state::{AppState, refuse};
use crate::report::export::{clip_span, clip_wav};
use crate::store::{
    FlaggedOrder, FlaggedQuery, Period, ReviewState, Source, Store, StoreError, VerdictAction,
};

/// A refused request: its status and the message the page shows.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        refuse(self.status, &self.message)
    }
}

/// `Ok(reviewer name)` for a reviewer's request, else the refusal.
fn reviewer(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    match bearer(&state.tokens, headers) {
        Some(Identity::Reviewer(name)) => Ok(name),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "reviewers only")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or unknown token",
        )),
    }
}

fn store_error(e: StoreError) -> ApiError {
    let status = match e {
        StoreError::NoSuchCall { .. } | StoreError::NoSuchFinding { .. } => StatusCode::NOT_FOUND,
        StoreError::Refused { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::error!("trainer pages: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    ApiError::new(status, e.to_string())
}

/// Run `f` on the store off the async threads.
async fn with_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let trainer = state.trainer.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = trainer.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut store)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The flagged list's filters as query parameters (every one optional).
#[derive(Debug, Default, Deserialize)]
pub struct FlaggedParams {
    from: Option<String>,
    to: Option<String>,
    agent: Option<String>,
    item: Option<String>,
    dimension: Option<String>,
    min_points: Option<f64>,
    max_score: Option<f64>,
    veto: Option<bool>,
    review: Option<String>,
    source: Option<String>,
    text: Option<String>,
    observations: Option<bool>,
    sort: Option<String>,
    limit: Option<usize>,
}

fn blank_none(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl FlaggedParams {
    fn query(self) -> Result<FlaggedQuery, String> {
        let date = |v: Option<String>| -> Result<Option<String>, String> {
            match blank_none(v) {
                None => Ok(None),
                Some(s) => crate::time::parse_date(&s)
                    .map(Some)
                    .ok_or_else(|| format!("'{s}' is not a date")),
            }
        };
        Ok(FlaggedQuery {
            from: date(self.from)?,
            to: date(self.to)?,
            agent: blank_none(self.agent),
            item: blank_none(self.item),
            dimension: blank_none(self.dimension),
            min_points: self.min_points,
            max_score: self.max_score,
            veto_only: self.veto.unwrap_or(false),
            review: blank_none(self.review)
                .map(|r| r.parse::<ReviewState>())
                .transpose()?,
            source: blank_none(self.source)
                .map(|s| s.parse::<Source>())
                .transpose()?,
            text: blank_none(self.text),
            observations: self.observations.unwrap_or(false),
            order: match blank_none(self.sort).as_deref() {
                None | Some("score") => FlaggedOrder::Score,
                Some("date") => FlaggedOrder::Date,
                Some(other) => return Err(format!("unknown sort '{other}' (score or date)")),
            },
            limit: Some(self.limit.unwrap_or(200).min(1000)),
        })
    }
}

pub async fn flagged(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<FlaggedParams>,
) -> Response {
    if let Err(r) = reviewer(&state, &headers) {
        return r.into_response();
    }
    let q = match params.query() {
        Ok(q) => q,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e),
    };
    let mask = state.trainer.mask;
    let got = with_store(&state, move |s| {
        let mut calls = s.flagged(&q).map_err(store_error)?;
        if mask {
            for f in calls.iter_mut().flat_map(|c| c.findings.iter_mut()) {
                f.evidence = crate::redact::mask(&f.evidence).0;
            }
        }
        Ok(calls)
    });
    match got.await {
        Ok(calls) => Json(calls).into_response(),
        Err(r) => r.into_response(),
    }
}

pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = reviewer(&state, &headers) {
        return r.into_response();
    }
    let mask = state.trainer.mask;
    let got = with_store(&state, move |s| {
        let mut call = s.load_call(id).map_err(store_error)?;
        let mut findings = s.findings(id, None).map_err(store_error)?;
        if mask {
            crate::report::export::mask_call(&mut call, &mut findings);
        }
        let scores = s.scores(id).map_err(store_error)?;
        let mut history = Vec::new();
        for f in &findings {
            history.extend(s.verdict_history(f.id).map_err(store_error)?);
        }
        Ok(serde_json::json!({
            "call": call, "findings": findings, "scores": scores, "history": history,
        }))
    })
    .await;
    match got {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// A finding's clip, cut from the recording now (the recording stays the one source).
pub async fn clip(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = reviewer(&state, &headers) {
        return r.into_response();
    }
    let margin = state.trainer.clip_margin_s;
    let mask = state.trainer.mask;
    let got = with_store(&state, move |s| {
        let f = s.finding(id).map_err(store_error)?;
        let mut call = s.load_call(f.finding.call_id).map_err(store_error)?;
        let muted = if mask {
            crate::report::export::mask_call(&mut call, &mut [])
        } else {
            Vec::new()
        };
        Ok((f, PathBuf::from(call.path), muted))
    })
    .await;
    let (f, path, muted) = match got {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let cut = tokio::task::spawn_blocking(move || {
        crate::audio::decode::decode_file(&path).map(|mut rec| {
            crate::report::export::mute(&mut rec, &muted);
            let (first, last) = clip_span(&rec, f.finding.start, f.finding.end, margin);
            clip_wav(&rec, first, last)
        })
    })
    .await;
    match cut {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "audio/wav")], Body::from(bytes)).into_response(),
        Ok(Err(e)) => refuse(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub struct VerdictBody {
    /// confirm | dismiss | note | uphold | reject
    action: String,
    note: Option<String>,
}

pub async fn verdict(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let by = match reviewer(&state, &headers) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let v: VerdictBody = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("verdict: {e}")),
    };
    let action: VerdictAction = match v.action.parse() {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e),
    };
    let note = blank_none(v.note);
    let got = with_store(&state, move |s| {
        let f = match action {
            VerdictAction::Uphold | VerdictAction::Reject => {
                s.rule_on_appeal(id, action == VerdictAction::Uphold, &by, note.as_deref())
            }
            VerdictAction::Appeal => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "an appeal is the agent's (callqc appeal)",
                ));
            }
            other => s.review_finding(id, other, &by, note.as_deref()),
        }
        .map_err(store_error)?;
        let scores = s.scores(f.finding.call_id).map_err(store_error)?;
        Ok(serde_json::json!({"finding": f, "scores": scores}))
    })
    .await;
    match got {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

pub async fn rules(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = reviewer(&state, &headers) {
        return r.into_response();
    }
    match with_store(&state, |s| {
        s.rule_stats(&Period::default()).map_err(store_error)
    })
    .await
    {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Who the token is (the page greets the reviewer by name).
pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match reviewer(&state, &headers) {
        Ok(name) => Json(serde_json::json!({"reviewer": name})).into_response(),
        Err(r) => r.into_response(),
    }
}
