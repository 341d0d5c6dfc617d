//! The period report as one offline HTML page: per-agent scores and their trend, the score
//! distribution, top deductions by item and dimension, tone warnings over time, rule precision
//! from reviews, calls inspected per day. Charts are inline SVG; labels are Chinese.

use super::figures::{BUCKETS, ReportFigures};
use super::html::{esc, page};
use super::svg;

/// Precision below this is marked on the page (the CLI's `rules stats` default).
pub const PRECISION_FLAG: f64 = 0.8;

pub fn report_page(f: &ReportFigures) -> String {
    let span = match (&f.period.from, &f.period.to) {
        (None, None) => "全部".to_string(),
        (from, to) => format!(
            "{} 至 {}",
            from.as_deref().map_or("最早", |s| &s[..10.min(s.len())]),
            to.as_deref().map_or("最新", |s| &s[..10.min(s.len())])
        ),
    };
    let mut b = format!(
        "<h1>质检报告</h1><p class=\"meta\">时间范围：{} · 质检通话 {} 通（其中实时 {} 通）· 平均分 {}</p>",
        esc(&span),
        f.calls,
        f.live_calls,
        f.mean_score.map_or("-".into(), |m| format!("{m:.1}"))
    );
    b += "<h2>每日质检通话量</h2>";
    let per_day: Vec<(String, f64)> = f
        .days
        .iter()
        .zip(&f.calls_per_day)
        .map(|(d, n)| (d[5..].to_string(), *n as f64))
        .collect();
    b += &svg::bars("每日质检通话量", &per_day, "#4a7fb5", " 通");
    b += "<h2>得分分布</h2>";
    let dist: Vec<(String, f64)> = (0..BUCKETS)
        .map(|i| {
            let lo = i * 100 / BUCKETS;
            let label = if i == BUCKETS - 1 {
                format!("{lo}–100")
            } else {
                format!("{lo}–{}", lo + 100 / BUCKETS - 1)
            };
            (label, f.score_distribution[i] as f64)
        })
        .collect();
    b += &svg::bars("得分分布", &dist, "#6a9f58", " 通");
    b += "<h2>坐席得分与趋势</h2><table><tr><th>坐席</th><th class=\"num\">通话</th><th class=\"num\">平均分</th><th class=\"num\">机器评分</th><th class=\"num\">一票否决</th><th class=\"num\">扣分项</th><th>每日平均分趋势</th></tr>";
    for a in &f.agents {
        b += &format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&a.agent_id),
            a.calls,
            a.mean_score,
            a.mean_machine_score,
            a.vetoed,
            a.findings,
            svg::sparkline(&a.trend)
        );
    }
    b += "</table>";
    b += "<h2>主要扣分项</h2>";
    let items: Vec<(String, f64)> = f
        .top_items
        .iter()
        .map(|d| (format!("{}（{} 次）", d.description, d.findings), d.points))
        .collect();
    b += &if items.is_empty() {
        "<p>无</p>".to_string()
    } else {
        svg::ranking("主要扣分项（扣分合计）", &items, "#d9822b")
    };
    b += "<h2>按维度扣分</h2>";
    let dims: Vec<(String, f64)> = f
        .top_dimensions
        .iter()
        .map(|d| (format!("{}（{} 次）", d.key, d.findings), d.points))
        .collect();
    b += &if dims.is_empty() {
        "<p>无</p>".to_string()
    } else {
        svg::ranking("按维度扣分", &dims, "#b5534a")
    };
    b += "<h2>语气提醒趋势</h2>";
    let tone_live: Vec<(String, f64)> = f
        .tone
        .iter()
        .map(|t| (t.day[5..].to_string(), t.live_warnings as f64))
        .collect();
    let tone_found: Vec<(String, f64)> = f
        .tone
        .iter()
        .map(|t| (t.day[5..].to_string(), t.findings as f64))
        .collect();
    b += "<p class=\"meta\">实时推送给坐席的语气提醒（每日）</p>";
    b += &svg::bars("实时语气提醒", &tone_live, "#8e5bb5", " 次");
    b += "<p class=\"meta\">质检发现的语气问题（每日，不含已驳回）</p>";
    b += &svg::bars("语气问题", &tone_found, "#b55b8e", " 次");
    b += &format!(
        "<h2>规则准确率（复核结果）</h2><p class=\"meta\">准确率 = 确认 ÷ 已复核；低于 {:.0}% 标红。</p>",
        PRECISION_FLAG * 100.0
    );
    b += "<table><tr><th>项目</th><th>维度</th><th class=\"num\">命中</th><th class=\"num\">已复核</th><th class=\"num\">确认</th><th class=\"num\">驳回</th><th class=\"num\">准确率</th><th class=\"num\">申诉</th><th class=\"num\">申诉成立</th></tr>";
    for r in &f.rules {
        let low = r.precision.is_some_and(|p| p < PRECISION_FLAG);
        b += &format!(
            "<tr><td>{}<br><span class=\"meta\">{}</span></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.description),
            esc(&r.item_id),
            esc(&r.dimension),
            r.findings,
            r.reviewed,
            r.confirmed,
            r.dismissed,
            if low { " low" } else { "" },
            r.precision
                .map_or("-".into(), |p| format!("{:.0}%", p * 100.0)),
            r.appeals,
            r.appeals_upheld
        );
    }
    b += "</table><p class=\"meta\">由 callqc 生成；离线可看。</p>";
    page("质检报告", &b)
}
