"""The synthetic knowledge base of the ``default`` variant: people, biographies, questions.

The bioS recipe of Allen-Zhu & Li ("Physics of Language Models 3.1", arXiv 2309.14316;
docs/workloads.md#factuality) at CPU scale. Every person has a unique three-word name and six
attributes:
birth date, birth city, university, major, employer, and work city (the employer's headquarters).
A biography has one sentence per attribute, each from ``TEMPLATES_PER_ATTRIBUTE`` templates; its
first sentence names the person in full, the others use a pronoun (bioS). The *majority* of people
are well covered: ``multi`` biographies each, templates re-drawn and sentence order shuffled
(bioS multi5+permute); the *minority* get one biography in the fixed attribute order (bioS single).
Question-answer pairs of the majority are training data (bioS mixed training); those of the
minority are held out: half for validation, half for test.

Everything is drawn from a seeded ``random.Random``: the same seed gives the same knowledge base
and the same biographies, on every machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer", "work_city")

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
YEARS = tuple(range(1930, 2000))
DAYS = tuple(range(1, 29))
CITIES = (
    "Boston", "Chicago", "Denver", "Seattle", "Portland", "Atlanta", "Houston", "Phoenix",
    "Dallas", "Austin", "Memphis", "Detroit", "Baltimore", "Milwaukee", "Omaha", "Tucson",
    "Fresno", "Sacramento", "Cleveland", "Pittsburgh", "Cincinnati", "Nashville", "Richmond",
    "Louisville", "Raleigh", "Tampa", "Orlando", "Miami", "New York", "Los Angeles",
    "San Diego", "San Jose", "Salt Lake City", "Kansas City", "New Orleans", "Las Vegas",
    "Oklahoma City", "Saint Louis", "Buffalo", "Albany",
)  # fmt: skip
MAJORS = (
    "Physics", "Chemistry", "Biology", "Mathematics", "History", "Economics", "Philosophy",
    "Linguistics", "Psychology", "Sociology", "Geology", "Astronomy", "Music", "Architecture",
    "Nursing", "Statistics", "Computer Science", "Civil Engineering", "Mechanical Engineering",
    "Electrical Engineering", "Political Science", "Art History", "Marine Biology",
    "Environmental Science",
)  # fmt: skip
UNIVERSITY_FORMS = ("{} University", "{} College", "{} Institute of Technology", "University of {}")
EMPLOYER_FORMS = ("{} Labs", "{} Systems", "{} Corporation", "{} Group", "{} Industries",
                  "{} Dynamics")  # fmt: skip

TEMPLATES: dict[str, tuple[str, ...]] = {  # {s} subject, {o} object (name or pronoun); {v} value
    "birth_date": (
        "{s} was born on {v}.",
        "{s} came into this world on {v}.",
        "{s} celebrates a birthday on {v}.",
        "{s} entered life on {v}.",
        "{s} was welcomed into the world on {v}.",
        "{s} arrived on {v}.",
        "The birth of {o} took place on {v}.",
        "On {v}, {s} was born.",
        "{s} first saw the light of day on {v}.",
        "{s} has a birth date of {v}.",
        "{s} was brought into the world on {v}.",
        "{s} began life on {v}.",
    ),
    "birth_city": (
        "{s} was born in {v}.",
        "{s} spent early years in {v}.",
        "{s} hails from {v}.",
        "{s} grew up in {v}.",
        "{s} came into the world in {v}.",
        "The hometown of {o} is {v}.",
        "{s} owes roots to {v}.",
        "{s} was raised in {v}.",
        "{s} calls {v} home.",
        "{s} started life in {v}.",
        "{v} is the birthplace of {o}.",
        "{s} is a native of {v}.",
    ),
    "university": (
        "{s} studied at {v}.",
        "{s} graduated from {v}.",
        "{s} received an education at {v}.",
        "{s} attended {v}.",
        "{s} earned a degree at {v}.",
        "{s} completed studies at {v}.",
        "{s} was a student at {v}.",
        "{s} is an alumnus of {v}.",
        "{s} pursued higher education at {v}.",
        "{s} spent college years at {v}.",
        "{v} is where {s} studied.",
        "{s} enrolled at {v}.",
    ),
    "major": (
        "{s} majored in {v}.",
        "{s} focused on {v}.",
        "{s} specialized in {v}.",
        "{s} studied the field of {v}.",
        "{s} completed a degree in {v}.",
        "{s} chose {v} as a major.",
        "{s} concentrated on {v}.",
        "{s} devoted studies to {v}.",
        "{s} earned a diploma in {v}.",
        "{s} developed expertise in {v}.",
        "{v} was the major of {o}.",
        "{s} was trained in {v}.",
    ),
    "employer": (
        "{s} worked for {v}.",
        "{s} was employed by {v}.",
        "{s} held a job at {v}.",
        "{s} joined {v}.",
        "{s} built a career at {v}.",
        "{s} is on the staff of {v}.",
        "{s} was hired by {v}.",
        "{s} took a position at {v}.",
        "{s} served at {v}.",
        "{s} works at {v}.",
        "{v} employed {o}.",
        "{s} found work at {v}.",
    ),
    "work_city": (
        "{s} worked in {v}.",
        "{s} was based in {v}.",
        "{s} had an office in {v}.",
        "{s} moved to {v} for work.",
        "{s} commuted to work in {v}.",
        "{s} pursued a career in {v}.",
        "{s} was employed in {v}.",
        "{s} spent working years in {v}.",
        "{s} relocated to {v} for a job.",
        "{s} made a living in {v}.",
        "{v} is where {s} worked.",
        "{s} held a job in {v}.",
    ),
}
TEMPLATES_PER_ATTRIBUTE = 12
QUESTIONS = {
    "birth_date": "What is the birth date of {s}?",
    "birth_city": "What is the birth city of {s}?",
    "university": "Which university did {s} study at?",
    "major": "What did {s} major in?",
    "employer": "Which company did {s} work for?",
    "work_city": "Where did {s} work?",
}
SUBJECT = {"m": ("He", "he"), "f": ("She", "she")}
OBJECT = {"m": "him", "f": "her"}
_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
           "st", "t", "tr", "v", "w", "z")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "nd", "rk", "m", "x")


class KnowledgeBaseError(ValueError):
    """A bad request of the knowledge base: unknown attribute, empty or impossible sizes."""


@dataclass(frozen=True)
class Person:
    index: int
    name: str  # "First Middle Last"
    gender: str  # "m" or "f"
    attributes: dict[str, str]  # attribute -> value text
    majority: bool


@dataclass(frozen=True)
class Sentence:
    text: str
    attribute: str
    value_start: int  # character offset of the value in ``text``


@dataclass(frozen=True)
class KnowledgeBase:
    people: tuple[Person, ...]
    values: dict[str, tuple[str, ...]]  # attribute -> every possible value (the closed pools)
    headquarters: dict[str, str]  # employer -> city
    seed: int

    @property
    def majority(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.majority)

    @property
    def minority(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if not p.majority)

    def value(self, person: Person, attribute: str) -> str:
        check_attribute(attribute)
        return person.attributes[attribute]


def check_attribute(attribute: str) -> str:
    if attribute not in ATTRIBUTES:
        raise KnowledgeBaseError(f"unknown attribute {attribute!r}; known: {', '.join(ATTRIBUTES)}")
    return attribute


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def _unique_words(rng: random.Random, n: int, taken: set[str], syllables=(2, 3)) -> list[str]:
    out: list[str] = []
    lowered = {t.lower() for t in taken}
    while len(out) < n:
        w = _word(rng, rng.choice(syllables))
        if w.lower() not in lowered:  # case-insensitive, so also never an exact repeat
            taken.add(w)
            lowered.add(w.lower())
            out.append(w)
    return out


def pools(seed: int, n_universities: int = 30, n_employers: int = 30, name_pool=(60, 40, 80)):
    """The closed vocabulary of values and names: the same for every knowledge base of ``seed``."""
    rng = random.Random(f"factuality-pools-{seed}")
    taken = {w for text in CITIES + MAJORS for w in text.split()}
    firsts, middles, lasts = (_unique_words(rng, k, taken, (1, 2)) for k in name_pool)
    uni_stems = _unique_words(rng, n_universities, taken)
    universities = tuple(
        UNIVERSITY_FORMS[i % len(UNIVERSITY_FORMS)].format(s) for i, s in enumerate(uni_stems)
    )
    emp_stems = _unique_words(rng, n_employers, taken)
    employers = tuple(
        EMPLOYER_FORMS[i % len(EMPLOYER_FORMS)].format(s) for i, s in enumerate(emp_stems)
    )
    headquarters = {e: rng.choice(CITIES) for e in employers}
    return (firsts, middles, lasts), universities, employers, headquarters


def date_text(month: str, day: int, year: int) -> str:
    return f"{month} {day}, {year}"


def generate_kb(n_majority: int, n_minority: int, seed: int = 0) -> KnowledgeBase:
    """``n_majority`` well-covered and ``n_minority`` single-biography people with unique names."""
    if n_majority < 1 or n_minority < 2:
        raise KnowledgeBaseError(
            f"need at least 1 majority and 2 minority people (validation and test); "
            f"got {n_majority} and {n_minority}"
        )
    (firsts, middles, lasts), universities, employers, hq = pools(seed)
    n = n_majority + n_minority
    if n > len(firsts) * len(middles) * len(lasts):
        raise KnowledgeBaseError(f"{n} people exceed the name pool")
    rng = random.Random(f"factuality-kb-{seed}")
    names: set[str] = set()
    people = []
    for i in range(n):
        while True:
            name = f"{rng.choice(firsts)} {rng.choice(middles)} {rng.choice(lasts)}"
            if name not in names:
                names.add(name)
                break
        employer = rng.choice(employers)
        attrs = {
            "birth_date": date_text(rng.choice(MONTHS), rng.choice(DAYS), rng.choice(YEARS)),
            "birth_city": rng.choice(CITIES),
            "university": rng.choice(universities),
            "major": rng.choice(MAJORS),
            "employer": employer,
            "work_city": hq[employer],
        }
        people.append(Person(i, name, rng.choice("mf"), attrs, majority=i < n_majority))
    values = {
        "birth_date": tuple(date_text(m, d, y) for m in MONTHS for d in DAYS for y in YEARS),
        "birth_city": CITIES,
        "university": universities,
        "major": MAJORS,
        "employer": employers,
        "work_city": CITIES,
    }
    return KnowledgeBase(tuple(people), values, hq, seed)


def _sentence(template: str, subject: str, obj: str, value: str, attribute: str) -> Sentence:
    text = template.format(s=subject, o=obj, v=value)
    text = text[0].upper() + text[1:]
    return Sentence(text, attribute, text.index(value))


def biography(
    person: Person, rng: random.Random, permute: bool, templates: Sequence[int] | None = None
) -> list[Sentence]:
    """One biography: a sentence per attribute, the first naming the person in full.

    ``templates``: a template index per attribute (default: drawn from ``rng``)."""
    order = list(ATTRIBUTES)
    if permute:
        rng.shuffle(order)
    out = []
    for k, attribute in enumerate(order):
        choices = TEMPLATES[attribute]
        t = templates[ATTRIBUTES.index(attribute)] if templates else rng.randrange(len(choices))
        template = choices[t]
        if k == 0:
            subject = obj = person.name
        else:  # a pronoun, capitalized where the sentence starts with it
            subject = SUBJECT[person.gender][0 if template.startswith("{s}") else 1]
            obj = OBJECT[person.gender]
        out.append(_sentence(template, subject, obj, person.attributes[attribute], attribute))
    return out


def question(person: Person, attribute: str) -> tuple[str, str]:
    """The question about ``attribute`` of ``person`` as a prompt ("Question: ... Answer:"),
    and its answer (the value)."""
    check_attribute(attribute)
    q = QUESTIONS[attribute].format(s=person.name)
    return f"Question: {q} Answer:", person.attributes[attribute]


def biographies(kb: KnowledgeBase, multi: int) -> list[tuple[Person, list[Sentence]]]:
    """Every training biography: ``multi`` shuffled ones per majority person, one in the fixed
    order per minority person."""
    if multi < 1:
        raise KnowledgeBaseError(f"multi must be >= 1; got {multi}")
    rng = random.Random(f"factuality-bios-{kb.seed}")
    out = []
    for p in kb.people:
        for _ in range(multi if p.majority else 1):
            out.append((p, biography(p, rng, permute=p.majority)))
    return out


TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """The workload's word tokenization: runs of word characters, and single punctuation marks."""
    return TOKEN_RE.findall(text)
