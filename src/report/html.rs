//! The pieces every page callqc writes shares: escaping (all text from calls goes through
//! [`esc`] — transcripts are data, never markup) and one small stylesheet.

/// Text for HTML content or a quoted attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds as m:ss.s.
pub fn clock(t: f64) -> String {
    let t = t.max(0.0);
    let m = (t / 60.0).floor();
    format!("{}:{:04.1}", m as u64, t - m * 60.0)
}

pub const STYLE: &str = r#"
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 24px auto; max-width: 1100px; color: #1d2733; background: #fafbfc; line-height: 1.5; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #dde3ea; }
.meta { color: #5b6b7c; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; background: #fff; }
th, td { border: 1px solid #dde3ea; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.hit td { background: #fff4e5; }
tr.dismissed td { color: #8a96a3; text-decoration: line-through; }
.tag { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; background: #e8eef5; margin-right: 4px; }
.tag.veto { background: #fde2e1; color: #a11; } .tag.item { background: #ffe8c2; }
.role-agent { color: #0b5cad; } .role-caller { color: #6a4b00; }
mark { background: #ffd27a; }
.low { color: #b00020; font-weight: 600; }
svg text { font-family: inherit; }
.score { font-size: 28px; font-weight: 700; }
"#;

/// A whole page: title, style, body.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; media-src data:; img-src data:\">\
         <title>{}</title><style>{}</style></head><body>\n{}\n</body></html>\n",
        esc(title),
        STYLE,
        body
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_transcripts_stays_text() {
        assert_eq!(
            super::esc("<script>alert('x')</script>&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        assert_eq!(super::clock(75.25), "1:15.2");
    }
}
