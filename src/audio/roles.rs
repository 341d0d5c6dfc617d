//! Turn a decoded [`Recording`] into per-role audio at 16 kHz.
//!
//! Telephony recorders usually put the agent on one stereo channel and the caller on the
//! other; a [`ChannelMap`] says which is which (default: agent left, caller right). Mono files
//! carry both parties on one channel and become a single [`Role::Mixed`] track. If both
//! channels are mapped to the same role (for example a stereo file that is really duplicated
//! mono, mapped `mixed,mixed`) the channels are averaged into one track.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::decode::decode_file;
use super::resample::to_target_rate;
use super::{AudioError, ChannelMap, Recording, Role, RoleAudio};

/// The roles of a recording's channels and their samples at the file's own rate: mono is one
/// [`Role::Mixed`] channel; stereo is `[map.left, map.right]`, or one averaged channel when
/// both map to the same role.
pub fn role_channels(
    rec: &Recording,
    map: ChannelMap,
) -> Result<Vec<(Role, Vec<f32>)>, AudioError> {
    into_role_channels(rec.clone(), map)
}

/// [`role_channels`], moving the recording's samples into the role tracks instead of copying
/// them (a four-hour stereo call is 900 MB of samples at 8 kHz).
pub fn into_role_channels(
    rec: Recording,
    map: ChannelMap,
) -> Result<Vec<(Role, Vec<f32>)>, AudioError> {
    let Recording { path, channels, .. } = rec;
    let n = channels.len();
    let mut channels = channels.into_iter();
    match (channels.next(), channels.next(), n) {
        (Some(mono), None, 1) => Ok(vec![(Role::Mixed, mono)]),
        (Some(left), Some(right), 2) if map.left == map.right => {
            // Average rather than sum so two full-scale channels cannot clip.
            let mixed = left
                .iter()
                .zip(&right)
                .map(|(l, r)| 0.5 * (l + r))
                .collect();
            Ok(vec![(map.left, mixed)])
        }
        (Some(left), Some(right), 2) => Ok(vec![(map.left, left), (map.right, right)]),
        (_, _, 0) => Err(AudioError::Corrupt {
            path,
            reason: "recording has no channels".to_string(),
        }),
        _ => Err(AudioError::Unsupported {
            path,
            reason: format!("{n} channels (only mono and stereo calls are supported)"),
        }),
    }
}

/// Split a recording into role tracks ([`role_channels`]), each resampled to
/// [`super::TARGET_RATE`].
pub fn split_roles(rec: &Recording, map: ChannelMap) -> Result<Vec<RoleAudio>, AudioError> {
    role_channels(rec, map)?
        .into_iter()
        .map(|(role, samples)| {
            Ok(RoleAudio {
                role,
                samples: to_target_rate(&rec.path, &samples, rec.sample_rate)?,
            })
        })
        .collect()
}

/// Decode a call and split it into role tracks: [`decode_file`] then [`split_roles`].
pub fn load_call_audio(
    path: &Path,
    map: ChannelMap,
) -> Result<(Recording, Vec<RoleAudio>), AudioError> {
    let rec = decode_file(path)?;
    let roles = split_roles(&rec, map)?;
    Ok((rec, roles))
}

const MAP_EXAMPLES: &str =
    "expected e.g. 'agent,caller', 'caller,agent' or 'left=agent,right=caller'";

impl FromStr for ChannelMap {
    type Err = String;

    /// Parse `"agent,caller"` (left first), `"left=agent,right=caller"` (either order), or the
    /// same with `l=`/`r=`. Case and spaces do not matter. `mixed` may only be used for both
    /// channels, since a mixed track next to a single-party track would be counted twice.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if s.trim().is_empty() {
            return Err(format!("empty channel map; {MAP_EXAMPLES}"));
        }
        if parts.len() != 2 {
            return Err(format!(
                "channel map '{s}' has {} part(s), need one role per stereo channel; \
                 {MAP_EXAMPLES}",
                parts.len()
            ));
        }
        let role = |r: &str| {
            r.parse::<Role>()
                .map_err(|e| format!("channel map '{s}': {e}"))
        };
        let named: Vec<Option<(&str, &str)>> = parts.iter().map(|p| p.split_once('=')).collect();
        let (left, right) = match (named[0], named[1]) {
            (None, None) => (role(parts[0])?, role(parts[1])?),
            (Some(a), Some(b)) => {
                let (mut left, mut right) = (None, None);
                for (side, r) in [a, b] {
                    let slot = match side.trim().to_ascii_lowercase().as_str() {
                        "left" | "l" => &mut left,
                        "right" | "r" => &mut right,
                        other => {
                            return Err(format!(
                                "channel map '{s}': unknown channel '{other}' \
                                 (expected left or right)"
                            ));
                        }
                    };
                    if slot.is_some() {
                        return Err(format!(
                            "channel map '{s}': the {} channel is given twice",
                            side.trim()
                        ));
                    }
                    *slot = Some(role(r)?);
                }
                match (left, right) {
                    (Some(l), Some(r)) => (l, r),
                    // Both parts were named and neither repeated, so both sides are set.
                    _ => return Err(format!("channel map '{s}': {MAP_EXAMPLES}")),
                }
            }
            _ => {
                return Err(format!(
                    "channel map '{s}' mixes 'side=role' and plain roles; {MAP_EXAMPLES}"
                ));
            }
        };
        if (left == Role::Mixed) != (right == Role::Mixed) {
            return Err(format!(
                "channel map '{s}': 'mixed' can only be used for both channels \
                 ('mixed,mixed' treats a stereo file as one mixed track)"
            ));
        }
        Ok(ChannelMap { left, right })
    }
}

