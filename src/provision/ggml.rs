//! The whisper.cpp model file ("ggml" legacy format): writer, vocabulary mapping and a small
//! structural reader.
//!
//! Layout (all integers i32 little-endian):
//! 1. magic `0x67676d6c`, then 11 hyper-parameters ([`Hparams`]);
//! 2. mel filters: `n_mel`, `n_fft`, then `n_mel × n_fft` f32;
//! 3. vocabulary: count, then per token `len` + raw bytes (only the ordinary BPE tokens; whisper.cpp
//!    adds the special and timestamp tokens itself);
//! 4. tensors until end of file: `n_dims`, `name_len`, `ttype`, dims innermost first (ggml's
//!    `ne[0]` is numpy's last dimension), name bytes, data.
//!
//! whisper.cpp validates every tensor's name, shape and byte size against what the header implies,
//! so a file that loads is structurally right; [`GgmlFile::parse`] lets tests and tools check the
//! same things without loading the model.

use std::collections::HashMap;
use std::io::{self, Write};

/// `"ggml"` read as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;

/// ggml tensor element types used in whisper model files, with ggml's numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q5_0,
    Q8_0,
}

impl GgmlType {
    /// ggml's `enum ggml_type` value.
    pub fn code(self) -> i32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q5_0 => 6,
            GgmlType::Q8_0 => 8,
        }
    }

    pub fn from_code(code: i32) -> Option<GgmlType> {
        Some(match code {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            6 => GgmlType::Q5_0,
            8 => GgmlType::Q8_0,
            _ => return None,
        })
    }

    /// Elements per block (1 for plain floats).
    pub fn block_len(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 => 1,
            GgmlType::Q5_0 | GgmlType::Q8_0 => super::quantize::QK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 => 2,
            GgmlType::Q5_0 => super::quantize::Q5_0_BLOCK_BYTES,
            GgmlType::Q8_0 => super::quantize::Q8_0_BLOCK_BYTES,
        }
    }

    /// Bytes needed for `n` elements, `None` if `n` is not a whole number of blocks.
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        n.is_multiple_of(self.block_len())
            .then(|| n / self.block_len() * self.block_bytes())
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q8_0 => "q8_0",
        }
    }
}

/// The hyper-parameters at the start of the file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Rows of the token embedding: 51864 English-only, 51865 multilingual, 51866 large-v3.
    /// whisper.cpp decides "multilingual" from this number.
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// 0 f32, 1 f16; quantised files store `2000 + ggml_ftype` (quantisation version 2).
    pub ftype: i32,
}

impl Hparams {
    fn fields(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn to_i32(x: usize, what: &str) -> io::Result<i32> {
    i32::try_from(x).map_err(|_| invalid(format!("{what} {x} does not fit the ggml format (i32)")))
}

/// Writes the sections of a whisper ggml file, in order, to any `Write`.
pub struct GgmlWriter<W: Write> {
    out: W,
    tensors: usize,
}

impl<W: Write> GgmlWriter<W> {
    pub fn new(out: W) -> Self {
        GgmlWriter { out, tensors: 0 }
    }

    fn i32(&mut self, v: i32) -> io::Result<()> {
        self.out.write_all(&v.to_le_bytes())
    }

    /// Section 1: magic and hyper-parameters.
    pub fn header(&mut self, hp: &Hparams) -> io::Result<()> {
        self.out.write_all(&MAGIC.to_le_bytes())?;
        for v in hp.fields() {
            self.i32(v)?;
        }
        Ok(())
    }

    /// Section 2: the `n_mel × n_fft` filter bank, row-major.
    pub fn mel_filters(&mut self, n_mel: usize, n_fft: usize, data: &[f32]) -> io::Result<()> {
        if n_mel.checked_mul(n_fft) != Some(data.len()) {
            return Err(invalid(format!(
                "mel filters: {} values for {n_mel} × {n_fft}",
                data.len()
            )));
        }
        self.i32(to_i32(n_mel, "n_mel")?)?;
        self.i32(to_i32(n_fft, "n_fft")?)?;
        self.out.write_all(&f32_bytes(data))
    }

    /// Section 3: the ordinary (byte-level BPE) tokens, as raw bytes.
    pub fn vocab<T: AsRef<[u8]>>(&mut self, tokens: &[T]) -> io::Result<()> {
        self.i32(to_i32(tokens.len(), "vocabulary size")?)?;
        for t in tokens {
            let t = t.as_ref();
            self.i32(to_i32(t.len(), "token length")?)?;
            self.out.write_all(t)?;
        }
        Ok(())
    }

    /// Section 4: one tensor. `shape` is in numpy/row-major order (outermost first) and is written
    /// reversed; `data` must hold exactly the bytes `ttype` needs for that many elements, and
    /// quantised rows must be whole blocks (ggml quantises row by row).
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        ttype: GgmlType,
        data: &[u8],
    ) -> io::Result<()> {
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| invalid(format!("tensor '{name}': shape {shape:?} overflows")))?;
        let inner = shape.last().copied().unwrap_or(1);
        if !inner.is_multiple_of(ttype.block_len()) || ttype.bytes_for(numel) != Some(data.len()) {
            return Err(invalid(format!(
                "tensor '{name}': {} bytes do not hold {shape:?} as {}",
                data.len(),
                ttype.name()
            )));
        }
        self.i32(to_i32(shape.len(), "rank")?)?;
        self.i32(to_i32(name.len(), "name length")?)?;
        self.i32(ttype.code())?;
        for &d in shape.iter().rev() {
            self.i32(to_i32(d, "dimension")?)?;
        }
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(data)?;
        self.tensors += 1;
        Ok(())
    }

