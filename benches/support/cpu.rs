//! The CPU and its SIMD flags, printed with every benchmark table: figures depend on them.

/// (model name, the SIMD flags that matter to whisper.cpp and ONNX Runtime).
pub fn cpu() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let simd: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| {
            [
                "sse4_2",
                "avx",
                "avx2",
                "fma",
                "f16c",
                "avx512f",
                "avx512bw",
                "avx512_vnni",
                "avx_vnni",
                "amx_tile",
            ]
            .contains(f)
        })
        .collect();
    (field("model name"), simd.join(" "))
}
