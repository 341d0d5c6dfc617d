//! Where models live and how the machine's cores are shared.
//!
//! One setting, `threads`, decides parallelism: a run uses `workers` parallel calls, each with
//! `threads / workers` whisper threads, and ONNX Runtime gets one thread per worker (silero VAD
//! and the tone model are tiny next to whisper). Nothing else starts threads, so the product
//! never oversubscribes the cores.

use std::path::{Path, PathBuf};

/// How the cores are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Parallelism {
    pub workers: usize,
    pub whisper_threads: usize,
    pub onnx_threads: usize,
}

impl Parallelism {
    /// Split `threads` cores over at most `max_workers` workers (whisper scales sub-linearly
    /// with threads, so more workers with fewer threads each is better for batches).
    pub fn split(threads: usize, max_workers: usize) -> Self {
        let threads = threads.max(1);
        let workers = max_workers.clamp(1, threads);
        Parallelism {
            workers,
            whisper_threads: (threads / workers).max(1),
            onnx_threads: 1,
        }
    }

    /// One worker with every core (a single file from the command line).
    pub fn single(threads: usize) -> Self {
        Parallelism::split(threads, 1)
    }
}

/// The machine's core count (what `--threads` defaults to).
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Find the models directory: an explicit one, else `CALLQC_MODELS`, else `./models`, else
/// `models/` next to the source tree the binary was built from (so `target/release/callqc`
/// works from any directory of a checkout).
pub fn models_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("CALLQC_MODELS").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("models");
    if local.join("manifest.tsv").exists() {
        return local;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    if built.exists() {
        return built;
    }
    local
}

/// Resolve `--model`: a name (`base`, `base-q8_0`) means `<models>/ggml-<name>.bin`; anything with
/// a path separator or a `.bin` ending is a path to a whisper.cpp ggml file.
pub fn whisper_model_path(models_dir: &Path, model: &str) -> PathBuf {
    if model.contains('/') || model.ends_with(".bin") {
        PathBuf::from(model)
    } else {
        models_dir.join(format!("ggml-{model}.bin"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_never_oversubscribed() {
        for threads in 1..=16 {
            for max in 1..=8 {
                let p = Parallelism::split(threads, max);
                assert!(
                    p.workers * p.whisper_threads <= threads.max(1),
                    "{threads} {max} {p:?}"
                );
                assert!(p.workers >= 1 && p.whisper_threads >= 1);
            }
        }
        assert_eq!(Parallelism::split(2, 2).whisper_threads, 1);
        assert_eq!(Parallelism::single(2).whisper_threads, 2);
    }

    #[test]
    fn model_names_and_paths() {
        let m = Path::new("/m");
        assert_eq!(whisper_model_path(m, "base"), Path::new("/m/ggml-base.bin"));
        assert_eq!(whisper_model_path(m, "./x.bin"), Path::new("./x.bin"));
    }
}

/// The workers of one process that have no call right now, as cores another worker may borrow
/// (a recording's second channel decoded beside its first). Borrowing never blocks: a worker
/// that starts a call takes its own core whether or not it was lent, so at worst two decodes
/// share a core for the rest of one channel.
#[derive(Debug)]
pub struct SpareCores {
    idle: std::sync::atomic::AtomicIsize,
}

/// A core taken (a worker's own while it has a call, or a borrowed one); given back on drop.
pub struct CoreTaken<'a>(&'a SpareCores);

impl Drop for CoreTaken<'_> {
    fn drop(&mut self) {
        self.0
            .idle
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl SpareCores {
    /// `workers` workers, none busy yet.
    pub fn new(workers: usize) -> SpareCores {
        SpareCores {
            idle: std::sync::atomic::AtomicIsize::new(workers as isize),
        }
    }

    /// A worker starts a call.
    pub fn busy(&self) -> CoreTaken<'_> {
        self.idle.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        CoreTaken(self)
    }

    /// Borrow an idle worker's core, if there is one.
    pub fn try_borrow(&self) -> Option<CoreTaken<'_>> {
        use std::sync::atomic::Ordering;
        self.idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 0).then(|| n - 1)
            })
            .ok()
            .map(|_| CoreTaken(self))
    }
}
