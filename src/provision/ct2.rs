//! Reader for CTranslate2's `model.bin` (binary version 6), the format faster-whisper ships.
//!
//! Layout (little-endian, no padding):
//! `u32 version`, string spec name, `u32 revision`, `u32 n_vars`, then per variable: string name,
//! `u8 ndim`, `ndim × u32` dims, `u8 dtype`, `u32 nbytes`, raw row-major data; then `u32 n_aliases`
//! and (alias, target) string pairs. A string is `u16 len` (counting a trailing NUL) + bytes.
//!
//! The whole file is read into memory once (base is 145 MB) and variables are views into that
//! buffer; [`Ct2Model::tensor`] decodes one variable at a time into f32, undoing CTranslate2's
//! integer quantisation (`…/weight` as int8/int16 plus `…/weight_scale`: weight = q / scale).
//!
//! Every length taken from the file is checked against the buffer, so a truncated or corrupted
//! download yields a [`ProvisionError`] that names the offset, never a panic.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ProvisionError;

/// The only binary version this reader understands (the one CTranslate2 3.x/4.x writes).
pub const SUPPORTED_VERSION: u32 = 6;

/// Element type of a stored variable, with CTranslate2's numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    /// Decodes CTranslate2's dtype byte.
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// The numeric code CTranslate2 uses for this dtype.
    pub fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::BF16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// CTranslate2's name for the type, as used in its `compute_type` strings.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }

    /// Whether values of this type are quantised integers (and need a scale to become weights).
    pub fn is_integer(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32)
    }
}

/// One stored variable: its metadata and where its bytes lie in the file buffer.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    data: Range<usize>,
}

impl Variable {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A decoded tensor: row-major f32 data with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Rows `range` of the first dimension (used to split CTranslate2's fused q;k;v projections).
    /// Returns `None` when the range does not fit the tensor.
    pub fn rows(&self, range: Range<usize>) -> Option<Tensor> {
        let first = *self.shape.first()?;
        if range.start > range.end || range.end > first {
            return None;
        }
        let row_len: usize = self.shape[1..].iter().product();
        let data = self
            .data
            .get(range.start * row_len..range.end * row_len)?
            .to_vec();
        let mut shape = self.shape.clone();
        shape[0] = range.end - range.start;
        Some(Tensor { shape, data })
    }
}

/// A parsed CTranslate2 model file.
#[derive(Debug)]
pub struct Ct2Model {
    path: PathBuf,
    buf: Vec<u8>,
    /// Spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision (3 for current whisper conversions).
    pub revision: u32,
    variables: Vec<Variable>,
    index: HashMap<String, usize>,
    aliases: HashMap<String, String>,
}

/// Bounds-checked little-endian reader over the file buffer. `what` callbacks describe the field
/// being read, for the error message only (so they cost nothing on the happy path).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], ProvisionError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        match end {
            Some(end) => {
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            None => Err(ProvisionError::Truncated {
                path: self.path.to_path_buf(),
                offset: self.pos,
                what: what(),
                len: self.buf.len(),
            }),
        }
    }

    fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, ProvisionError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16, ProvisionError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, ProvisionError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A CTranslate2 string: `u16` length that counts a trailing NUL, then the bytes.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, ProvisionError> {
        let start = self.pos;
        let len = self.u16(what)? as usize;
        let mut bytes = self.take(len, what)?;
        if let [head @ .., 0] = bytes {
            bytes = head;
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| ProvisionError::Malformed {
            path: self.path.to_path_buf(),
            message: format!("{} at offset {start} is not valid UTF-8", what()),
        })
    }
}

impl Ct2Model {
    /// Reads and parses `path`.
    pub fn open(path: &Path) -> Result<Ct2Model, ProvisionError> {
        let buf = std::fs::read(path).map_err(|e| ProvisionError::io(path, "cannot read", e))?;
        Ct2Model::from_bytes(buf, path)
    }

