//! ggml block quantisation (q8_0, q5_0), byte-compatible with whisper.cpp's `quantize` tool.
//!
//! Quantised models are smaller and faster on CPUs (q8_0 roughly halves the f16 file with no
//! measurable accuracy loss for whisper). The block formats and the rounding follow ggml's
//! reference quantisers (`quantize_row_q8_0_ref` / `quantize_row_q5_0_ref`), which are what
//! whisper.cpp's tool uses, so a file we quantise equals one made by converting to f16 and then
//! running that tool (for float16 sources, where the f16 step loses nothing).
//!
//! Which tensors get quantised also mirrors the tool: every 2-D tensor except the conv biases and
//! the positional embeddings ([`should_quantize`]); 3-D conv kernels stay f16 and 1-D tensors f32,
//! because whisper.cpp's loader expects exactly those types for a quantised model.

/// Elements per block for both formats.
pub const QK: usize = 32;
/// Bytes per q8_0 block: f16 scale + 32 × i8.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK;
/// Bytes per q5_0 block: f16 scale + 32 high bits + 32 × 4 low bits.
pub const Q5_0_BLOCK_BYTES: usize = 2 + 4 + QK / 2;

/// Tensors whisper.cpp's quantize tool leaves alone although they are 2-D.
const NEVER_QUANTIZED: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// Whether whisper.cpp expects tensor `name` with `n_dims` dimensions in the quantised type.
pub fn should_quantize(name: &str, n_dims: usize) -> bool {
    n_dims == 2 && !NEVER_QUANTIZED.contains(&name)
}

fn f16_bits(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

fn f16_value(b: [u8; 2]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes(b)).to_f32()
}

/// Quantises `x` (length a multiple of [`QK`], else `None`) into q8_0 blocks:
/// d = max|x| / 127, q = round(x / d) (half away from zero, as C's `roundf`).
pub fn quantize_q8_0(x: &[f32]) -> Option<Vec<u8>> {
    if !x.len().is_multiple_of(QK) {
        return None;
    }
    let mut out = Vec::with_capacity(x.len() / QK * Q8_0_BLOCK_BYTES);
    for block in x.chunks_exact(QK) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        // ggml multiplies by the reciprocal rather than dividing; keep that for identical bytes.
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16_bits(d));
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
    Some(out)
}

/// Inverse of [`quantize_q8_0`] (d is stored as f16, so values come back within about d/2).
pub fn dequantize_q8_0(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(Q8_0_BLOCK_BYTES) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / Q8_0_BLOCK_BYTES * QK);
    for block in bytes.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = f16_value([block[0], block[1]]);
        out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
    }
    Some(out)
}

/// Quantises `x` (length a multiple of [`QK`], else `None`) into q5_0 blocks: d = (value of
/// largest magnitude) / -16, q = trunc(x/d + 16.5) capped at 31; low nibbles packed two per byte
/// (element j with element j+16), fifth bits gathered in a little-endian u32.
pub fn quantize_q5_0(x: &[f32]) -> Option<Vec<u8>> {
    if !x.len().is_multiple_of(QK) {
        return None;
    }
    let mut out = Vec::with_capacity(x.len() / QK * Q5_0_BLOCK_BYTES);
    for block in x.chunks_exact(QK) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in block {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // x·id lies in [-16, 16], so x·id + 16.5 is in [0.5, 32.5]: truncation gives 0..=32.
        let q = |v: f32| ((v * id + 16.5) as i8).clamp(0, 31) as u8;
        let mut qh = 0u32;
        let mut qs = [0u8; QK / 2];
        for j in 0..QK / 2 {
            let (lo, hi) = (q(block[j]), q(block[j + QK / 2]));
            qs[j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
            qh |= u32::from(lo >> 4) << j;
            qh |= u32::from(hi >> 4) << (j + QK / 2);
        }
        out.extend_from_slice(&f16_bits(d));
        out.extend_from_slice(&qh.to_le_bytes());
        out.extend_from_slice(&qs);
    }
    Some(out)
}

/// Inverse of [`quantize_q5_0`].
pub fn dequantize_q5_0(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(Q5_0_BLOCK_BYTES) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / Q5_0_BLOCK_BYTES * QK);
    for block in bytes.chunks_exact(Q5_0_BLOCK_BYTES) {
        let d = f16_value([block[0], block[1]]);
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let qs = &block[6..];
        let value = |j: usize| {
            let low = if j < QK / 2 {
                qs[j] & 0x0f
            } else {
                qs[j - QK / 2] >> 4
            };
            let high = ((qh >> j) & 1) as u8;
            (i32::from(low | (high << 4)) - 16) as f32 * d
        };
        out.extend((0..QK).map(value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Vec<f32> {
        (0..64).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect()
    }

    #[test]
    fn q8_0_round_trip() {
        let x = ramp();
        let q = quantize_q8_0(&x).unwrap();
        assert_eq!(q.len(), 2 * Q8_0_BLOCK_BYTES);
        let y = dequantize_q8_0(&q).unwrap();
        for (block, (xs, ys)) in x.chunks(QK).zip(y.chunks(QK)).enumerate() {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            for (a, b) in xs.iter().zip(ys) {
                assert!(
                    (a - b).abs() <= d * 0.5 + amax * 1e-3,
                    "block {block}: {a} vs {b}"
                );
            }
            // The element of largest magnitude maps to ±127.
            let qs = &q[block * Q8_0_BLOCK_BYTES + 2..(block + 1) * Q8_0_BLOCK_BYTES];
            assert_eq!(
                qs.iter().map(|&b| (b as i8).unsigned_abs()).max(),
                Some(127)
            );
        }
    }

    #[test]
    fn q8_0_exact_layout() {
        // One block: 1.0 at index 0, -0.5 at index 1, zeros elsewhere.
        let mut x = vec![0f32; QK];
        x[0] = 1.0;
        x[1] = -0.5;
        let q = quantize_q8_0(&x).unwrap();
        assert_eq!(
            &q[..2],
            &half::f16::from_f32(1.0 / 127.0).to_bits().to_le_bytes()
        );
        assert_eq!(q[2] as i8, 127);
        assert_eq!(q[3] as i8, -64); // -63.5 rounds away from zero
        assert!(q[4..].iter().all(|&b| b == 0));
        // An all-zero block has d = 0 and all-zero quants.
        assert!(quantize_q8_0(&[0.0; QK]).unwrap().iter().all(|&b| b == 0));
        assert!(quantize_q8_0(&[0.0; 31]).is_none());
    }

    #[test]
    fn q5_0_round_trip() {
        let x = ramp();
        let q = quantize_q5_0(&x).unwrap();
        assert_eq!(q.len(), 2 * Q5_0_BLOCK_BYTES);
        let y = dequantize_q5_0(&q).unwrap();
        for (xs, ys) in x.chunks(QK).zip(y.chunks(QK)) {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 16.0;
            for (a, b) in xs.iter().zip(ys) {
                // Values near +amax (opposite sign to the extreme) cap at 15·d: error up to d.
                assert!((a - b).abs() <= d * 1.01, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn which_tensors_are_quantized() {
        assert!(should_quantize("encoder.blocks.0.attn.query.weight", 2));
        assert!(should_quantize("decoder.token_embedding.weight", 2));
        assert!(!should_quantize("encoder.conv1.weight", 3));
        assert!(!should_quantize("encoder.conv1.bias", 2));
        assert!(!should_quantize("encoder.positional_embedding", 2));
        assert!(!should_quantize("decoder.positional_embedding", 2));
        assert!(!should_quantize("decoder.ln.weight", 1));
    }
}
