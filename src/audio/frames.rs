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

impl FrameEncoding {
    /// Linear 16-bit samples from a frame's bytes (what a recording of the call keeps); `decode`
    /// is this divided by 32768, so a recording written from these decodes to the same samples.
    pub fn decode_i16(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            FrameEncoding::L16 => bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
            FrameEncoding::Pcmu => bytes.iter().map(|&c| ulaw_to_linear(c)).collect(),
            FrameEncoding::Pcma => bytes.iter().map(|&c| alaw_to_linear(c)).collect(),
        }
    }

    /// Bytes of samples in [-1, 1] (what a PBX sends; test clients use it).
    pub fn encode(self, samples: &[f32]) -> Vec<u8> {
        let pcm = samples
            .iter()
            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16);
        match self {
            FrameEncoding::L16 => pcm.flat_map(i16::to_le_bytes).collect(),
            FrameEncoding::Pcmu => pcm.map(linear_to_ulaw).collect(),
            FrameEncoding::Pcma => pcm.map(linear_to_alaw).collect(),
        }
    }
}

impl super::Encoding {
    /// The frame encoding that carries this file encoding unchanged, if there is one.
    pub fn frame_encoding(self) -> Option<FrameEncoding> {
        match self {
            super::Encoding::PcmInt { bits: 16 } => Some(FrameEncoding::L16),
            super::Encoding::MuLaw => Some(FrameEncoding::Pcmu),
            super::Encoding::ALaw => Some(FrameEncoding::Pcma),
            _ => None,
        }
    }
}

/// The segment (0–7) of a magnitude against G.711's segment end points, 8 if past the last.
fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    ends.iter().position(|&e| value <= e).unwrap_or(8) as i32
}

/// G.711 μ-law encoding of a 16-bit sample (the ITU / Sun reference algorithm).
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let mut v = i32::from(pcm) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(8159) + (0x84 >> 2);
    let seg = segment(v, &ENDS);
    let code = if seg >= 8 {
        0x7F
    } else {
        (seg << 4) | ((v >> (seg + 1)) & 0xF)
    };
    (code ^ mask) as u8
}

/// G.711 A-law encoding of a 16-bit sample (the ITU / Sun reference algorithm).
pub fn linear_to_alaw(pcm: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(pcm) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ENDS);
    let code = if seg >= 8 {
        0x7F
    } else if seg < 2 {
        (seg << 4) | ((v >> 1) & 0xF)
    } else {
        (seg << 4) | ((v >> seg) & 0xF)
    };
    (code ^ mask) as u8
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
    fn encoding_a_decoded_g711_value_gives_back_its_value() {
        for code in 0..=255u8 {
            let u = ulaw_to_linear(code);
            assert_eq!(ulaw_to_linear(linear_to_ulaw(u)), u, "μ-law {code:#x}");
            let a = alaw_to_linear(code);
            assert_eq!(alaw_to_linear(linear_to_alaw(a)), a, "A-law {code:#x}");
        }
        let x = [0.0, 0.25, -0.5, 0.999];
        for e in [FrameEncoding::L16, FrameEncoding::Pcmu, FrameEncoding::Pcma] {
            let y = e.decode(&e.encode(&x));
            assert!(
                x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.02),
                "{e:?}: {y:?}"
            );
        }
    }

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