    /// Parses an in-memory `model.bin`; `path` is only used in error messages.
    pub fn from_bytes(buf: Vec<u8>, path: impl Into<PathBuf>) -> Result<Ct2Model, ProvisionError> {
        let path = path.into();
        let (spec, revision, variables, aliases) = parse(&buf, &path)?;
        let mut index = HashMap::with_capacity(variables.len());
        for (i, v) in variables.iter().enumerate() {
            if index.insert(v.name.clone(), i).is_some() {
                return Err(ProvisionError::Malformed {
                    path,
                    message: format!("variable '{}' is stored twice", v.name),
                });
            }
        }
        Ok(Ct2Model {
            path,
            buf,
            spec,
            revision,
            variables,
            index,
            aliases,
        })
    }

    /// The file this model was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Variables in file order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// Alias → target map (e.g. `decoder/projection/weight` → `decoder/embeddings/weight`).
    pub fn aliases(&self) -> &HashMap<String, String> {
        &self.aliases
    }

    /// Looks a variable up by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        let mut name = name;
        // Aliases may in principle chain; a bound keeps a cyclic file from looping forever.
        for _ in 0..8 {
            if let Some(&i) = self.index.get(name) {
                return self.variables.get(i);
            }
            name = self.aliases.get(name)?;
        }
        None
    }

    /// Whether `name` (or an alias of that name) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The raw little-endian bytes of a variable.
    pub fn raw(&self, var: &Variable) -> &[u8] {
        // Ranges were validated against this very buffer while parsing; `get` keeps a variable
        // from another model from panicking.
        self.buf.get(var.data.clone()).unwrap_or(&[])
    }

    /// Reads an integer scalar such as `encoder/num_heads`; `None` if absent or not an integer
    /// scalar.
    pub fn scalar_i64(&self, name: &str) -> Option<i64> {
        let var = self.get(name)?;
        if var.numel() != 1 || !var.dtype.is_integer() {
            return None;
        }
        decode_f32(var.dtype, self.raw(var))
            .first()
            .map(|&v| v as i64)
    }

    fn missing(&self, name: &str) -> ProvisionError {
        ProvisionError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        }
    }

    fn bad(&self, name: &str, message: String) -> ProvisionError {
        ProvisionError::BadTensor {
            path: self.path.clone(),
            name: name.to_string(),
            message,
        }
    }

    /// Decodes variable `name` to f32. Integer variables must come with a `{name}_scale`
    /// variable (one value per row, or a single one) and are dequantised as `q / scale`, which
    /// is how CTranslate2 stores int8/int16 weights (scale = 127 / max|row| for int8).
    pub fn tensor(&self, name: &str) -> Result<Tensor, ProvisionError> {
        let var = self.get(name).ok_or_else(|| self.missing(name))?;
        let mut data = decode_f32(var.dtype, self.raw(var));
        if var.dtype.is_integer() {
            let scale_name = format!("{name}_scale");
            let scale_var = self.get(&scale_name).ok_or_else(|| {
                self.bad(
                    name,
                    format!(
                        "is stored as {} but '{scale_name}' is missing, so it cannot be dequantised",
                        var.dtype.name()
                    ),
                )
            })?;
            if scale_var.dtype.is_integer() {
                return Err(self.bad(
                    &scale_name,
                    "a quantisation scale must be a float type".into(),
                ));
            }
            let scale = decode_f32(scale_var.dtype, self.raw(scale_var));
            let rows = var.shape.first().copied().unwrap_or(1);
            if scale.len() == 1 {
                data.iter_mut().for_each(|x| *x /= scale[0]);
            } else if scale.len() == rows && rows > 0 {
                let row_len = (data.len() / rows).max(1);
                for (row, s) in data.chunks_mut(row_len).zip(&scale) {
                    row.iter_mut().for_each(|x| *x /= *s);
                }
            } else {
                return Err(self.bad(
                    &scale_name,
                    format!(
                        "has {} values but '{name}' has {rows} rows (expected one scale per row)",
                        scale.len()
                    ),
                ));
            }
        }
        Ok(Tensor {
            shape: var.shape.clone(),
            data,
        })
    }

    /// CTranslate2-style description of how the weights are stored, e.g. `float16` or
    /// `int8_float16` (int8 matrices with float16 biases), judged from the first encoder layer.
    pub fn weight_dtype_name(&self) -> String {
        let probe = "encoder/layer_0/self_attention/linear_0";
        let Some(weight) = self.get(&format!("{probe}/weight")) else {
            return "unknown".to_string();
        };
        match (
            weight.dtype.is_integer(),
            self.get(&format!("{probe}/bias")),
        ) {
            (true, Some(bias)) => format!("{}_{}", weight.dtype.name(), bias.dtype.name()),
            _ => weight.dtype.name().to_string(),
        }
    }
}

