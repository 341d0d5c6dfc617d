//! The closed sets the store keeps, as enums (their text form is what the tables hold).

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The form stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(concat!("unknown ", stringify!($name), " '{}'"), other)),
                }
            }
        }

        $crate::store::db::text_value!($name, |v: &$name| v.as_str(), |s: &str| s.parse());
    };
}

text_enum! {
    /// Whether a call's analysis is in the store.
    CallStatus { Done = "done", Failed = "failed" }
}

text_enum! {
    /// A trainer's verdict on a finding.
    ReviewState {
        /// Not reviewed yet.
        Open = "open",
        /// A real hit.
        Confirmed = "confirmed",
        /// A false hit: it no longer counts in the call's score.
        Dismissed = "dismissed",
    }
}

text_enum! {
    /// Where an agent's appeal (申诉) against a finding stands. A ruling is final: a finding is
    /// appealed at most once.
    AppealState {
        /// Never appealed.
        None = "none",
        /// Appealed, waiting for a reviewer's ruling.
        Pending = "pending",
        /// The appeal was upheld: the finding is dismissed.
        Upheld = "upheld",
        /// The appeal was rejected: the finding stands, confirmed.
        Rejected = "rejected",
    }
}

text_enum! {
    /// One entry of a finding's verdict history.
    VerdictAction {
        /// A reviewer called it a real hit.
        Confirm = "confirm",
        /// A reviewer called it a false hit.
        Dismiss = "dismiss",
        /// A note without a change of verdict.
        Note = "note",
        /// The agent appealed it.
        Appeal = "appeal",
        /// A reviewer upheld the agent's appeal (the finding is dismissed).
        Uphold = "uphold",
        /// A reviewer rejected the agent's appeal (the finding is confirmed).
        Reject = "reject",
    }
}

text_enum! {
    /// What a live warning was about.
    AlertKind {
        /// The agent's tone (语气提醒).
        Tone = "tone",
        /// A forbidden phrase (禁语提醒).
        Forbidden = "forbidden",
        /// A long silence (shown to supervisors).
        Silence = "silence",
    }
}

text_enum! {
    /// How a live call's stream ended.
    EndReason {
        /// The PBX said so (WebSocket close, AudioSocket 0x00 or hang-up).
        Hangup = "hangup",
        /// The connection dropped without an end: the call is kept with what arrived.
        Vanished = "vanished",
        /// The PBX sent something callqc could not accept, or reported an error.
        Error = "error",
        /// callqc was stopped while the call ran.
        Shutdown = "shutdown",
    }
}

text_enum! {
    /// How a PBX streams a live call.
    IngestProtocol {
        /// FreeSWITCH mod_audio_fork / mod_audio_stream: metadata text frame, then binary frames.
        WebSocket = "websocket",
        /// Asterisk AudioSocket over TCP, one connection per channel.
        AudioSocket = "audiosocket",
    }
}

text_enum! {
    /// Where a call's audio came from.
    Source {
        /// A recording analysed by `batch`, `eval` or `transcribe`.
        Batch = "batch",
        /// A call streamed in while it ran (`serve`).
        Live = "live",
    }
}

// A live call's frame encoding, as the live tables have always held it ("L16", "Pcmu",
// "Pcma": the names its JSON form also has).
crate::store::db::text_value!(
    crate::audio::frames::FrameEncoding,
    |e: &crate::audio::frames::FrameEncoding| match e {
        crate::audio::frames::FrameEncoding::L16 => "L16",
        crate::audio::frames::FrameEncoding::Pcmu => "Pcmu",
        crate::audio::frames::FrameEncoding::Pcma => "Pcma",
    },
    |s: &str| match s {
        "L16" => Ok(crate::audio::frames::FrameEncoding::L16),
        "Pcmu" => Ok(crate::audio::frames::FrameEncoding::Pcmu),
        "Pcma" => Ok(crate::audio::frames::FrameEncoding::Pcma),
        other => Err(format!("unknown frame encoding '{other}'")),
    }
);

crate::store::db::text_value!(
    crate::audio::Role,
    |r: &crate::audio::Role| r.as_str(),
    |s: &str| s.parse()
);

pub use crate::rubric::Kind;

crate::store::db::text_value!(Kind, |k: &Kind| k.name(), |s: &str| Kind::from_name(s)
    .ok_or_else(|| format!("unknown rule kind '{s}'")));
