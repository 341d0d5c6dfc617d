//! `callqc.toml`: what `callqc serve` listens on, which models and rubric it uses, where it
//! keeps recordings, and the tokens of everyone allowed in. Tokens live only here: never in
//! code, never in logs (their `Debug` is redacted).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::auth::{Identity, Tokens};

/// The shortest token accepted: 16 characters (a random 128-bit token in hex is 32).
/// How long a PBX may take to send its metadata, and stay silent mid-call, before callqc
/// gives up on it (a silent call still sends frames: silence is samples, not nothing).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

pub const MIN_TOKEN_LEN: usize = 16;

/// The parsed configuration file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The file it came from (relative paths in it are relative to its folder).
    pub path: PathBuf,
    pub server: ServerSection,
    pub tokens: Tokens,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// HTTP and WebSocket address (pages, ingest, warnings). Loopback unless said otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Asterisk AudioSocket TCP address; absent = no AudioSocket listener.
    #[serde(default)]
    pub audiosocket: Option<SocketAddr>,
    /// The store: a SQLite file or a `postgres://` URL (the same one `batch` writes).
    #[serde(default = "default_db")]
    pub db: PathBuf,
    #[serde(default = "default_rubric")]
    pub rubric: PathBuf,
    /// Where each call's recording is written when it ends (one folder per day).
    #[serde(default = "default_recordings")]
    pub recordings: PathBuf,
    /// Whisper model name or path, as `--model` elsewhere.
    #[serde(default = "default_model")]
    pub model: String,
    /// Live analysis workers (each with its models loaded once); default: as `--threads` allows,
    /// at most 2.
    #[serde(default)]
    pub workers: Option<usize>,
    /// A finished utterance whose audio waited longer than this is not decoded live (its
    /// warning would come too late); counted, and the final pass still decodes it.
    #[serde(default = "default_shed_after_s")]
    pub shed_after_s: f64,
    /// Messages kept per desktop page that is not reading; older ones are dropped for it.
    #[serde(default = "default_client_queue")]
    pub client_queue: usize,
    /// The trainer pages show phone, ID, card and address numbers masked (138****5678) and
    /// clips with them muted.
    #[serde(default = "yes")]
    pub mask_personal_data: bool,
    /// On SIGTERM or SIGINT: seconds to end the calls in progress and store their final passes
    /// before exiting anyway (what is left is stored at the next start).
    #[serde(default = "default_stop_timeout_s")]
    pub stop_timeout_s: f64,
}

fn yes() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8345))
}
fn default_db() -> PathBuf {
    PathBuf::from("callqc.db")
}
fn default_rubric() -> PathBuf {
    PathBuf::from("rubrics/12345.toml")
}
fn default_recordings() -> PathBuf {
    PathBuf::from("recordings")
}
fn default_model() -> String {
    "base-q8_0".into()
}
fn default_shed_after_s() -> f64 {
    1.0
}
fn default_client_queue() -> usize {
    32
}
fn default_stop_timeout_s() -> f64 {
    30.0
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            audiosocket: None,
            db: default_db(),
            rubric: default_rubric(),
            recordings: default_recordings(),
            model: default_model(),
            workers: None,
            shed_after_s: default_shed_after_s(),
            client_queue: default_client_queue(),
            mask_personal_data: true,
            stop_timeout_s: default_stop_timeout_s(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<ServerSection>,
    #[serde(default)]
    tokens: RawTokens,
}

/// `[tokens.*]`: name (or agent id) = token.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    /// PBXs streaming audio in.
    #[serde(default)]
    ingest: BTreeMap<String, String>,
    /// Agent id = that agent's token (the agent id the PBX sends in its metadata).
    #[serde(default)]
    agents: BTreeMap<String, String>,
    #[serde(default)]
    supervisors: BTreeMap<String, String>,
    /// Trainers and QC leads (review pages).
    #[serde(default)]
    reviewers: BTreeMap<String, String>,
}