type Parsed = (String, u32, Vec<Variable>, HashMap<String, String>);

fn parse(buf: &[u8], path: &Path) -> Result<Parsed, ProvisionError> {
    let mut c = Cursor { buf, pos: 0, path };
    let version = c.u32(&|| "the binary version".into())?;
    if version != SUPPORTED_VERSION {
        return Err(ProvisionError::Malformed {
            path: path.to_path_buf(),
            message: format!(
                "unsupported CTranslate2 model.bin version {version} (this reader handles \
                 version {SUPPORTED_VERSION}); is this a CTranslate2 model?"
            ),
        });
    }
    let spec = c.string(&|| "the spec name".into())?;
    let revision = c.u32(&|| "the spec revision".into())?;
    let n_vars = c.u32(&|| "the variable count".into())?;

    // Do not trust n_vars for the allocation: each variable needs at least 9 bytes.
    let mut variables = Vec::with_capacity((n_vars as usize).min(buf.len() / 9));
    for i in 0..n_vars {
        let name = c.string(&|| format!("the name of variable #{i}"))?;
        let what = |field: &'static str| {
            let name = name.clone();
            move || format!("{field} of variable '{name}'")
        };
        let ndim = c.u8(&what("the rank"))?;
        let mut shape = Vec::with_capacity(ndim as usize);
        for _ in 0..ndim {
            shape.push(c.u32(&what("a dimension"))? as usize);
        }
        let code = c.u8(&what("the dtype"))?;
        let dtype = DType::from_code(code).ok_or_else(|| ProvisionError::UnknownDtype {
            path: path.to_path_buf(),
            variable: name.clone(),
            code,
        })?;
        let nbytes = c.u32(&what("the byte count"))? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(nbytes) {
            return Err(ProvisionError::Malformed {
                path: path.to_path_buf(),
                message: format!(
                    "variable '{name}' declares {nbytes} bytes but shape {shape:?} of {} needs {}",
                    dtype.name(),
                    expected.map_or("more than usize::MAX".to_string(), |n| n.to_string())
                ),
            });
        }
        let start = c.pos;
        c.take(nbytes, &what("the data"))?;
        variables.push(Variable {
            name,
            shape,
            dtype,
            data: start..start + nbytes,
        });
    }

    let n_aliases = c.u32(&|| "the alias count".into())?;
    let mut aliases = HashMap::new();
    for i in 0..n_aliases {
        let alias = c.string(&|| format!("alias #{i}"))?;
        let target = c.string(&|| format!("the target of alias '{alias}'"))?;
        aliases.insert(alias, target);
    }

    // Trailing bytes mean the file is not what its headers say (e.g. a part concatenated twice).
    if c.pos != buf.len() {
        return Err(ProvisionError::Malformed {
            path: path.to_path_buf(),
            message: format!(
                "{} unexpected bytes after the last alias at offset {}",
                buf.len() - c.pos,
                c.pos
            ),
        });
    }
    Ok((spec, revision, variables, aliases))
}

/// Converts raw little-endian values of `dtype` to f32 (integers by value, unscaled).
fn decode_f32(dtype: DType, raw: &[u8]) -> Vec<f32> {
    match dtype {
        DType::F32 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DType::F16 => raw
            .chunks_exact(2)
            .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        DType::BF16 => raw
            .chunks_exact(2)
            .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        DType::I8 => raw.iter().map(|&b| b as i8 as f32).collect(),
        DType::I16 => raw
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
            .collect(),
        DType::I32 => raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
    }
}

