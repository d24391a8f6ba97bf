"""Synthetic users for the recall benchmark: planted facts, told early, asked about much later.

Each user's conversation is: a few planted facts mixed into small talk in the first turns, then
many turns of small talk, some of it deliberately on the same topics as the facts without
stating them ("walked the dog in the rain" next to "my dog is called Biscuit"), and at the end
one question per planted fact, phrased differently from the statement. The context window
(12 exchanges) has long rolled past the facts, so only the memory store can answer.

Everything is drawn from a seeded ``random.Random``, so two runs build the same users.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# fmt: off
NAMES = [
    "Mia", "Leo", "Ava", "Noah", "Zoe", "Ezra", "Ivy", "Omar", "Nina", "Theo", "Lena", "Ravi", "Maya",
    "Hugo", "Iris", "Kai", "Rosa", "Felix", "Anya", "Tomas", "Elif", "Jonah", "Priya"
]
PETS = [
    "Biscuit", "Pickle", "Mochi", "Pepper", "Waffles", "Nugget", "Ziggy", "Clementine", "Bramble", "Socks",
    "Juniper", "Tofu", "Marble", "Pudding", "Rocket", "Saffron"
]
CITIES = [
    "Lisbon", "Krakow", "Osaka", "Toronto", "Valparaiso", "Tbilisi", "Ghent", "Porto", "Leeds", "Tallinn",
    "Bergen", "Cork", "Nagoya", "Adelaide", "Bologna", "Halifax", "Graz"
]
JOBS = [
    "nurse", "carpenter", "data analyst", "primary school teacher", "paramedic", "architect", "pastry chef",
    "bus driver", "translator", "lab technician", "florist", "sound engineer"
]
FOODS = [
    "peanuts", "shellfish", "strawberries", "sesame", "kiwi", "mustard", "walnuts", "celery"
]
DISHES = [
    "ramen", "lasagne", "pierogi", "pad thai", "shakshuka", "paella", "dumplings", "moussaka"
]
INSTRUMENTS = [
    "cello", "ukulele", "trumpet", "drums", "violin", "banjo", "piano", "saxophone"
]
LANGUAGES = [
    "Japanese", "Portuguese", "Korean", "Finnish", "Italian", "Arabic", "Dutch", "Greek"
]
COUNTRIES = [
    "Iceland", "Peru", "Vietnam", "Morocco", "New Zealand", "Norway", "Chile", "Georgia"
]
CARS = [
    "an old red Volvo", "a blue Fiat Panda", "a green Land Rover", "a silver Honda Civic", "a yellow Mini"
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December"
]
SPORTS = [
    "rock climbing", "rowing", "fencing", "volleyball", "archery", "table tennis", "judo", "surfing"
]
# fmt: on


@dataclass(frozen=True)
class FactKind:
    """One kind of fact: how users state it, how they ask about it later, and on-topic small talk."""

    slot: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]
    distractors: tuple[str, ...]
    values: tuple[tuple[str, list[str]], ...]


def kind(slot: str, statements: str, questions: str, distractors: str, **values: list[str]) -> FactKind:
    """A FactKind from ``|``-separated alternatives (keeps the table below readable)."""
    return FactKind(
        slot,
        tuple(statements.split("|")),
        tuple(questions.split("|")),
        tuple(distractors.split("|")),
        tuple(values.items()),
    )


KINDS = [
    kind(
        "pet",
        "My dog is called {pet}.|I have a dog named {pet}, she's a little terrier.|"
        "Our dog's name is {pet} by the way",
        "What's my dog's name?|Do you remember what my dog is called?|what did I name my dog again?",
        "Walked the dog in the rain this morning, we're both soaked|the dog chewed one of my shoes lol|"
        "dogs are such good company honestly",
        pet=PETS,
    ),
    kind(
        "hometown",
        "I grew up in {city}.|I'm originally from {city}, moved away at 18.|{city} is where I was born",
        "Where did I grow up?|Which city am I originally from?|do you remember my hometown?",
        "I miss my hometown sometimes|cities change so fast, don't they|went back to visit family last year",
        city=CITIES,
    ),
    kind(
        "job",
        "I work as a {job}.|I'm a {job}, have been for six years|My job? I'm a {job}.",
        "What do I do for a living?|What's my job again?|do you remember what I work as?",
        "work was exhausting today|my boss keeps moving deadlines|thinking about asking for a raise",
        job=JOBS,
    ),
    kind(
        "allergy",
        "I'm allergic to {food}.|Heads up, I have a {food} allergy|I can't eat {food}, I'm allergic",
        "What am I allergic to?|Which food allergy do I have?|remind me what I can't eat?",
        "had a great lunch today|trying a new recipe tonight|the cafe near work changed its menu",
        food=FOODS,
    ),
    kind(
        "sibling",
        "My sister is called {name}.|My older sister {name} is visiting next month|"
        "{name}, my sister, just had a baby!",
        "What's my sister's name?|Do you remember my sister's name?|what is my sister called?",
        "family dinners are always chaotic|my sister and I used to fight so much as kids|"
        "siblings are complicated",
        name=NAMES,
    ),
    kind(
        "instrument",
        "I play the {instrument}.|I've been learning the {instrument} for two years|"
        "Practised {instrument} for an hour today",
        "What instrument do I play?|which instrument am I learning?|remember what I practise?",
        "music helps me relax|went to a concert on Friday|my neighbours probably hate my practising",
        instrument=INSTRUMENTS,
    ),
    kind(
        "language",
        "I'm learning {language}.|Started {language} lessons this spring|I study {language} every evening",
        "Which language am I learning?|What language do I study?|"
        "do you remember which language I'm learning?",
        "grammar is so hard|my flashcard streak is 40 days|languages take forever to learn",
        language=LANGUAGES,
    ),
    kind(
        "dream_trip",
        "I really want to visit {country} one day.|My dream trip is {country}|"
        "{country} is top of my travel list",
        "Where do I dream of travelling?|What's my dream trip?|which country did I say I want to visit?",
        "I need a holiday so badly|flights are so expensive now|packing is the worst part of travelling",
        country=COUNTRIES,
    ),
    kind(
        "car",
        "I drive {car}.|My car is {car}, it's ancient|Got {car} second-hand last year",
        "What car do I drive?|What kind of car do I have?|remember my car?",
        "traffic was terrible today|need to get the tyres checked|parking in town is impossible",
        car=CARS,
    ),
    kind(
        "birthday",
        "My birthday is on the {day} of {month}.|I was born on {month} {day}|{month} {day} is my birthday",
        "When is my birthday?|Do you remember my birthday?|what date is my birthday?",
        "birthdays make me weirdly sad|planning a party for a friend|getting older is strange",
        month=MONTHS,
        day=[str(d) for d in range(1, 29)],
    ),
    kind(
        "favourite_food",
        "My favourite food is {dish}.|Nothing beats {dish}, it's my favourite|I could eat {dish} every day",
        "What's my favourite food?|Which dish do I love most?|remember my favourite meal?",
        "I'm so hungry right now|cooking for one is boring|ordered takeaway again",
        dish=DISHES,
    ),
    kind(
        "sport",
        "I do {sport} twice a week.|My hobby is {sport}|Just got back from {sport}, exhausted",
        "What sport do I do?|What's my hobby?|which sport did I say I practise?",
        "my legs are so sore|trying to stay fit|the gym was packed",
        sport=SPORTS,
    ),
]

# fmt: off
SMALL_TALK = [
    "hey, how are you?", "lol", "that's fair", "I watched a documentary about octopuses last night",
    "it's raining again here", "can't decide what to have for dinner", "I'm so tired today", "haha yes",
    "do you ever get bored?", "what do you think about time travel?", "ok good night", "morning!",
    "I finished the book I was reading", "the coffee machine at work broke", "tell me something fun",
    "I've been sleeping badly", "the weekend went by too fast", "thinking of repainting my room",
    "my phone battery dies so quickly", "what's your favourite season?", "I need to do laundry", "brb",
    "that made me laugh", "any film recommendations?", "I tried meditation, it was hard",
    "the neighbours are loud tonight", "I'm going to bed early today", "it's sunny finally",
    "I love autumn", "do you like puzzles?", "cleaned the whole flat today", "why are mondays like this"
]
REPLIES = [
    "That's lovely to hear!", "Oh, I see. Tell me more?", "Ha, fair enough.", "I'll remember that.",
    "That sounds like a lot.", "Interesting! How did that feel?", "Good night, sleep well!"
]
# fmt: on


@dataclass
class Turn:
    user: str
    reply: str
    fact: int | None = None  # index into the user's facts when this turn states one


@dataclass
class SyntheticUser:
    chat_id: int
    turns: list[Turn] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # (slot, question)


def make_users(
    count: int, *, facts_per_user: int, filler_turns: int, seed: int, first_chat: int
) -> list[SyntheticUser]:
    """``count`` users, each with ``facts_per_user`` planted facts and ``filler_turns`` later turns."""
    rng = random.Random(seed)
    users = []
    for index in range(count):
        user = SyntheticUser(chat_id=first_chat + index)
        kinds = rng.sample(KINDS, facts_per_user)
        early: list[Turn] = [Turn(rng.choice(SMALL_TALK), rng.choice(REPLIES)) for _ in range(4)]
        for fact_index, kind in enumerate(kinds):
            values = {name: rng.choice(choices) for name, choices in kind.values}
            statement = rng.choice(kind.statements).format(**values)
            early.insert(rng.randrange(len(early) + 1), Turn(statement, rng.choice(REPLIES), fact_index))
            user.facts.append((kind.slot, rng.choice(kind.questions)))
        later = [Turn(rng.choice(SMALL_TALK), rng.choice(REPLIES)) for _ in range(filler_turns)]
        for kind in kinds:  # on-topic small talk that does not state the fact
            for distractor in rng.sample(kind.distractors, 2):
                later.insert(rng.randrange(len(later) + 1), Turn(distractor, rng.choice(REPLIES)))
        user.turns = early + later
        users.append(user)
    return users


def filler_sentences(count: int, *, seed: int) -> list[str]:
    """Distinct sentences other chats might say: small talk, on-topic chatter, other people's facts.

    They seed the filler vectors (each filler memory is a perturbed embedding of one), so the
    10^6-row table has thousands of distinct neighbourhoods, as real chat logs do, instead of a
    few dozen tight clusters on which nearest-neighbour search degenerates.
    """
    rng = random.Random(seed)
    sentences = dict.fromkeys(SMALL_TALK + [d for kind in KINDS for d in kind.distractors])
    attempts = 0
    while len(sentences) < count and attempts < count * 20:
        attempts += 1
        kind = rng.choice(KINDS)
        values = {name: rng.choice(choices) for name, choices in kind.values}
        template = rng.choice(kind.statements + kind.questions)
        sentence = template.format(**values)
        if rng.random() < 0.5:
            sentence = f"{rng.choice(SMALL_TALK).rstrip('?.!')}. {sentence}"
        sentences[sentence] = None
    return list(sentences)[:count]