/// What is wrong with a configuration file; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: cannot write: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        ServeConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ServeConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // toml's message quotes the offending line, tokens included: say where, not what.
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    format!(
                        " (line {})",
                        text[..s.start.min(text.len())].lines().count().max(1)
                    )
                })
                .unwrap_or_default();
            invalid(format!("{}{at}", e.message()))
        })?;
        let mut entries = Vec::new();
        for (section, map, identity) in [
            (
                "ingest",
                &raw.tokens.ingest,
                Identity::Pbx as fn(String) -> Identity,
            ),
            ("agents", &raw.tokens.agents, Identity::Agent),
            ("supervisors", &raw.tokens.supervisors, Identity::Supervisor),
            ("reviewers", &raw.tokens.reviewers, Identity::Reviewer),
        ] {
            for (name, token) in map {
                if token.chars().count() < MIN_TOKEN_LEN {
                    return Err(invalid(format!(
                        "[tokens.{section}] {name}: a token needs at least {MIN_TOKEN_LEN} characters"
                    )));
                }
                if name.trim().is_empty() {
                    return Err(invalid(format!("[tokens.{section}]: an empty name")));
                }
                entries.push((token.clone(), identity(name.clone())));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (token, who) in &entries {
            if !seen.insert(token.as_str()) {
                return Err(invalid(format!(
                    "{who}: the same token is given to two names (each needs its own)"
                )));
            }
        }
        let mut server = raw.server.unwrap_or_default();
        if server.shed_after_s.is_nan() || server.shed_after_s <= 0.0 {
            return Err(invalid("[server] shed_after_s must be > 0".into()));
        }
        if !(server.stop_timeout_s >= 0.0 && server.stop_timeout_s.is_finite()) {
            return Err(invalid(
                "[server] stop_timeout_s must be a number of seconds ≥ 0".into(),
            ));
        }
        server.client_queue = server.client_queue.max(1);
        // Relative paths are relative to the config file (a postgres:// store is no path).
        let base = path.parent().unwrap_or(Path::new("."));
        let db_is_url = crate::store::is_postgres_url(&server.db.to_string_lossy());
        for p in [&mut server.db, &mut server.rubric, &mut server.recordings] {
            if db_is_url && crate::store::is_postgres_url(&p.to_string_lossy()) {
                continue;
            }
            if p.is_relative() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
        Ok(ServeConfig {
            path: path.to_path_buf(),
            server,
            tokens: Tokens::new(entries),
        })
    }

    /// The paths the server needs before it starts: the rubric file, the SQLite store's folder.
    /// A wrong one is named with the file and the key it came from.
    pub fn check_paths(&self) -> Result<(), ConfigError> {
        let wrong = |key: &str, p: &Path, what: &str| ConfigError::Invalid {
            path: self.path.clone(),
            message: format!("[server] {key} = {:?}: {what}", p.display().to_string()),
        };
        if !self.server.rubric.is_file() {
            return Err(wrong("rubric", &self.server.rubric, "no such file"));
        }
        let db = &self.server.db;
        if !crate::store::is_postgres_url(&db.to_string_lossy()) {
            let folder = db.parent().filter(|f| !f.as_os_str().is_empty());
            if let Some(f) = folder
                && !f.is_dir()
            {
                return Err(wrong("db", db, "its folder does not exist"));
            }
        }
        if self.server.recordings.exists() && !self.server.recordings.is_dir() {
            return Err(wrong("recordings", &self.server.recordings, "not a folder"));
        }
        Ok(())
    }
}

/// Write a new configuration with fresh random tokens: one PBX, one supervisor, one reviewer and
/// each agent given; `rubric` is the rubric file to name. Every path in it is absolute (the
/// store and the recordings beside the file), so the file works wherever it is written. The
/// file is created readable by its owner only and never overwritten.
pub fn write_new(path: &Path, agents: &[String], rubric: &Path) -> Result<(), ConfigError> {
    let write_err = |cause| ConfigError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let absolute = |p: &Path| -> Result<PathBuf, ConfigError> {
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().map_err(write_err)?.join(p)
        })
    };
    let folder = absolute(path)?
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let quoted = |p: &Path| toml_string(&p.display().to_string());
    let mut text = String::from(
        "# callqc serve configuration. Keep this file private: it holds every token.\n\
         # Relative paths are relative to this file's folder.\n\n\
         [server]\n\
         listen = \"127.0.0.1:8345\"        # HTTP: pages, ingest WebSocket, warnings\n\
         audiosocket = \"127.0.0.1:8346\"   # Asterisk AudioSocket (TCP); remove to switch off\n",
    );
    text.push_str(&format!("db = {}\n", quoted(&folder.join("callqc.db"))));
    text.push_str(&format!("rubric = {}\n", quoted(&absolute(rubric)?)));
    text.push_str(&format!(
        "recordings = {}\n",
        quoted(&folder.join("recordings"))
    ));
    text.push_str(
        "model = \"base-q8_0\"\n\
         stop_timeout_s = 30               # SIGTERM / SIGINT: time to store the calls in progress\n\n\
         [tokens.ingest]\npbx = \"",
    );
    text.push_str(&random_token().map_err(write_err)?);
    text.push_str("\"\n\n[tokens.supervisors]\nsupervisor = \"");
    text.push_str(&random_token().map_err(write_err)?);
    text.push_str("\"\n\n[tokens.reviewers]\nreviewer = \"");
    text.push_str(&random_token().map_err(write_err)?);
    text.push_str("\"\n\n# agent id (as the PBX sends it) = that agent's token\n[tokens.agents]\n");
    for a in agents {
        text.push_str(&format!(
            "{} = \"{}\"\n",
            toml_key(a),
            random_token().map_err(write_err)?
        ));
    }
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path).map_err(write_err)?;
    f.write_all(text.as_bytes()).map_err(write_err)
}