/// Builds CTranslate2 `model.bin` bytes in memory, for tests of this module and of the converter.
#[cfg(test)]
pub(crate) mod testutil {
    use super::DType;

    /// Encoder for hand-built model files.
    #[derive(Default)]
    pub struct ModelBuilder {
        vars: Vec<(String, Vec<u32>, DType, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    impl ModelBuilder {
        pub fn new() -> Self {
            Self::default()
        }

        pub fn raw(mut self, name: &str, shape: &[u32], dtype: DType, data: Vec<u8>) -> Self {
            self.vars
                .push((name.to_string(), shape.to_vec(), dtype, data));
            self
        }

        pub fn f32(self, name: &str, shape: &[u32], values: &[f32]) -> Self {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.raw(name, shape, DType::F32, data)
        }

        pub fn f16(self, name: &str, shape: &[u32], values: &[f32]) -> Self {
            let data = values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
                .collect();
            self.raw(name, shape, DType::F16, data)
        }

        pub fn i8(self, name: &str, shape: &[u32], values: &[i8]) -> Self {
            let data = values.iter().map(|&v| v as u8).collect();
            self.raw(name, shape, DType::I8, data)
        }

        /// Drops a variable added earlier (to build broken or variant models).
        pub fn without(mut self, name: &str) -> Self {
            self.vars.retain(|v| v.0 != name);
            self
        }

        pub fn alias(mut self, alias: &str, target: &str) -> Self {
            self.aliases.push((alias.to_string(), target.to_string()));
            self
        }

        pub fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&6u32.to_le_bytes());
            put_string(&mut out, "WhisperSpec");
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
            for (name, shape, dtype, data) in &self.vars {
                put_string(&mut out, name);
                out.push(shape.len() as u8);
                for d in shape {
                    out.extend_from_slice(&d.to_le_bytes());
                }
                out.push(dtype.code());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(data);
            }
            out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                put_string(&mut out, a);
                put_string(&mut out, t);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::ModelBuilder;
    use super::*;

    fn sample() -> Vec<u8> {
        ModelBuilder::new()
            .raw(
                "encoder/num_heads",
                &[],
                DType::I16,
                8i16.to_le_bytes().to_vec(),
            )
            .f16("a/weight", &[2, 3], &[1.0, -2.0, 0.5, 65504.0, -0.0, 0.333])
            .f32("a/bias", &[2], &[0.25, -7.5])
            .i8("q/weight", &[2, 2], &[127, -64, 10, -127])
            .f32("q/weight_scale", &[2], &[127.0, 12.7])
            .alias("b/weight", "a/weight")
            .build()
    }

    #[test]
    fn reads_f16_f32_and_scalars() {
        let m = Ct2Model::from_bytes(sample(), "mem/model.bin").unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.variables().len(), 5);
        let a = m.tensor("a/weight").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(&a.data[..5], &[1.0, -2.0, 0.5, 65504.0, -0.0]);
        assert!(a.data[4].is_sign_negative());
        assert_eq!(a.data[5], half::f16::from_f32(0.333).to_f32());
        assert_eq!(m.tensor("a/bias").unwrap().data, vec![0.25, -7.5]);
        assert_eq!(m.scalar_i64("encoder/num_heads"), Some(8));
        assert_eq!(m.scalar_i64("a/bias"), None);
    }

    #[test]
    fn dequantises_int8_with_row_scales() {
        let m = Ct2Model::from_bytes(sample(), "mem/model.bin").unwrap();
        let q = m.tensor("q/weight").unwrap();
        assert_eq!(q.shape, vec![2, 2]);
        assert_eq!(q.data[0], 1.0);
        assert_eq!(q.data[1], -64.0 / 127.0);
        assert_eq!(q.data[2], 10.0 / 12.7);
        assert_eq!(q.data[3], -127.0 / 12.7);
    }

