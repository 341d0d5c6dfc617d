//! Times in output: seconds rounded to milliseconds, so JSON says `0.7`, not
//! `0.7000000000000001`. Analysis keeps full precision; only what is written out is rounded.

use serde::Serializer;

/// Round seconds to the millisecond.
pub fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// `#[serde(serialize_with = "crate::time::round_ms")]` for an `f64` field of seconds.
pub fn round_ms<S: Serializer>(t: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*t))
}

/// The same for an `Option<f64>`.
pub fn round_ms_opt<S: Serializer>(t: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&ms(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_of_frame_times_print_as_milliseconds() {
        #[derive(serde::Serialize)]
        struct T {
            #[serde(serialize_with = "super::round_ms")]
            t: f64,
        }
        let t = 0.1 * 7.0;
        assert_ne!(t.to_string(), "0.7");
        assert_eq!(serde_json::to_string(&T { t }).unwrap(), r#"{"t":0.7}"#);
    }
}
