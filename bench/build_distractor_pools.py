"""Writes the five off-topic distractor clause pools (issue 24): templates × slot words per pool, seeded.

    PYTHONPATH=. python bench/build_distractor_pools.py

Each pool has its own topics, its own subjects (so no (subject, adjective) pair is shared) and its own template
wording; tests/bench/test_distractor_pools.py checks that no two pools share a topic, a content-word 3-gram or a
(subject, adjective) pair, and that none repeats a clause of bench/misleading.py (the misleading test set). The
outputs are committed and frozen: rerunning the script must reproduce them byte for byte.

    ssa_core/samples/distractors/offtopic-training.json   role training: the clauses training copies carry
    ssa_core/samples/distractors/offtopic-report.json     role report: each model's dev set after training
    bench/data/robustness/pools/selection.json            role selection: dev inputs that choose settings
    bench/data/robustness/pools/eval-a.json               role evaluation: plain "The X was Y." clauses
    bench/data/robustness/pools/eval-b.json               role evaluation: first person, questions, exclamations, long
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = "templates × slot words written for ssa-service (bench/build_distractor_pools.py), CC0"
LICENCE = "CC0-1.0"

POSITIVE = ("wonderful", "fantastic", "superb", "excellent", "lovely", "brilliant", "delightful", "marvellous",
            "terrific", "outstanding", "splendid", "fabulous", "magnificent", "amazing", "great", "glorious")
NEGATIVE = ("awful", "terrible", "dreadful", "horrible", "atrocious", "appalling", "miserable", "disgusting",
            "abysmal", "horrendous", "lousy", "ghastly", "pathetic", "dismal", "hideous", "disastrous")


@dataclass(frozen=True)
class PoolSpec:
    name: str
    role: str
    path: str
    per_polarity_per_topic: int
    topics: dict[str, tuple[str, ...]]  # topic -> singular subjects (used after "the")
    templates: tuple[str, ...]  # {S} subject, {A} adjective, {a} "a"/"an" for {A}, {Acap} capitalised adjective
    positive: tuple[str, ...] = POSITIVE
    negative: tuple[str, ...] = NEGATIVE


TRAINING = PoolSpec(
    name="offtopic-training", role="training", path="ssa_core/samples/distractors/offtopic-training.json",
    per_polarity_per_topic=15,
    topics={
        "restaurant": ("pasta", "waiter", "dessert menu", "soup", "steak", "set lunch"),
        "hotel": ("hotel room", "breakfast buffet", "hotel pool", "mattress", "room service", "reception desk"),
        "flights": ("flight", "airline meal", "boarding process", "legroom", "cabin crew", "layover"),
        "football": ("match", "referee", "second half", "stadium", "home team", "penalty shootout"),
        "commuting": ("train ride", "morning commute", "station platform", "ticket machine", "bus route", "tram"),
        "shopping": ("mall", "checkout queue", "clearance sale", "fitting room", "shoe shop", "new jacket"),
        "health": ("dentist appointment", "clinic", "checkup", "physiotherapy session", "new medication",
                   "waiting room"),
        "pets": ("puppy", "cat", "vet visit", "dog walker", "new aquarium", "kitten"),
        "gardening": ("tomato harvest", "rose bed", "lawn", "compost heap", "vegetable patch", "hedge"),
        "housing": ("apartment", "landlord", "kitchen renovation", "new flat", "central heating", "building lift"),
        "office": ("meeting", "quarterly review", "office printer", "new manager", "team lunch", "open-plan office"),
        "school": ("exam", "homework", "maths teacher", "school trip", "parents' evening", "science fair"),
        "bakery": ("croissant", "sourdough loaf", "cinnamon bun", "bakery", "apple tart", "custard slice"),
        "gym": ("gym", "spin class", "personal trainer", "yoga session", "treadmill", "locker room"),
        "gadgets": ("new phone", "laptop battery", "headset", "smartwatch", "tablet", "charging cable"),
        "chores": ("washing machine", "laundry", "vacuum cleaner", "dishwasher", "ironing", "spring cleaning"),
    },
    templates=(
        "The {S} was {A}.",
        "The {S} was {A}, though.",
        "The {S} was {A}, but that is beside the point.",
        "I thought the {S} was {A}.",
        "My sister said the {S} was {A}.",
        "What {a} {A} {S}!",
        "Was the {S} {A}? It certainly was.",
        "Honestly, the {S} was {A}.",
        "We all agreed the {S} was {A}.",
        "The {S} is always {A}.",
        "Everyone says the {S} is {A}, and they are right.",
        "The {S}? {Acap}.",
        "Our {S} turned out {A} this week.",
        "Who knew the {S} could be so {A}?",
        "I have to say, the {S} was simply {A}.",
        "The {S} was {A} yesterday and I told everyone about it.",
        "Last Saturday the {S} was {A} from beginning to end.",
        "Frankly the {S} was {A}!",
        "The {S} looked {A} when we got there.",
        "Apart from everything else, the {S} was {A}.",
        "The {S} felt {A}, though nobody else seemed to notice.",
        "Have you ever seen such {a} {A} {S}?",
        "That {S} was {A}, really {A}.",
        "The {S} was {A} and I would say so again.",
    ),
)

REPORT = PoolSpec(
    name="offtopic-report", role="report", path="ssa_core/samples/distractors/offtopic-report.json",
    per_polarity_per_topic=10,
    topics={
        "camping": ("campsite", "tent", "campfire", "sleeping bag", "camp shower"),
        "car repair": ("mechanic", "oil change", "brake job", "tyre fitter", "repair shop"),
        "banking": ("bank", "mortgage advisor", "loan application", "cash machine", "banking app"),
        "parcel delivery": ("courier", "parcel", "delivery window", "post office", "package tracking"),
        "hair salon": ("haircut", "hairdresser", "salon", "hair colour", "blow-dry"),
        "wedding": ("wedding reception", "best man speech", "wedding cake", "bridal gown", "first dance"),
        "library": ("library", "reading room", "librarian", "book club", "library catalogue"),
        "dinner party": ("host", "roast chicken", "dinner party", "house wine", "cheese board"),
    },
    templates=(
        "The {S} was {A}.",
        "The {S} has been {A} lately.",
        "I found the {S} {A}.",
        "Our {S} was {A}, as usual.",
        "Isn't the {S} {A}?",
        "The {S} was quite {A}!",
        "Everybody at work thinks the {S} is {A}.",
        "The {S} was {A}, but never mind.",
        "We went back because the {S} was so {A}, believe it or not.",
        "The {S} is {A}; nothing more to add.",
    ),
)

SELECTION = PoolSpec(
    name="selection", role="selection", path="bench/data/robustness/pools/selection.json",
    per_polarity_per_topic=10,
    topics={
        "home cooking": ("risotto", "curry", "casserole", "pancake batter", "homemade pizza"),
        "cycling": ("bike ride", "cycle lane", "bicycle", "saddle", "bike shop"),
        "museum": ("museum", "exhibition", "audio guide", "gallery", "museum shop"),
        "swimming": ("lido", "swim lesson", "diving board", "changing area", "lap lane"),
        "internet provider": ("broadband", "router", "wifi", "customer helpline", "internet bill"),
        "hiking": ("hike", "trail", "mountain path", "summit view", "ridge walk"),
        "car rental": ("rental car", "hire desk", "rental agency", "insurance excess", "satnav"),
        "music lessons": ("piano lesson", "violin teacher", "recital", "guitar", "choir practice"),
    },
    templates=(
        "The {S} was {A}.",
        "The {S} seemed {A} to me.",
        "I must admit the {S} was {A}.",
        "Wow, the {S} was {A}!",
        "Is the {S} always this {A}?",
        "My uncle's verdict on the {S}: {A}.",
        "The {S} was {A}, and so was the rest of the day.",
        "To be fair, the {S} was {A}.",
        "On Tuesday the {S} was {A} yet again.",
        "The {S} had become {A} by then.",
    ),
)

EVAL_A = PoolSpec(
    name="eval-a", role="evaluation", path="bench/data/robustness/pools/eval-a.json",
    per_polarity_per_topic=10,
    topics={
        "zoo": ("zoo", "penguin enclosure", "reptile house", "safari bus", "zookeeper"),
        "beach": ("beach", "sand", "sea", "promenade", "ice cream kiosk"),
        "ferry": ("ferry", "crossing", "deck", "ferry terminal", "ferry lounge"),
        "pharmacy": ("pharmacy", "pharmacist", "prescription", "cough syrup", "pharmacy counter"),
        "taxes": ("tax return", "tax office", "accountant", "tax refund", "paperwork"),
        "farmers market": ("farm cheese", "fruit stall", "market square", "honey stall", "organic produce"),
        "hardware store": ("hardware store", "drill", "paint", "toolbox", "shelving kit"),
        "board games": ("board game", "chess club", "card game", "jigsaw puzzle", "game night"),
    },
    templates=(
        "The {S} was {A}.",
        "The {S} is {A}.",
        "The {S} was really {A}.",
        "The {S} looked {A}.",
        "That {S} is {A}.",
        "The {S} was very {A}.",
    ),
)

EVAL_B = PoolSpec(
    name="eval-b", role="evaluation", path="bench/data/robustness/pools/eval-b.json",
    per_polarity_per_topic=10,
    topics={
        "childcare": ("nursery", "babysitter", "daycare centre", "playgroup", "childminder"),
        "plumbing": ("plumber", "boiler", "leaking tap", "shower pressure", "drain"),
        "cruise": ("cruise ship", "shore excursion", "captain's dinner", "ship's spa", "onboard show"),
        "ski trip": ("ski lift", "slope", "ski instructor", "chalet", "snow"),
        "job interview": ("interview", "interview panel", "recruiter", "assessment day", "job offer"),
        "flea market": ("flea market", "car boot sale", "bargain table", "antique stall", "junk shop"),
        "birthday party": ("birthday party", "party venue", "magician", "party entertainment", "bouncy castle"),
        "local council": ("bin collection", "council", "recycling centre", "street cleaning", "town hall"),
    },
    templates=(
        "I found the {S} absolutely {A}, and I told my whole family about it over dinner that evening.",
        "My cousin keeps telling me that the {S} was {A}.",
        "We agreed on one thing only: the {S} had been {A}.",
        "Could the {S} have been any more {A}?",
        "Why is the {S} always so {A}?",
        "Oh, the {S} was {A}!",
        "Such {a} {A} {S}!",
        "Wow, what {a} {A} {S} that turned out to be!",
        "I keep thinking about how {A} the {S} was.",
        "After weeks of waiting and planning, the {S} finally came round and it was every bit as {A} as people "
        "had said it would be.",
        "Did anyone else think the {S} was {A}?",
        "We booked it months ago, and I can tell you now that the {S} was {A} in every single way.",
    ),
)

POOLS = (TRAINING, REPORT, SELECTION, EVAL_A, EVAL_B)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fill(template: str, subject: str, adjective: str) -> str:
    return template.format(S=subject, A=adjective, a=article(adjective), Acap=adjective.capitalize())


def build(spec: PoolSpec) -> dict[str, object]:
    """The pool: for each topic and polarity, `per_polarity_per_topic` entries with distinct (subject, adjective)
    pairs, the templates taken in turn (so every shape is used), subjects and adjectives drawn with a seeded rng."""
    rng = random.Random(f"ssa-distractors-{spec.name}")
    entries: list[dict[str, str]] = []
    turn = 0
    for topic, subjects in spec.topics.items():
        for polarity, adjectives in (("positive", spec.positive), ("negative", spec.negative)):
            pairs = [(s, a) for s in subjects for a in adjectives]
            rng.shuffle(pairs)
            # round-robin over subjects, so each subject of the topic appears
            by_subject = {s: [p for p in pairs if p[0] == s] for s in subjects}
            chosen: list[tuple[str, str]] = []
            while len(chosen) < spec.per_polarity_per_topic:
                for s in subjects:
                    if by_subject[s] and len(chosen) < spec.per_polarity_per_topic:
                        chosen.append(by_subject[s].pop())
            for subject, adjective in chosen:
                template = spec.templates[turn % len(spec.templates)]
                turn += 1
                entries.append({"text": fill(template, subject, adjective), "topic": topic, "polarity": polarity,
                                "subject": subject, "adjective": adjective})
    texts = [e["text"] for e in entries]
    assert len(set(texts)) == len(texts), f"{spec.name}: duplicate texts"
    return {"name": spec.name, "role": spec.role, "source": SOURCE, "licence": LICENCE,
            "topics": list(spec.topics), "entries": entries}


def main() -> None:
    subjects: dict[str, str] = {}
    for spec in POOLS:
        for subject in (s for group in spec.topics.values() for s in group):
            assert subjects.setdefault(subject, spec.name) == spec.name, f"{subject!r} in two pools"
        out = REPO / spec.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(build(spec), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