    #[test]
    fn int8_without_scale_is_an_error() {
        let bytes = ModelBuilder::new().i8("q/weight", &[1, 2], &[1, 2]).build();
        let m = Ct2Model::from_bytes(bytes, "mem/model.bin").unwrap();
        let err = m.tensor("q/weight").unwrap_err().to_string();
        assert!(err.contains("q/weight_scale"), "{err}");
    }

    #[test]
    fn follows_aliases() {
        let m = Ct2Model::from_bytes(sample(), "mem/model.bin").unwrap();
        assert_eq!(
            m.aliases().get("b/weight").map(String::as_str),
            Some("a/weight")
        );
        assert_eq!(m.tensor("b/weight").unwrap(), m.tensor("a/weight").unwrap());
        assert!(m.contains("b/weight"));
        assert!(!m.contains("c/weight"));
        let err = m.tensor("c/weight").unwrap_err().to_string();
        assert!(err.contains("missing tensor 'c/weight'"), "{err}");
    }

    #[test]
    fn bf16_and_int16_scalar_scale() {
        let bf = half::bf16::from_f32(3.5).to_bits().to_le_bytes().to_vec();
        let bytes = ModelBuilder::new()
            .raw("x", &[1], DType::BF16, bf)
            .raw(
                "w/weight",
                &[1, 2],
                DType::I16,
                [1000i16, -500]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            )
            .f32("w/weight_scale", &[], &[1000.0])
            .build();
        let m = Ct2Model::from_bytes(bytes, "mem/model.bin").unwrap();
        assert_eq!(m.tensor("x").unwrap().data, vec![3.5]);
        assert_eq!(m.tensor("w/weight").unwrap().data, vec![1.0, -0.5]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for cut in 0..full.len() {
            let err = Ct2Model::from_bytes(full[..cut].to_vec(), "mem/model.bin").unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, ProvisionError::Truncated { offset, .. } if offset <= cut),
                "cut at {cut}: {msg}"
            );
            assert!(
                msg.contains("mem/model.bin") && msg.contains("truncated"),
                "{msg}"
            );
        }
        Ct2Model::from_bytes(full, "mem/model.bin").unwrap();
    }

    #[test]
    fn rejects_bad_headers() {
        let mut bytes = sample();
        bytes[0] = 5;
        let err = Ct2Model::from_bytes(bytes, "m.bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 5"), "{err}");

        let bytes = ModelBuilder::new()
            .raw("x", &[2], DType::F32, vec![0; 4])
            .build();
        let err = Ct2Model::from_bytes(bytes, "m.bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 4 bytes"), "{err}");

        // Offset of the dtype byte of the first variable "x" with one dimension.
        let dtype_at = 4 + (2 + 12) + 4 + 4 + (2 + 2) + 1 + 4;
        let mut bytes = ModelBuilder::new().f32("x", &[1], &[1.0]).build();
        assert_eq!(bytes[dtype_at], 0);
        bytes[dtype_at] = 9;
        let err = Ct2Model::from_bytes(bytes, "m.bin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown dtype code 9") && err.contains("'x'"),
            "{err}"
        );

        let mut bytes = sample();
        bytes.push(0);
        let err = Ct2Model::from_bytes(bytes, "m.bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 unexpected bytes"), "{err}");
    }

    #[test]
    fn huge_dimensions_do_not_overflow() {
        let mut bytes = ModelBuilder::new().f32("x", &[1, 1], &[1.0]).build();
        // Patch both dims to u32::MAX: the byte count check must fail cleanly.
        let dims_at = 4 + (2 + 12) + 4 + 4 + (2 + 2) + 1;
        bytes[dims_at..dims_at + 8].fill(0xff);
        let err = Ct2Model::from_bytes(bytes, "m.bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 4 bytes"), "{err}");
    }

    #[test]
    fn tensor_rows() {
        let t = Tensor {
            shape: vec![3, 2],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(t.rows(1..3).unwrap().data, vec![3.0, 4.0, 5.0, 6.0]);
        assert_eq!(t.rows(1..3).unwrap().shape, vec![2, 2]);
        assert!(t.rows(2..4).is_none());
    }
}
