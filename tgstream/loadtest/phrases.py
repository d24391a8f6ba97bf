"""What simulated users say: phrase banks with slots, in a few languages.

The banks are data, kept apart from `scenario`'s logic. They are written to look like real
companion-bot chat — greetings, small talk, personal facts the bot should remember, questions that
recall them, the occasional long confession — because the pipeline's cost depends on the text:
spam scoring, prompt size and memory writes all scale with it. Nothing here should look like spam
(no shouting, no links, no copy-paste repeats), so a load test measures answers, not the filter.
"""

from __future__ import annotations

from types import MappingProxyType

FIRST_NAMES = (
    "Alex", "Maria", "Jonas", "Aiko", "Priya", "Diego", "Olga", "Sam", "Fatima", "Liam", "Chloé", "Mateo",
    "Yuki", "Noah", "Sofia", "Ivan", "Amara", "Lucas", "Mei", "Omar",
)  # fmt: skip

SLOTS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "city": ("Lisbon", "Toronto", "Osaka", "Berlin", "Nairobi", "Austin", "Kraków", "Melbourne", "Pune"),
        "pet": ("a grumpy cat called Biscuit", "a beagle named Pepper", "two goldfish", "a very old tortoise",
                "a rescue greyhound called Luna", "a parrot that only says 'hello'"),
        "hobby": ("bouldering", "baking sourdough", "learning the cello", "trail running", "chess",
                  "watercolour painting", "fixing old bikes", "birdwatching", "salsa dancing"),
        "job": ("a nurse on night shifts", "a junior backend developer", "a primary school teacher",
                "an electrician", "a PhD student in biology", "a barista", "a freelance translator"),
        "food": ("ramen", "shakshuka", "pierogi", "tacos al pastor", "dal with rice", "lemon cake"),
        "book": ("The Left Hand of Darkness", "Dune", "Pride and Prejudice", "Piranesi", "The Overstory"),
    }
)  # fmt: skip

GREETINGS = (
    "hi!", "Hey there 👋", "hello, how are you today?", "Hi, I'm {name}. Nice to meet you!",
    "good morning ☀️", "hey, long day... can we talk for a bit?", "yo", "Hi again 🙂",
)  # fmt: skip

SMALL_TALK = (
    "how was your day?", "I just made coffee, want some? ☕", "the weather here is so weird today",
    "ok that's actually funny 😂", "I can't sleep again", "what are you up to?",
    "honestly I'm a bit tired but happy", "do you ever get bored?", "lol", "thanks, that helps",
    "I watched a documentary about octopuses tonight, they are so smart 🐙",
    "my neighbour is practising drums at 11pm, send help", "just got back from a walk, my legs hurt",
    "hmm, let me think about that", "that's a good point, I never looked at it that way",
)  # fmt: skip

FACTS = (
    "I live in {city}.", "I have {pet}.", "My hobby is {hobby}, I do it every weekend.",
    "I work as {job}.", "My favourite food is {food}.", "I'm reading {book} right now.",
    "Fun fact about me: I moved to {city} three years ago and I still get lost.",
    "I started {hobby} last month and I'm terrible at it 😅",
)  # fmt: skip

QUESTIONS = (
    "Do you remember where I live?", "what's my pet's name again?", "Can you recommend a book like {book}?",
    "What should I cook tonight? I have eggs, tomatoes and some old bread.",
    "How do I stay motivated with {hobby}?", "what do you think about working from home?",
    "Is it normal to feel nervous before a job interview?", "can you explain how rainbows form?",
    "What would you do on a rainy Sunday in {city}?", "any tips for sleeping better?",
    "How do I tell my friend I can't lend her money again without hurting her?",
    "what's a good name for a houseplant? 🌱",
)  # fmt: skip

STORY_SENTENCES = (
    "Today at work everything went wrong from the first minute.",
    "The bus was late, my coffee spilled, and then my manager moved the deadline to tomorrow.",
    "I keep thinking about whether I should change jobs, because the commute is eating my evenings.",
    "My sister called and we talked for an hour, which was lovely, but now I miss her even more.",
    "I tried to cook {food} from a video and it looked nothing like the video.",
    "Sometimes I feel like everyone around me has a plan and I'm just improvising.",
    "On the bright side, {hobby} went really well this week and I finally felt some progress.",
    "I don't need advice right now, I think I just need someone to listen for a moment.",
    "Anyway, sorry for the wall of text, writing it down already makes it feel smaller.",
    "I also found an old photo album at my parents' place and spent the whole evening looking at it.",
)  # fmt: skip

CLOSINGS = ("ok, I have to go. talk later!", "good night 🌙", "thanks for the chat ❤️", "bye for now")

OTHER_LANGUAGES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "es": ("¡Hola! ¿Qué tal tu día?", "Hoy estoy un poco cansada, pero bien.",
               "¿Me recomiendas una película para esta noche?", "Vivo en {city} y me encanta el mar."),
        "de": ("Hallo! Wie geht's dir heute?", "Ich habe heute zu viel gearbeitet.",
               "Kannst du mir ein gutes Buch empfehlen?", "Mein Hobby ist {hobby}, klingt komisch, oder?"),
        "ru": ("Привет! Как дела?", "Сегодня был очень длинный день.", "Что посоветуешь почитать?",
               "У меня есть кот, его зовут Барсик 🐱"),
        "ja": ("こんにちは！元気？", "今日はちょっと疲れた…", "おすすめの本はある？",
               "週末は{city}に行く予定です。"),
        "pt": ("Oi! Tudo bem?", "Hoje choveu o dia inteiro aqui.", "O que você acha de gatos?",
               "Estou aprendendo a cozinhar {food}."),
    }
)  # fmt: skip