    /// Tensors written so far.
    pub fn tensor_count(&self) -> usize {
        self.tensors
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Encodes f32 values as little-endian f32 bytes.
pub fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Encodes f32 values as little-endian IEEE half floats (round to nearest even, like ggml and
/// numpy). Exact for values that came from f16.
pub fn f16_bytes(data: &[f32]) -> Vec<u8> {
    data.iter()
        .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
        .collect()
}

/// GPT-2's byte → printable-character table: byte-level BPE vocabularies (vocabulary.txt,
/// tokenizer.json) spell every byte as a printable character so that tokens are valid text.
/// Bytes that are printable Latin-1 map to themselves; the others (controls, space, 0x7f–0xa0,
/// 0xad) map in order to U+0100, U+0101, …; so space (0x20) is written 'Ġ' (U+0120).
pub fn byte_to_unicode() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[b as usize] = if printable(b) {
            char::from(b)
        } else {
            // 68 non-printable bytes → U+0100..=U+0143, all valid chars.
            let c = char::from_u32(next).unwrap_or('\u{fffd}');
            next += 1;
            c
        };
    }
    table
}

/// The inverse table: printable character → byte.
pub fn unicode_to_byte() -> HashMap<char, u8> {
    byte_to_unicode()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// Decodes one vocabulary entry to its raw bytes; `Err(c)` names the first character that is not
/// in the byte table (i.e. the entry is not a byte-level BPE token).
pub fn token_bytes(token: &str, table: &HashMap<char, u8>) -> Result<Vec<u8>, char> {
    token
        .chars()
        .map(|c| table.get(&c).copied().ok_or(c))
        .collect()
}

/// Structure of one tensor record, as read back by [`GgmlFile::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in numpy order (outermost first), i.e. the file's `ne` reversed.
    pub shape: Vec<usize>,
    pub ttype: GgmlType,
    /// Byte offset of the data in the file.
    pub offset: usize,
    pub len: usize,
}

/// A whisper ggml file read back structurally (tensor data stays in the caller's buffer).
#[derive(Debug, Clone)]
pub struct GgmlFile {
    pub hparams: Hparams,
    pub n_mel: usize,
    pub n_fft: usize,
    pub mel_filters: Vec<f32>,
    pub vocab: Vec<Vec<u8>>,
    pub tensors: Vec<TensorInfo>,
}

impl GgmlFile {
    /// Parses `buf`, checking every length; the error says what was being read and where.
    pub fn parse(buf: &[u8]) -> Result<GgmlFile, String> {
        struct Reader<'a> {
            buf: &'a [u8],
            pos: usize,
        }
        impl<'a> Reader<'a> {
            fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
                let pos = self.pos;
                let end = pos
                    .checked_add(n)
                    .filter(|&e| e <= self.buf.len())
                    .ok_or_else(|| format!("truncated at offset {pos} while reading {what}"))?;
                self.pos = end;
                Ok(&self.buf[pos..end])
            }
        }
        fn le(b: &[u8]) -> i32 {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
        fn count(v: i32, what: &str) -> Result<usize, String> {
            usize::try_from(v).map_err(|_| format!("negative {what} {v}"))
        }
        let mut r = Reader { buf, pos: 0 };
        if le(r.take(4, "magic")?) as u32 != MAGIC {
            return Err("bad magic (not a ggml file)".into());
        }
        let mut f = [0i32; 11];
        for v in f.iter_mut() {
            *v = le(r.take(4, "hyper-parameters")?);
        }
        let hparams = Hparams {
            n_vocab: f[0],
            n_audio_ctx: f[1],
            n_audio_state: f[2],
            n_audio_head: f[3],
            n_audio_layer: f[4],
            n_text_ctx: f[5],
            n_text_state: f[6],
            n_text_head: f[7],
            n_text_layer: f[8],
            n_mels: f[9],
            ftype: f[10],
        };
        let n_mel = count(le(r.take(4, "n_mel")?), "n_mel")?;
        let n_fft = count(le(r.take(4, "n_fft")?), "n_fft")?;
        let n_filters = n_mel
            .checked_mul(n_fft)
            .ok_or("mel filter size overflows")?;
        let mel_filters = r
            .take(n_filters.saturating_mul(4), "mel filters")?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let n_tokens = count(le(r.take(4, "vocabulary size")?), "vocabulary size")?;
        let mut vocab = Vec::with_capacity(n_tokens.min(buf.len() / 4));
        for i in 0..n_tokens {
            let len = count(le(r.take(4, "token length")?), "token length")?;
            vocab.push(r.take(len, &format!("token {i}"))?.to_vec());
        }
        let mut tensors = Vec::new();
        while r.pos < buf.len() {
            let n_dims = count(le(r.take(4, "tensor rank")?), "tensor rank")?;
            let name_len = count(le(r.take(4, "tensor name length")?), "name length")?;
            let code = le(r.take(4, "tensor type")?);
            let ttype =
                GgmlType::from_code(code).ok_or_else(|| format!("unknown tensor type {code}"))?;
            let mut shape = Vec::with_capacity(n_dims.min(4));
            for _ in 0..n_dims {
                shape.push(count(le(r.take(4, "tensor dims")?), "dimension")?);
            }
            shape.reverse();
            let name = String::from_utf8(r.take(name_len, "tensor name")?.to_vec())
                .map_err(|_| "tensor name is not UTF-8".to_string())?;
            let numel = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| format!("tensor '{name}': shape overflows"))?;
            let len = ttype
                .bytes_for(numel)
                .ok_or_else(|| format!("tensor '{name}': {numel} elements are not whole blocks"))?;
            let offset = r.pos;
            r.take(len, &format!("data of tensor '{name}'"))?;
            tensors.push(TensorInfo {
                name,
                shape,
                ttype,
                offset,
                len,
            });
        }
        Ok(GgmlFile {
            hparams,
            n_mel,
            n_fft,
            mel_filters,
            vocab,
            tensors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp() -> Hparams {
        Hparams {
            n_vocab: 51865,
            n_audio_ctx: 1500,
            n_audio_state: 512,
            n_audio_head: 8,
            n_audio_layer: 6,
            n_text_ctx: 448,
            n_text_state: 512,
            n_text_head: 8,
            n_text_layer: 6,
            n_mels: 80,
            ftype: 1,
        }
    }

    fn ints(bytes: &[u8]) -> Vec<i32> {
        bytes
            .chunks(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn header_bytes() {
        let mut w = GgmlWriter::new(Vec::new());
        w.header(&hp()).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 48);
        assert_eq!(&out[..4], b"lmgg"); // 0x67676d6c little-endian
        assert_eq!(
            ints(&out[4..]),
            vec![51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]
        );
    }

    #[test]
    fn sections_round_trip_through_the_parser() {
        let mut w = GgmlWriter::new(Vec::new());
        w.header(&hp()).unwrap();
        w.mel_filters(2, 3, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
            .unwrap();
        w.vocab(&[b"a".to_vec(), Vec::new(), b" the".to_vec()])
            .unwrap();
        w.tensor(
            "x.bias",
            &[4, 1],
            GgmlType::F32,
            &f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
        )
        .unwrap();
        w.tensor(
            "x.weight",
            &[2, 3, 2],
            GgmlType::F16,
            &f16_bytes(&[0.5; 12]),
        )
        .unwrap();
        assert_eq!(w.tensor_count(), 2);
        let out = w.finish().unwrap();

        let f = GgmlFile::parse(&out).unwrap();
        assert_eq!(f.hparams, hp());
        assert_eq!((f.n_mel, f.n_fft), (2, 3));
        assert_eq!(f.mel_filters, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(f.vocab, vec![b"a".to_vec(), vec![], b" the".to_vec()]);
        assert_eq!(f.tensors.len(), 2);
        assert_eq!(f.tensors[0].shape, vec![4, 1]);
        assert_eq!(f.tensors[1].name, "x.weight");
        assert_eq!(f.tensors[1].shape, vec![2, 3, 2]);
        assert_eq!(f.tensors[1].ttype, GgmlType::F16);
        assert_eq!(f.tensors[1].len, 24);
        // The record header: n_dims, name_len, ttype, then ne[0] = innermost (numpy's last) dim.
        let rec = f.tensors[1].offset - "x.weight".len() - 6 * 4;
        assert_eq!(ints(&out[rec..rec + 24]), vec![3, 8, 1, 2, 3, 2]);
    }

    #[test]
    fn tensor_size_mismatch_is_rejected() {
        let mut w = GgmlWriter::new(Vec::new());
        assert!(w.tensor("t", &[2, 2], GgmlType::F16, &[0; 6]).is_err());
        // q8_0 needs rows that are whole blocks of 32.
        assert!(w.tensor("t", &[2, 16], GgmlType::Q8_0, &[0; 34]).is_err());
        assert!(w.tensor("t", &[1, 32], GgmlType::Q8_0, &[0; 34]).is_ok());
        assert_eq!(w.tensor_count(), 1);
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let fwd = byte_to_unicode();
        let inv = unicode_to_byte();
        assert_eq!(inv.len(), 256);
        for b in 0..=255u8 {
            assert_eq!(inv[&fwd[b as usize]], b);
        }
        assert_eq!(fwd[b' ' as usize], 'Ġ');
        assert_eq!(fwd[b'\n' as usize], 'Ċ');
        assert_eq!(fwd[b'A' as usize], 'A');
        assert_eq!(fwd[0xad], 'Ń'); // the soft hyphen is not printable: last, U+0143
    }

    #[test]
    fn vocabulary_tokens_decode_to_bytes() {
        let inv = unicode_to_byte();
        assert_eq!(token_bytes("Ġthe", &inv).unwrap(), b" the");
        assert_eq!(token_bytes("", &inv).unwrap(), b"");
        // "你好" is e4 bd a0 e5 a5 bd in UTF-8; GPT-2 spells those bytes "ä½łå¥½".
        assert_eq!(token_bytes("ä½łå¥½", &inv).unwrap(), "你好".as_bytes());
        // A token cut inside a UTF-8 sequence stays raw bytes (not valid UTF-8 on its own).
        assert_eq!(token_bytes("ä½", &inv).unwrap(), vec![0xe4, 0xbd]);
        assert_eq!(token_bytes("a你", &inv), Err('你'));
    }

    #[test]
    fn parser_rejects_truncation() {
        let mut w = GgmlWriter::new(Vec::new());
        w.header(&hp()).unwrap();
        w.mel_filters(1, 1, &[1.0]).unwrap();
        w.vocab(&[b"ab".to_vec()]).unwrap();
        w.tensor("t", &[2], GgmlType::F32, &f32_bytes(&[1.0, 2.0]))
            .unwrap();
        let out = w.finish().unwrap();
        // A file cut exactly before a tensor record is a valid file with fewer tensors; every
        // other cut must be reported.
        let first_record = out.len() - (3 * 4 + 4 + 1 + 8);
        for cut in 1..out.len() {
            match GgmlFile::parse(&out[..cut]) {
                Ok(f) => assert!(cut == first_record && f.tensors.is_empty(), "cut {cut}"),
                Err(e) => assert!(e.contains("truncated"), "cut {cut}: {e}"),
            }
        }
        assert_eq!(GgmlFile::parse(&out).unwrap().tensors.len(), 1);
    }
}