impl fmt::Display for ChannelMap {
    /// The long form, which [`FromStr`] reads back: `left=agent,right=caller`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "left={},right={}", self.left, self.right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Encoding, TARGET_RATE};
    use std::path::PathBuf;

    fn map(s: &str) -> Result<ChannelMap, String> {
        s.parse()
    }

    const AC: ChannelMap = ChannelMap {
        left: Role::Agent,
        right: Role::Caller,
    };
    const CA: ChannelMap = ChannelMap {
        left: Role::Caller,
        right: Role::Agent,
    };

    #[test]
    fn parses_channel_maps() {
        assert_eq!(map("agent,caller"), Ok(AC));
        assert_eq!(map(" Caller , AGENT "), Ok(CA));
        assert_eq!(map("left=agent,right=caller"), Ok(AC));
        assert_eq!(map("right=agent,left=caller"), Ok(CA));
        assert_eq!(map("l=caller, r=agent"), Ok(CA));
        assert_eq!(
            map("agent,agent"),
            Ok(ChannelMap {
                left: Role::Agent,
                right: Role::Agent
            })
        );
        assert_eq!(
            map("mixed,mixed"),
            Ok(ChannelMap {
                left: Role::Mixed,
                right: Role::Mixed
            })
        );
        for m in [AC, CA, map("mixed,mixed").unwrap()] {
            assert_eq!(map(&m.to_string()), Ok(m));
        }
        assert_eq!(ChannelMap::default().to_string(), "left=agent,right=caller");
    }

    #[test]
    fn rejects_bad_channel_maps_clearly() {
        let bad = |s: &str, want: &str| {
            let e = map(s).unwrap_err();
            assert!(e.contains(want), "{s:?}: {e}");
            assert!(!e.contains('\n'));
        };
        bad("", "empty channel map");
        bad("agent", "1 part(s)");
        bad("agent,caller,agent", "3 part(s)");
        bad("agent,boss", "unknown role 'boss'");
        bad("left=agent,caller", "mixes");
        bad("left=agent,left=caller", "left channel is given twice");
        bad("centre=agent,right=caller", "unknown channel 'centre'");
        bad("mixed,agent", "'mixed' can only be used for both");
    }

    fn rec(channels: Vec<Vec<f32>>, rate: u32) -> Recording {
        Recording {
            path: PathBuf::from("/calls/r.wav"),
            sample_rate: rate,
            encoding: Encoding::PcmInt { bits: 16 },
            channels,
        }
    }

    #[test]
    fn splits_mono_stereo_and_same_role() {
        let mono = split_roles(&rec(vec![vec![0.1; 8000]], 8000), AC).unwrap();
        assert_eq!(mono.len(), 1);
        assert_eq!(mono[0].role, Role::Mixed);
        assert_eq!(mono[0].samples.len(), 16000);

        let st = rec(vec![vec![0.2; 16000], vec![-0.4; 16000]], TARGET_RATE);
        let roles = split_roles(&st, CA).unwrap();
        assert_eq!(roles.len(), 2);
        assert_eq!((roles[0].role, roles[0].samples[5]), (Role::Caller, 0.2));
        assert_eq!((roles[1].role, roles[1].samples[5]), (Role::Agent, -0.4));

        let same = ChannelMap {
            left: Role::Agent,
            right: Role::Agent,
        };
        let roles = split_roles(&st, same).unwrap();
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].role, Role::Agent);
        assert!((roles[0].samples[5] + 0.1).abs() < 1e-6);

        let e = split_roles(&rec(vec![vec![0.0; 4]; 3], 8000), AC).unwrap_err();
        assert!(e.to_string().contains("3 channels"));
        assert!(split_roles(&rec(vec![], 8000), AC).is_err());
    }
}