/// A TOML basic string holding `s` (paths may hold quotes or backslashes).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// 128 random bits from the operating system, as 32 hex digits.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_parses_with_defaults_and_relative_paths() {
        let c = ServeConfig::parse(
            "[tokens.agents]\n\"1001\" = \"aaaaaaaaaaaaaaaaaaaa\"\n",
            Path::new("/etc/callqc/callqc.toml"),
        )
        .unwrap();
        assert_eq!(c.server.listen.ip().to_string(), "127.0.0.1");
        assert_eq!(c.server.db, Path::new("/etc/callqc/callqc.db"));
        assert_eq!(
            c.tokens.identify("aaaaaaaaaaaaaaaaaaaa"),
            Some(Identity::Agent("1001".into()))
        );
    }

    #[test]
    fn a_wrong_path_is_named_with_its_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("callqc.toml");
        let c = ServeConfig::parse("[server]\nrubric = \"nowhere/r.toml\"\n", &p).unwrap();
        let e = c.check_paths().unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        assert!(
            e.contains("[server] rubric") && e.contains("nowhere/r.toml"),
            "{e}"
        );
        let c = ServeConfig::parse("[server]\nstop_timeout_s = -1\n", &p).unwrap_err();
        assert!(c.to_string().contains("stop_timeout_s"), "{c}");
    }

    #[test]
    fn bad_configs_name_the_file_and_never_echo_a_token() {
        let p = Path::new("x.toml");
        let short = ServeConfig::parse("[tokens.agents]\na = \"short\"\n", p).unwrap_err();
        assert!(short.to_string().starts_with("x.toml: "), "{short}");
        assert!(short.to_string().contains("16 characters"), "{short}");
        let dup = ServeConfig::parse(
            "[tokens.agents]\na = \"secretsecretsecret1\"\nb = \"secretsecretsecret1\"\n",
            p,
        )
        .unwrap_err();
        assert!(!dup.to_string().contains("secretsecret"), "{dup}");
        let unknown =
            ServeConfig::parse("[server]\nlisten = 5\ntoken = \"secretsecretsecret2\"\n", p)
                .unwrap_err();
        assert!(!unknown.to_string().contains("secretsecret"), "{unknown}");
        let typo =
            ServeConfig::parse("[tokens.agent]\na = \"secretsecretsecret3\"\n", p).unwrap_err();
        assert!(typo.to_string().contains("line"), "{typo}");
        assert!(!typo.to_string().contains("secretsecret"), "{typo}");
    }

    #[test]
    fn a_new_config_has_distinct_random_tokens_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("callqc.toml");
        let rubric = Path::new(env!("CARGO_MANIFEST_DIR")).join("rubrics/12345.toml");
        write_new(&p, &["1001".into(), "工号 7".into()], &rubric).unwrap();
        let c = ServeConfig::load(&p).unwrap();
        assert_eq!(c.tokens.len(), 5);
        assert_eq!(c.server.rubric, rubric);
        assert_eq!(c.server.db, dir.path().join("callqc.db"));
        assert_eq!(c.server.recordings, dir.path().join("recordings"));
        c.check_paths().unwrap();
        assert!(
            write_new(&p, &[], &rubric).is_err(),
            "an existing config is never overwritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
    }
}
