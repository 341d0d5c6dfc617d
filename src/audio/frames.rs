//! Raw telephony frames as PBXs stream them: 16-bit little-endian linear PCM (L16, FreeSWITCH
//! `mod_audio_fork`, Asterisk AudioSocket), G.711 μ-law (PCMU) or A-law (PCMA), one byte each.

use serde::{Deserialize, Serialize};

use super::decode::{alaw_to_linear, ulaw_to_linear};

/// How a frame's bytes encode samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameEncoding {
    /// Signed 16-bit little-endian PCM.
    L16,
    /// G.711 μ-law.
    #[serde(alias = "ulaw", alias = "mulaw")]
    Pcmu,
    /// G.711 A-law.
    #[serde(alias = "alaw")]
    Pcma,
}

impl FrameEncoding {
    /// Bytes per sample of one channel.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            FrameEncoding::L16 => 2,
            FrameEncoding::Pcmu | FrameEncoding::Pcma => 1,
        }
    }

    /// Samples in [-1, 1] from a frame's bytes. A trailing odd byte of L16 is ignored (it is
    /// half a sample: the caller may count it as a protocol error).
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        let scale = 1.0 / 32768.0;
        match self {
            FrameEncoding::L16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) * scale)
                .collect(),
            FrameEncoding::Pcmu => bytes
                .iter()
                .map(|&c| f32::from(ulaw_to_linear(c)) * scale)
                .collect(),
            FrameEncoding::Pcma => bytes
                .iter()
                .map(|&c| f32::from(alaw_to_linear(c)) * scale)
                .collect(),
        }
    }
}

/// Split interleaved samples into `channels` channels.
pub fn deinterleave(samples: &[f32], channels: usize) -> Vec<Vec<f32>> {
    let channels = channels.max(1);
    let mut out = vec![Vec::with_capacity(samples.len() / channels); channels];
    for frame in samples.chunks_exact(channels) {
        for (c, &x) in frame.iter().enumerate() {
            out[c].push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_decodes_to_the_same_scale_as_the_wav_reader() {
        assert_eq!(
            FrameEncoding::L16.decode(&[0x00, 0x80, 0xff, 0x7f, 0x01]),
            vec![-1.0, 32767.0 / 32768.0]
        );
        assert_eq!(FrameEncoding::Pcmu.decode(&[0xff]), vec![0.0]);
        assert_eq!(FrameEncoding::Pcma.decode(&[0xaa]), vec![32256.0 / 32768.0]);
        assert_eq!(
            deinterleave(&[1.0, 2.0, 3.0, 4.0, 5.0], 2),
            vec![vec![1.0, 3.0], vec![2.0, 4.0]]
        );
    }
}
