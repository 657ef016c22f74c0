"""LocalAgreement-2 and tokenisation, without a model."""

from __future__ import annotations

from transcription import chinese
from transcription.agreement import LocalAgreement, Token, join, tokenize
from transcription.stream import ZH_PROMPT, drop_echo


def hyp(text: str, start: float = 0.0, step: float = 0.5) -> list[Token]:
    return tokenize(
        (w, start + i * step, start + (i + 1) * step) for i, w in enumerate(text.split())
    )


def test_nothing_is_committed_from_a_single_hypothesis() -> None:
    agreement = LocalAgreement()
    assert agreement.insert(hyp("the court will")) == []
    assert join(agreement.interim) == "the court will"


def test_the_common_prefix_of_two_hypotheses_is_committed() -> None:
    agreement = LocalAgreement()
    agreement.insert(hyp("the court will out"))
    committed = agreement.insert(hyp("The court will now hear"))
    assert join(committed) == "The court will"
    assert join(agreement.interim) == "now hear"


def test_committed_text_is_not_committed_twice() -> None:
    agreement = LocalAgreement()
    agreement.insert(hyp("the court will"))
    agreement.insert(hyp("the court will now"))
    assert join(agreement.insert(hyp("the court will now hear"))) == "now"
    assert join(agreement.insert(hyp("the court will now hear the case"))) == "hear"
    assert join(agreement.flush()) == "the case"
    assert agreement.interim == []


def test_an_overlap_with_committed_words_is_dropped_after_a_trim() -> None:
    agreement = LocalAgreement()
    agreement.insert(hyp("please state your name"))
    agreement.insert(hyp("please state your name for"))
    # the buffer was trimmed: the new hypothesis repeats the last committed words
    committed = agreement.insert(hyp("your name for the record", start=1.0))
    assert join(committed) == "for"


def test_force_commits_interim_tokens_up_to_a_time() -> None:
    agreement = LocalAgreement()
    agreement.insert(hyp("a b c d"))
    assert join(agreement.force(1.0)) == "a b"
    assert join(agreement.interim) == "c d"


def test_chinese_is_split_into_characters_with_punctuation_attached() -> None:
    tokens = tokenize([("今天开庭，", 0.0, 1.0), ("请", 1.0, 1.2), ("。", 1.2, 1.3)])
    assert [t.text for t in tokens] == ["今", "天", "开", "庭，", "请。"]
    assert tokens[1].start == 0.25
    assert join(tokens) == "今天开庭，请。"


def test_mixed_text_is_joined_with_spaces_only_between_latin_words() -> None:
    tokens = tokenize([("案号", 0, 1), ("2024", 1, 2), ("Beijing", 2, 3), ("法院", 3, 4)])
    assert join(tokens) == "案号2024 Beijing法院"


def test_agreement_ignores_case_and_punctuation() -> None:
    agreement = LocalAgreement()
    agreement.insert(hyp("hello world"))
    assert join(agreement.insert(hyp("Hello, world."))) == "Hello, world."


def test_chinese_output_is_simplified_with_full_width_punctuation() -> None:
    assert (
        chinese.normalise("請原告陳述訴訟請求.被告是否同意?")
        == "请原告陈述诉讼请求。被告是否同意？"
    )
    assert chinese.normalise("金額 3.5 萬元, 10:30開庭") == "金额 3.5 万元，10:30开庭"
    assert chinese.normalise("The court, please.") == "The court, please."


def test_a_read_back_prompt_is_dropped() -> None:
    tokens = tokenize([("以下是普通话的句子，", 0.0, 1.0), ("请原告", 1.0, 2.0)])
    assert join(drop_echo(tokens, ZH_PROMPT)) == "请原告"
    assert join(drop_echo(tokenize([("普通", 0.0, 1.0)]), ZH_PROMPT)) == "普通"
