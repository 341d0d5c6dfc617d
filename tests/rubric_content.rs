//! The default rubric's 禁语 content (rubrics/12345.toml) sentence by sentence: for every phrase
//! family, what an agent says that must fire (the published phrase, in a sentence, as whisper
//! may write it), and what must not — the agent promising the opposite, relaying what a third
//! party said, quoting, the caller saying it, and generic words inside ordinary sentences.
//! Remarks after the closing line are checked too.

use callqc::asr::Segment;
use callqc::audio::Role;
use callqc::rubric::{self, CallFacts, Finding, Rubric};
use callqc::vad::SpeechRegions;

fn shipped() -> Rubric {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rubrics/12345.toml");
    rubric::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn seg(role: Role, start: f64, end: f64, text: &str) -> Segment {
    Segment {
        role,
        start,
        end,
        text: text.into(),
        confidence: 0.9,
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
    }
}

/// The 禁语 findings (items of the forbidden_phrase kind) of a call made of these segments.
fn forbidden(r: &Rubric, segments: &[Segment]) -> Vec<Finding> {
    let speech = SpeechRegions::of_stereo_spans(segments.iter().map(|s| (s.role, s.start, s.end)));
    let facts = CallFacts {
        duration_s: segments.iter().map(|s| s.end).fold(0.0, f64::max) + 1.0,
        segments,
        speech: &speech,
        tone: &[],
    };
    let (findings, _) = rubric::check(r, &facts);
    findings
        .into_iter()
        .filter(|f| f.kind == rubric::Kind::ForbiddenPhrase)
        .collect()
}

fn agent_says(r: &Rubric, text: &str) -> Vec<Finding> {
    forbidden(r, &[seg(Role::Agent, 10.0, 14.0, text)])
}

/// (item, sentences that must fire it, sentences that must fire nothing).
fn families() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "refusal",
            vec![
                "这个不归我管，你问别人去",
                "这事不关我的事",
                "你自己去找物业吧",
                "这个你自己看清楚再打过来",
                "不要问我，我也是听说的",
                "这个我们管不了",
            ],
            vec![
                "您放心，这个我们不是管不了，我马上给您转办",
                "不会让您自己去找的，我们来联系物业",
                "您不用自己去找，我们帮您派单",
                "物业说他们管不了，我帮您再反映一次",
                "社区那边告诉您不归他们管是吗？我帮您核实",
                "您说的“不关我的事”是哪位工作人员说的？",
            ],
        ),
        (
            "flat_refusal",
            vec![
                "这个我不知道",
                "我不清楚你说的这个",
                "这种情况没有办法",
                "那是不可能的",
                "不行。",
                "我不懂啊",
            ],
            vec![
                "不是没有办法，我们可以先登记",
                "不行的话我们再帮您联系街道",
                "您不清楚的地方可以随时来电",
                "您是不知道怎么办理吗？我来告诉您",
                "街道说他们也不清楚，我帮您转到住建部门",
                "您说得对，不对的地方我们会改正",
            ],
        ),
        (
            "talking_back",
            vec![
                "我不是说了吗，要带身份证",
                "刚才不是告诉你了吗",
                "你听不懂吗？要先去社区",
                "你懂还是我懂",
                "这个你错了",
            ],
            vec![
                "我再给您说一遍，您看这样清楚吗",
                "您没有错，是我们的系统问题",
                "他说你听不懂吗？您别往心里去",
            ],
        ),
        (
            "impatience",
            vec![
                "别啰嗦了，快点讲",
                "你怎么这么烦",
                "不要烦我",
                "我要下班了，你快点",
            ],
            vec!["您慢慢讲，不着急", "您不会烦到我们的，有问题随时打"],
        ),
        (
            "provoking",
            vec!["你去投诉好了", "爱办不办", "你能把我怎么样"],
            vec![
                "您可以投诉，投诉渠道是12345转3",
                "领导说你去投诉好了，这话不对，我替他向您道歉",
            ],
        ),
        (
            "insult",
            vec!["你是不是神经病", "你这人真笨", "不要脸"],
            vec!["您别急，我们没有说您", "那边说你有病吧这种话是不对的"],
        ),
        (
            "improper_promise",
            vec!["这个我保证能解决", "百分之百解决"],
            vec!["我们不保证能解决，但一定会转给主管部门"],
        ),
    ]
}

#[test]
fn every_phrase_family_fires_on_its_phrases_and_not_on_negated_or_reported_forms() {
    let r = shipped();
    for (item, fire, quiet) in families() {
        assert!(
            r.item(item).is_some(),
            "the default rubric has no item {item}"
        );
        for said in fire {
            let f = agent_says(&r, said);
            assert!(
                f.iter().any(|f| f.item_id == item),
                "{item}: \"{said}\" did not fire: {f:#?}"
            );
        }
        for said in quiet {
            let f = agent_says(&r, said);
            assert!(f.is_empty(), "{item}: \"{said}\" fired: {f:#?}");
        }
    }
}

#[test]
fn the_caller_saying_any_of_it_is_not_the_agents_fault() {
    let r = shipped();
    for (_, fire, _) in families() {
        for said in fire {
            let f = forbidden(&r, &[seg(Role::Caller, 3.0, 6.0, said)]);
            assert!(f.is_empty(), "caller: \"{said}\" fired: {f:#?}");
        }
    }
}

#[test]
fn generic_words_count_only_as_a_curt_reply() {
    let r = shipped();
    for curt in ["不行", "不行！", "不知道。", "我不懂", "不对啊", "不可以的"] {
        let f = forbidden(
            &r,
            &[
                seg(Role::Caller, 0.0, 3.0, "能不能帮我催一下？"),
                seg(Role::Agent, 3.5, 4.5, curt),
            ],
        );
        assert_eq!(f.len(), 1, "\"{curt}\": {f:#?}");
        assert_eq!(f[0].item_id, "flat_refusal");
        assert!(f[0].evidence.contains("curt reply"), "{}", f[0].evidence);
    }
    for sentence in [
        "不行的话您再打过来",
        "这个不对的地方我帮您改一下",
        "您不懂的可以再问我",
        "喂，您好，请问还在吗",
    ] {
        let f = agent_says(&r, sentence);
        assert!(f.is_empty(), "\"{sentence}\" fired: {f:#?}");
    }
}

#[test]
fn remarks_after_the_closing_line_are_checked() {
    let r = shipped();
    let call = [
        seg(Role::Agent, 0.5, 5.0, "您好，12345热线，工号2051为您服务"),
        seg(Role::Caller, 5.5, 12.0, "我家楼下烧烤店天天吵到半夜"),
        seg(
            Role::Agent,
            12.5,
            20.0,
            "好的，已经为您登记，还有其他问题吗？",
        ),
        seg(Role::Caller, 20.5, 22.0, "没有了"),
        seg(Role::Agent, 22.5, 24.0, "感谢您的来电，再见"),
        seg(Role::Agent, 26.0, 27.5, "神经病，天天打"),
    ];
    let f = forbidden(&r, &call);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].item_id, "insult");
    assert_eq!(f[0].start, 26.0);
}
