from __future__ import annotations

import pickle
import time

import pytest

from tgstream.steps.spam import (
    SpamConfig,
    SpamHistory,
    SpamScorer,
    SpamVerdict,
    count_links,
    normalise,
    strip_code,
)

USER = 424242
OTHER = 777

LONG_THOUGHT = (
    "I've been thinking about what you said yesterday about moving to another city. Honestly, part of "
    "me wants to go, because the job offer is good and I'd be closer to my sister, but I'm scared of "
    "starting over: a new flat, no friends, and a language I only half speak. When I moved here eight "
    "years ago it took me almost two years to feel at home. I remember eating dinner alone on the "
    "balcony every evening, pretending I enjoyed the quiet. Then I joined that climbing gym, met Ana, "
    "and suddenly weekends were full. I don't know if I have the energy to do all of that again.\n\n"
    "On the other hand, staying feels like choosing comfort over growth. My manager keeps hinting that "
    "there is no promotion coming, the rent went up again in March, and most of my friends have "
    "already left or have kids now, so we barely see each other. Maybe the life I'm afraid to lose "
    "is already gone and I'm just holding on to a memory of it.\n\n"
    "My mother says I should follow the money, my sister says I should follow my heart, and my cat "
    "says nothing useful at all. What would you weigh most heavily if you were me? I'm not asking you "
    "to decide for me, I just want someone to think it through with, slowly, without judging. "
    "Sorry this got so long; it has been on my mind all week and writing it down already helps a bit. "
    "If you want, ask me questions, even uncomfortable ones. I promise I will answer honestly, even if "
    "the honest answer is that I'm mostly afraid of being lonely again in a place where nobody knows "
    "my name, my favourite bakery, or the way I take my coffee."
)
LONGER_THOUGHT = (
    LONG_THOUGHT
    + "\n\nP.S. Some practical details, in case they matter. The new job would start in September, "
    "the salary is about thirty percent higher, and they offered to pay for two months of temporary "
    "housing. The office is hybrid, three days on site, which is less than what I do now. The city is "
    "smaller, rainier, and closer to the sea; I could finally learn to sail like I always said I "
    "would. My sister has two kids I have only met a handful of times, and she keeps sending me photos "
    "of them at the beach with captions like 'your spot is still free'. Meanwhile, here, my lease ends "
    "in August, so if I stay I need to sign for another year before the end of June. I made a list of "
    "pros and cons twice and both times the lists were the same length, which was not helpful at all. "
    "A friend suggested flipping a coin and noticing which side I secretly hope for. I tried it. I "
    "hoped for heads, which meant going, and then I felt guilty about hoping for it. Is that silly? "
    "I also worry about my dad; he is getting older and lives twenty minutes from me now. He says he "
    "will be fine and that I should not build my life around him, but he would say that either way."
)
ORDINARY = [
    "hi!",
    "OK",
    "LOL",
    "hey, how are you today?",
    "I'm fine, thanks. Just tired after work 😴",
    'he said "hi" and then just walked away',
    "She's like \"I don't care\" but she obviously does 🙄",
    "It's John's birthday tomorrow, what should I get him?",
    "😂😂😂😂😂😂😂😂😂😂😂😂",
    "❤️❤️❤️ thank you so much 🥰🥰🥰",
    "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉 we did it!!!",
    "Nooooooooo way!!!",
    "hahahahahahahaha that's hilarious",
    "Can you explain what a `<script>` tag does and why XSS happens?",
    "Why do people say never to use javascript: URLs in an href? Is it a security thing?",
    "Is this safe? <script>alert('hi')</script> — my teacher said it's an XSS example",
    "```python\ndef greet(name: str) -> str:\n    return f\"Hello, {name}!\"\n\nprint(greet('world'))\n```",
    "My config looks like this:\n```yaml\nKAFKA_BOOTSTRAP: 'localhost:9092'\nTOPIC: \"events\"\n"
    "URL: http://localhost:8080 http://127.0.0.1:9000 https://example.com/api\n```\nwhat's wrong?",
    "```\n==========================================\nERROR: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "==========================================\n```\nany idea what this log means?",
    "Use `SELECT * FROM USERS WHERE ID = 1` and tell me what you get",
    "Look at this article: https://en.wikipedia.org/wiki/Stream_processing",
    "I found a cool recipe https://www.bbc.co.uk/food/recipes/easy_pancakes_84393 want to try it?",
    "Join our group t.me/bookclub_london if you like reading :)",
    "My files are main.py and utils.js, and the README.md explains setup",
    "NASA and ESA both launched missions this year, and the JWST photos are amazing",
    "I work at IBM now, the HR team is nice, but my PM is strict about OKRs",
    "Привет! Как дела? Я сегодня весь день гулял по парку с собакой.",
    "Да, я тоже так думаю. Давай завтра созвонимся?",
    "今日はとても楽しかったです。また明日話しましょう！",
    "我今天去了图书馆，借了三本书，你最近在读什么？",
    "哈哈哈哈哈哈哈哈 太好笑了",
    "مرحبا، كيف حالك اليوم؟ أتمنى أن يكون يومك جميلا",
    "שלום! מה שלומך? אני מתגעגע אליך",
    "Ça va ? J'ai vu « Amélie » hier soir, c'était génial !",
    "¿Qué tal? Mañana vamos al cine, ¿vienes?",
    "Ich hab's dir doch gesagt: „Das klappt nie!“ 😅",
    "नमस्ते! आज मौसम बहुत अच्छा है।",
    "ok ok ok, I get it 😅",
    "Remember my dog's name is Biscuit and she is 3 years old",
    "Can you remind me at 7:30? I have a meeting at 8:00 on 12/05/2025 with 3 people",
    "I'M SO HAPPY",
    "What do you think about AI companions? Do you actually remember things about me?",
    "Hmm... 🤔",
    LONG_THOUGHT,
    LONGER_THOUGHT,
    "¯\\_(ツ)_/¯",
    "- buy milk\n- call mom\n- finish the report\n- gym at 6",
]

SPAM_SEQUENCES: list[list[str]] = [
    [
        "Check these out http://cheap-pills.biz http://casino-win.xyz http://free-money.top http://loans4u.click"
    ],
    ["🔥🔥 deals: bit.ly/aa11 bit.ly/bb22 bit.ly/cc33 bit.ly/dd44 bit.ly/ee55 🔥🔥"],
    ["https://a.example.com/1 https://b.example.com/2 https://c.example.com/3 https://d.example.com/4"],
    ["A" * 40],
    ["a" * 60],
    ["!!!!! " + "Z" * 35 + " !!!!!"],
    ["FREE CRYPTO SIGNALS!!! JOIN NOW http://pump.xyz http://signals.top http://moon.click"],
    ["CLICK HERE TO WIN AN IPHONE TODAY ONLY www.win-iphone.biz www.prize-now.xyz www.gift.top"],
    ["Join my channel for free stuff every day!"] * 5,
    ["Follow @cryptoking for daily profits, link in bio"] * 5,
    [
        "Earn $500 per day from home, DM me now!",
        "Earn $800 per day from home!! DM me now",
        "earn $1000 per day from HOME, dm me now!!!",
        "Earn $500 per day from home, DM me now 🔥",
    ],
    [
        "💰 Invest 100 USDT and get 1000 USDT in 24 hours, guaranteed 💰",
        "💰💰 Invest 200 USDT and get 2000 USDT in 24 hours, guaranteed!",
        "Invest 300 USDT and get 3000 USDT in 24 hours guaranteed 💰💰💰",
        "Invest 500 USDT and get 5000 USDT in 24 hours, GUARANTEED",
    ],
    ["BUY BUY BUY BUY BUY BUY BUY BUY BUY BUY BUY BUY NOW www.shop-now.xyz"],
    ["Best casino bonus: casino1.com casino2.com casino3.com casino4.com casino5.com"],
    ["ГОРЯЧИЕ СКИДКИ ТОЛЬКО СЕГОДНЯ http://skidki.ru http://sale-sale.ru http://mega-sale.ru"],
    [f"spam wave number {i}" for i in range(12)],
]


def feed(
    scorer: SpamScorer, texts: list[str], gap_s: float, start: float = 1_700_000_000.0
) -> list[SpamVerdict]:
    history: SpamHistory | None = None
    verdicts = []
    for i, text in enumerate(texts):
        history, verdict = scorer.score(history, text, user_id=USER, now=start + i * gap_s)
        verdicts.append(verdict)
    return verdicts


def test_corpus_sizes() -> None:
    assert len(ORDINARY) >= 40
    assert len(SPAM_SEQUENCES) >= 15


@pytest.mark.parametrize("text", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_message_alone_is_not_spam(text: str) -> None:
    _, verdict = SpamScorer().score(None, text, user_id=USER, now=0.0)
    assert not verdict.is_spam, (verdict, text)
    assert verdict.score < 0.5


def test_an_ordinary_conversation_is_never_flagged() -> None:
    verdicts = feed(SpamScorer(), ORDINARY, gap_s=15.0)
    flagged = [(t, v) for t, v in zip(ORDINARY, verdicts, strict=True) if v.is_spam]
    assert flagged == []


def test_a_fast_typist_is_not_flagged() -> None:
    texts = ["hi", "wait", "so I was at the store", "and guess who I saw", "your ex 😱"]
    assert not any(v.is_spam for v in feed(SpamScorer(), texts, gap_s=1.0))


@pytest.mark.parametrize("texts", SPAM_SEQUENCES, ids=range(len(SPAM_SEQUENCES)))
def test_spam_is_flagged(texts: list[str]) -> None:
    gap = 0.5 if len(texts) > 5 else 20.0
    verdicts = feed(SpamScorer(), texts, gap_s=gap)
    assert verdicts[-1].is_spam, verdicts[-1]
    assert verdicts[-1].reasons


def test_identical_messages_escalate_and_the_first_is_fine() -> None:
    verdicts = feed(SpamScorer(), ["Join my channel for free stuff every day!"] * 5, gap_s=30.0)
    assert not verdicts[0].is_spam
    scores = [v.score for v in verdicts]
    assert scores == sorted(scores)
    assert verdicts[3].is_spam
    assert verdicts[4].is_spam
    assert any(r.startswith("duplicate") for r in verdicts[4].reasons)


def test_repetition_is_per_user_within_a_chat() -> None:
    scorer = SpamScorer()
    history: SpamHistory | None = None
    for i, user in enumerate([1, 2, 3, 4, 5]):
        history, verdict = scorer.score(
            history, "good morning everyone, have a nice day", user_id=user, now=i
        )
        assert not verdict.is_spam


def test_flood_alone_is_not_spam_but_tips_the_balance() -> None:
    scorer = SpamScorer()
    quick = [
        "wait",
        "I have to tell you something",
        "you won't believe it",
        "so I was at the bakery",
        "and the cashier was",
        "my old teacher from school!",
        "she remembered me",
        "after fifteen years 😭",
        "we talked for ages",
        "anyway how was your day?",
    ]
    verdicts = feed(scorer, quick, gap_s=0.5)
    assert not verdicts[-1].is_spam
    assert any(r.startswith("flood") for r in verdicts[-1].reasons)


def test_single_link_is_cheap_and_harmless_hosts_count_half() -> None:
    assert count_links("see https://example.com/page") == 1.0
    assert count_links("t.me/somechannel and https://github.com/bytewax/bytewax") == 1.0
    assert count_links("javascript:alert(1) <script>x</script> data:text/html") == 0.0
    assert count_links("email me at bob@example.com, or read main.py") == 0.0
    _, verdict = SpamScorer().score(None, "look https://example.com/x", user_id=USER, now=0.0)
    assert verdict.score < 0.1


def test_code_is_not_counted_for_signals() -> None:
    assert strip_code("a ```AAAA``` b `X` c") == "a   b   c"
    assert strip_code("unclosed ``` fence AAAA") == "unclosed ``` fence AAAA"


def test_normalise_folds_case_width_digits_and_punctuation() -> None:
    assert normalise("HeLLo,   WORLD!!! 123") == "hello world 000"
    assert normalise("😂😂😂") == ""
    assert len(normalise("x" * 10_000)) == 256


def test_config_is_validated_and_overrides_apply() -> None:
    with pytest.raises(ValueError, match="unknown"):
        SpamConfig(weights={"nonsense": 0.5})
    with pytest.raises(ValueError, match=r"0\.\.1"):
        SpamConfig(weights={"links": 1.5})
    with pytest.raises(ValueError, match="threshold"):
        SpamConfig(threshold=0.0)
    lenient = SpamScorer(SpamConfig(weights={"links": 0.1}))
    _, verdict = lenient.score(None, SPAM_SEQUENCES[0][0], user_id=USER, now=0.0)
    assert not verdict.is_spam
    strict = SpamScorer(SpamConfig(threshold=0.05))
    _, verdict = strict.score(None, "see https://example.com/a https://example.com/b", user_id=USER, now=0.0)
    assert verdict.is_spam


def test_history_is_capped_and_pickles_small() -> None:
    scorer = SpamScorer(SpamConfig(history_size=5))
    history: SpamHistory | None = None
    for i in range(50):
        history, _ = scorer.score(history, "x" * 5000 + str(i), user_id=USER, now=float(i))
    assert history is not None
    assert len(history.entries) == 5
    assert all(len(e.norm) <= 256 for e in history.entries)
    assert pickle.loads(pickle.dumps(history)) == history
    assert len(pickle.dumps(history)) < 2000


def test_adversarial_input_stays_linear() -> None:
    scorer = SpamScorer()
    nasty = ["a" * 4096, "http://" * 585, "`" * 4096, "` x " * 1024, "a." * 2048, "🙂" * 4096]
    history: SpamHistory | None = None
    started = time.perf_counter()
    for i, text in enumerate(nasty * 3):
        history, _ = scorer.score(history, text, user_id=USER, now=float(i))
    # Generous bound (CPU is shared with other jobs): quadratic behaviour would take seconds.
    assert time.perf_counter() - started < 2.0


def test_other_users_do_not_count_towards_my_flood() -> None:
    scorer = SpamScorer()
    history: SpamHistory | None = None
    for i in range(20):
        history, _ = scorer.score(history, f"group chatter {i}", user_id=OTHER + i, now=i * 0.1)
    _, verdict = scorer.score(history, "hello all", user_id=USER, now=2.0)
    assert not any(r.startswith("flood") for r in verdict.reasons)
