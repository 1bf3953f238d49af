"""The ``full`` variant: the FactualityPrompts benchmark on data the user supplies.

FactualityPrompts (Lee et al., NeurIPS 2022, arXiv 2206.04624; repository
nayeon7lee/FactualityPrompt). Verified there, and nothing here is downloaded:

- ``prompts/fever_factual_final.jsonl`` and ``prompts/fever_nonfactual_final.jsonl``: one JSON
  object a line with exactly the fields ``id`` (a string, e.g. "74326"), ``prompt`` (a FEVER
  claim, e.g. "Usain Bolt has won the 100 m title.") and ``evidence_info`` (a list of
  ``[Wikipedia title, Wikipedia page id]`` pairs, e.g. ``[["Usain Bolt", "4764846"]]``; some
  rows list several titles, some repeat one). There is no ``label`` field: the prompt type is
  the file (``src/evaluate_v3_final.py`` reads ``prompts/fever_{prompt_type}_final.jsonl`` with
  ``--prompt_type factual|nonfactual``). ``load_prompts`` therefore takes a row's ``label`` when
  the file has one and otherwise the file's name; the topic is the first evidence title.
- The hallucinated-NE error (``src/evaluate_v3_final.py``, ``src/claim_handling.py``,
  ``src/factuality_metric.py: ner_metric``): the evidence is the Wikipedia pages of every title
  in ``evidence_info`` (looked up in a KILT dump; missing titles are skipped); the named entities
  of the generation's first sentence are found with spaCy ``en_core_web_sm`` (CARDINAL and
  ORDINAL dropped; when spaCy finds none, capitalized words not at the start, ``(?<!^)[A-Z][a-z]+``,
  minus stopwords); an entity is correct iff its lower-cased text, with "the " removed, is a
  substring of the lower-cased evidence (plus looser rules for PERSON and DATE); the score is
  1 - correct / entities, averaged over generations that state a fact.
- Distinct-n (``metrics/distinct_n.py``): distinct n-grams / n-grams of NLTK word tokens of each
  generation's first sentence, pooled over all generations.

Approximated here. spaCy is not installed (nor its English model, which is no PyPI package), so
``find_entities`` is a documented regex finder: runs of capitalized words (joined through name
particles such as "of", "de", "van"; a possessive "'s" dropped), leading function words ("The",
"In", ...; not modal verbs, which are also names: "May", "Will") removed, a single-word run at a
sentence's start ignored (its capital says nothing); and numbers (years, quantities; an
ordinal's suffix dropped: "13th" -> "13"). Repeats count, as spaCy's entity list does. An
entity is found in the evidence iff its lower-cased text occurs there between word boundaries
(stricter than the original's plain substring, under which "18" is found in "1895").
``ne_error`` scores the whole generation (up to end-of-sequence), not only its first sentence
and without the original's fact/no-fact/off-topic filter, and ``evaluate_full`` reports the
micro average (errors / entities over all generations).
Distinct-2 is the workload's ``text.distinct_n`` on token ids, the mean over generations.

Data layouts, read through Hugging Face ``datasets`` (with a temporary cache deleted before
returning, as ``workloads.translation.hf_pairs`` does): prompts as a jsonl file, or a folder
with ``fever_factual_final.jsonl`` and/or ``fever_nonfactual_final.jsonl``; the Wikipedia pages
(columns ``title`` and ``text``) as a ``save_to_disk`` folder, parquet files or jsonl files.
The tokenizer is ``workloads.translation.bpe``'s byte-level BPE, trained on the pages with no
language tags (``languages=()``; ids 0..3 are ``<pad>``, ``<s>``, ``</s>`` = eos, ``<unk>``).
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from workloads.factuality.data import Document
from workloads.factuality.sampling import FACTUAL_NUCLEUS, NUCLEUS, group_by_length, sample
from workloads.factuality.text import distinct_n
from workloads.translation.bpe import BpeVocab, train_bpe

log = logging.getLogger("ttr.factuality")

PROMPT_FILES = {
    "factual": "fever_factual_final.jsonl",
    "nonfactual": "fever_nonfactual_final.jsonl",
}
LABELS = ("factual", "nonfactual")
PROMPT_FIELDS = ("id", "prompt", "evidence_info")
DOCUMENT_FIELDS = ("title", "text")
DOCUMENT_LAYOUTS = (
    "expected the Wikipedia pages (columns 'title' and 'text') as a Dataset or DatasetDict "
    "save_to_disk folder, a folder of *.parquet files or of *.jsonl files, or one .parquet or "
    ".jsonl file"
)
SETTINGS = (NUCLEUS, FACTUAL_NUCLEUS)
BATCH_ROWS = 32  # most prompts sampled together


class FactualityDataError(ValueError):
    """The FactualityPrompts data or the arguments describing it are not usable."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    label: str  # "factual" or "nonfactual"
    topic: str  # Wikipedia title: the first of the row's evidence_info
    titles: tuple[str, ...] = ()  # every evidence title, deduplicated, the topic first


# -- prompts -------------------------------------------------------------------------------


def load_prompts(path: str) -> list[Prompt]:
    """The prompts of a FactualityPrompts jsonl file, or of a folder's factual then nonfactual
    file, in file order."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FactualityDataError(f"prompt path {str(p)!r} does not exist")
    if p.is_dir():
        files = [(p / name, label) for label, name in PROMPT_FILES.items() if (p / name).is_file()]
        if not files:
            raise FactualityDataError(
                f"{p} holds neither {PROMPT_FILES['factual']} nor {PROMPT_FILES['nonfactual']}"
            )
    else:
        files = [(p, _label_of(p))]
    prompts: list[Prompt] = []
    with tempfile.TemporaryDirectory(prefix="ttr-factuality-") as cache:
        for f, label in files:
            prompts.extend(_read_prompts(f, label, cache))
    if not prompts:
        raise FactualityDataError(f"the prompt set at {p} is empty")
    return prompts


def _label_of(f: Path) -> str | None:
    """The prompt type a file's name gives; None when it names neither (then rows need a
    ``label``)."""
    name = f.name.lower()
    if "nonfactual" in name:
        return "nonfactual"
    if "factual" in name:
        return "factual"
    return None


def _read_prompts(f: Path, label: str | None, cache: str) -> list[Prompt]:
    import datasets

    if not _has_text(f):
        raise FactualityDataError(f"the prompt set {f} is empty: it has no rows")
    try:
        ds = datasets.load_dataset("json", data_files=[str(f)], split="train", cache_dir=cache)
    except Exception as e:  # datasets' own errors for malformed JSON lines
        raise FactualityDataError(
            f"{f}: not readable as JSON lines ({type(e).__name__}: {e})"
        ) from e
    missing = [c for c in PROMPT_FIELDS if c not in ds.column_names]
    if missing:
        raise FactualityDataError(
            f"{f}: missing field(s) {missing}; found {ds.column_names}; FactualityPrompts rows "
            'look like {"id": "74326", "prompt": "...", "evidence_info": [["Title", "4764846"]]}'
        )
    has_label = "label" in ds.column_names
    if label is None and not has_label:
        raise FactualityDataError(
            f"{f}: unknown prompt-set name {f.name!r}: it names neither 'factual' nor "
            f"'nonfactual' (expected {PROMPT_FILES['factual']} or {PROMPT_FILES['nonfactual']}) "
            "and its rows have no 'label' field"
        )
    columns = ds.to_dict()
    out = []
    for i in range(len(ds)):
        row = {c: columns[c][i] for c in columns}
        where = f"{f}: row {i + 1}"
        for c in PROMPT_FIELDS:
            if row[c] is None or (isinstance(row[c], str) and not row[c].strip()):
                raise FactualityDataError(f"{where}: missing field {c!r}")
        titles = _titles(row["evidence_info"], where)
        lab = row["label"] if has_label and row["label"] is not None else label
        lab = str(lab).strip().lower() if lab is not None else None
        if lab not in LABELS:
            raise FactualityDataError(f"{where}: label {lab!r} is not one of {list(LABELS)}")
        out.append(Prompt(str(row["id"]), str(row["prompt"]), lab, titles[0], titles))
    return out


def _titles(evidence_info, where: str) -> tuple[str, ...]:
    if not isinstance(evidence_info, list):
        raise FactualityDataError(
            f"{where}: evidence_info is {evidence_info!r}; expected [[title, page id], ...]"
        )
    titles: list[str] = []
    for item in evidence_info:
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise FactualityDataError(
                f"{where}: evidence_info item {item!r} is not a [title, page id] pair"
            )
        if item[0].strip() and item[0] not in titles:
            titles.append(item[0])
    if not titles:
        raise FactualityDataError(f"{where}: evidence_info names no Wikipedia title")
    return tuple(titles)


# -- Wikipedia pages -----------------------------------------------------------------------


def load_documents(path: str) -> dict[str, str]:
    """Title -> text of the user's Wikipedia pages, in the source's order."""
    import datasets

    p = Path(path).expanduser()
    if not p.exists():
        raise FactualityDataError(f"document path {str(p)!r} does not exist; {DOCUMENT_LAYOUTS}")
    empty = FactualityDataError(f"the document corpus at {p} is empty: no page with a text")
    with tempfile.TemporaryDirectory(prefix="ttr-factuality-") as cache:
        saved = p.is_dir() and any((p / f).is_file() for f in ("dataset_dict.json", "state.json"))
        builder, files = ("", []) if saved else _document_files(p)
        if not saved and builder == "json" and not any(_has_text(Path(f)) for f in files):
            raise empty  # datasets cannot read blank JSON lines files
        try:
            if saved:
                loaded = datasets.load_from_disk(str(p))
                parts = list(loaded.values()) if isinstance(loaded, dict) else [loaded]
            else:
                kwargs = {"data_files": files, "split": "train", "cache_dir": cache}
                parts = [datasets.load_dataset(builder, **kwargs)]
        except Exception as e:  # datasets' own errors for unreadable data
            if saved and _saved_without_data(p):
                raise empty from e  # datasets cannot load a saved dataset of no rows
            raise FactualityDataError(
                f"{p}: the pages are not readable ({type(e).__name__}: {e}); {DOCUMENT_LAYOUTS}"
            ) from e
        pages: dict[str, str] = {}
        repeated: list[str] = []
        for ds in parts:  # converted before the cache is deleted
            missing = [c for c in DOCUMENT_FIELDS if c not in ds.column_names]
            if missing:
                raise FactualityDataError(
                    f"{p}: the pages have no column(s) {missing}; found {ds.column_names}"
                )
            if len(ds) == 0:
                continue
            cols = ds.select_columns(list(DOCUMENT_FIELDS)).to_dict()
            for title, text in zip(cols["title"], cols["text"], strict=True):
                if isinstance(text, list):  # paragraphs
                    text = "\n".join(t for t in text if t)
                if not title or not isinstance(text, str) or not text.strip():
                    continue
                if title in pages:
                    repeated.append(title)
                pages[title] = text
    if repeated:
        raise FactualityDataError(
            f"{p}: titles given more than once ({len(repeated)}), e.g. {repeated[:5]}"
        )
    if not pages:
        raise empty
    return pages


def _has_text(f: Path) -> bool:
    with f.open(encoding="utf-8") as lines:
        return any(line.strip() for line in lines)


def _saved_without_data(p: Path) -> bool:
    """Whether every ``state.json`` of a ``save_to_disk`` folder lists no data file."""
    states = [p / "state.json"] if (p / "state.json").is_file() else sorted(p.glob("*/state.json"))
    return all(not json.loads(s.read_text()).get("_data_files") for s in states)


def _document_files(p: Path) -> tuple[str, list[str]]:
    builders = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}
    if p.is_file():
        if p.suffix not in builders:
            raise FactualityDataError(f"{p}: unknown file type {p.suffix!r}; {DOCUMENT_LAYOUTS}")
        return builders[p.suffix], [str(p)]
    for suffix in (".parquet", ".jsonl"):
        files = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix == suffix)
        if files:
            return builders[suffix], files
    raise FactualityDataError(f"no Wikipedia pages recognized in {p}; {DOCUMENT_LAYOUTS}")


# -- text ----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])(?<![\s.][A-Z]\.)(?<!^[A-Z]\.)\s+(?=[^\sa-z])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, whitespace collapsed: a break at every line break and after
    ".", "?" or "!" followed by whitespace and a character that is not a lower-case letter, except
    after an initial ("J.K. Rowling", "R. Kelly" stay whole; so does "Washington, D.C. and")."""
    out = []
    for line in text.splitlines():
        for s in _SENTENCE_END.split(line.strip()):
            s = " ".join(s.split())
            if s:
                out.append(s)
    return out


_TOKEN = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*(?:st|nd|rd|th)?)"  # numbers, ordinals
    r"|(?P<initials>(?:[A-Z]\.){2,})"  # J.K., D.C.
    r"|(?P<word>[^\W\d_][\w'’\-]*)"  # words, hyphens and apostrophes inside
    r"|(?P<other>[^\w\s])"  # punctuation ends a name
)
PARTICLES = frozenset("of de da di del della der du van von la le y".split())
FUNCTION_WORDS = frozenset(
    """a an the this that these those there here it its he she his her they their them we our
    i you your my me in on at by for from to with as of and or but nor so if when while where
    after before during since until then also however although though because is was are were
    be been has have had not no yes what which who whom whose
    how why all some many most each every both either neither one""".split()
)


def find_entities(text: str) -> list[str]:
    """Named-entity candidates of ``text`` in order of appearance, repeats kept (see the module
    docstring): capitalized-word names and numbers."""
    found: list[str] = []
    for sentence in split_sentences(text):
        run: list[str] = []  # the current name's words, particles included
        run_at_start = seen_word = False
        for m in _TOKEN.finditer(sentence):
            kind, tok = m.lastgroup, m.group()
            if kind == "num":
                _close(run, run_at_start, found)
                run = []
                found.append(re.sub(r"(st|nd|rd|th)$", "", tok))
            elif kind == "initials" or (kind == "word" and tok[0].isupper()):
                if not run:
                    run_at_start = not seen_word
                run.append(re.sub(r"['’]s$", "", tok))  # possessive
            elif kind == "word" and run and tok in PARTICLES:
                run.append(tok)
            else:
                _close(run, run_at_start, found)
                run = []
            seen_word = seen_word or kind != "other"
        _close(run, run_at_start, found)
    return found


def _close(run: list[str], at_start: bool, found: list[str]) -> None:
    """Append the name in ``run`` (trailing particles and leading function words removed) unless
    it is a lone word at the sentence's start."""
    words = list(run)
    while words and words[-1] in PARTICLES:
        words.pop()
    if at_start and len(words) == 1:
        return
    while words and words[0].lower() in FUNCTION_WORDS:
        words.pop(0)
    if words:
        found.append(" ".join(words))


def ne_error(generation: str, evidence: str) -> tuple[int, int]:
    """(entities of ``generation`` not found in ``evidence``, entities of ``generation``): an
    entity is found iff its lower-cased text occurs in the lower-cased evidence between word
    boundaries (whitespace collapsed)."""
    haystack = " ".join(evidence.split()).lower()
    entities = find_entities(generation)
    errors = sum(
        re.search(rf"(?<!\w){re.escape(e.lower())}(?!\w)", haystack) is None for e in entities
    )
    return errors, len(entities)


# -- the corpus ----------------------------------------------------------------------------


@dataclass
class FullCorpus:
    tokenizer: BpeVocab
    documents: list[Document]
    topics: list[str]  # Wikipedia titles; a Document's topic indexes this list
    evidence: dict[str, str]  # title -> page text
    prompts: dict[str, list[Prompt]]  # "validation", "test"
    sentence_end: frozenset[int]  # ids whose text ends with ".", "?" or "!"
    eos: int = 2  # the BpeVocab's "</s>"
    pad: int = 0

    def topic_tokens(self, topic_index: int) -> list[int]:
        """The title's token ids, encoded as a text's start (no leading space)."""
        return self.tokenizer.encode(self.topics[topic_index])


def build_full(
    prompts_path: str,
    documents_path: str,
    bpe_vocab: int,
    seed: int,
    max_sentence_tokens: int,
    max_document_tokens: int | None = None,
) -> FullCorpus:
    """Prompts, pages, tokenizer and training documents of the full variant.

    Every page is split into sentences (``split_sentences``); sentences of more than
    ``max_sentence_tokens`` tokens are dropped; the rest are grouped, in order, into documents
    of at most ``max_document_tokens`` tokens (default ``max_sentence_tokens``, which leaves
    room for end-of-sequence and topic prefixes when that is half the context). A document's
    first sentence is encoded as a text's start, the others with their leading space, so a
    document's tokens are the encoding of its sentences joined by spaces. Pivot: the first token
    of word floor(n / 2) of the sentence's n words (``v3_all_after_half``,
    docs/methods.md#topic_prefix_sc).
    The prompts are shuffled by ``random.Random(seed)``; validation gets the first half.
    """
    for name, v in (("bpe_vocab", bpe_vocab), ("max_sentence_tokens", max_sentence_tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise FactualityDataError(f"{name} must be a positive integer; got {v!r}")
    limit = max_sentence_tokens if max_document_tokens is None else max_document_tokens
    if limit < max_sentence_tokens:
        raise FactualityDataError(
            f"max_document_tokens {limit} is below max_sentence_tokens {max_sentence_tokens}"
        )
    prompts = load_prompts(prompts_path)
    pages = load_documents(documents_path)
    missing = sorted({p.topic for p in prompts if p.topic not in pages})
    if missing:
        raise FactualityDataError(
            f"{len(missing)} prompt topic(s) have no document in {documents_path}: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    topics = list(pages)
    sentences = [split_sentences(pages[t]) for t in topics]
    try:
        vocab = train_bpe((" ".join(s) for s in sentences), bpe_vocab, languages=())
    except ValueError as e:
        raise FactualityDataError(str(e)) from None
    documents = _documents(vocab, sentences, max_sentence_tokens, limit)
    if not documents:
        raise FactualityDataError(
            f"no sentence of the pages fits max_sentence_tokens = {max_sentence_tokens}"
        )
    order = list(prompts)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    ends = frozenset(i for i in range(4, vocab.size) if vocab.decode([i]).endswith((".", "?", "!")))
    return FullCorpus(
        tokenizer=vocab,
        documents=documents,
        topics=topics,
        evidence=pages,
        prompts={"validation": order[:half], "test": order[half:]},
        sentence_end=ends,
        eos=vocab.eos,
        pad=vocab.pad,
    )


def _encode_many(vocab: BpeVocab, texts: list[str]) -> list[list[int]]:
    """``vocab.encode`` of each text, batched through the tokenizer when it allows."""
    tok = getattr(vocab, "_tokenizer", None)
    if tok is None or not hasattr(tok, "encode_batch"):
        return [vocab.encode(t) for t in texts]
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def _documents(
    vocab: BpeVocab, pages: list[list[str]], max_sentence: int, limit: int
) -> list[Document]:
    """Per sentence, (tokens at a text's start, tokens after a space, pivot), then the pages'
    documents."""
    texts: list[str] = []
    for sents in pages:
        for s in sents:
            words = s.split()
            k = len(words) // 2
            head, rest = " ".join(words[:k]), " ".join(words[k:])
            texts += [head, " " + head, rest, " " + rest]
    ids = iter(_encode_many(vocab, texts))
    docs: list[Document] = []
    dropped = 0
    for topic, sents in enumerate(pages):
        encoded = []
        for _ in sents:
            head, head_sp, rest, rest_sp = next(ids), next(ids), next(ids), next(ids)
            if head:  # k >= 1: the rest follows the head's last word after a space
                start, after = (head + rest_sp, len(head)), (head_sp + rest_sp, len(head_sp))
            else:  # a one-word sentence: pivot 0
                start, after = (rest, 0), (rest_sp, 0)
            if max(len(start[0]), len(after[0])) > max_sentence:
                dropped += 1
                continue
            encoded.append((start, after))
        chunk: list[tuple[list[int], int]] = []
        for start, after in encoded:
            if chunk and sum(len(t) for t, _ in chunk) + len(after[0]) <= limit:
                chunk.append(after)
                continue
            if chunk:
                docs.append(_document(topic, chunk))
            chunk = [start]
        if chunk:
            docs.append(_document(topic, chunk))
    if dropped:
        log.info("dropped %d sentences of more than %d tokens", dropped, max_sentence)
    return docs


def _document(topic: int, chunk: list[tuple[list[int], int]]) -> Document:
    return Document(topic, "text", tuple(tuple(t) for t, _ in chunk), tuple(k for _, k in chunk))


# -- evaluation ----------------------------------------------------------------------------


def evaluate_full(
    model: torch.nn.Module,
    corpus: FullCorpus,
    split: str,
    eval_samples: int,
    max_new: int,
    seed: int,
    device,
) -> dict[str, float]:
    """Generations from the first ``eval_samples`` prompts of ``split`` under nucleus and
    factual-nucleus sampling: per setting the micro NE error (``ne_error_*``), entities per
    generation (``entities_*``) and distinct-2 of the token ids (``distinct2_*``)."""
    if split not in corpus.prompts:
        raise FactualityDataError(f"unknown split {split!r}; known: {sorted(corpus.prompts)}")
    if eval_samples < 1 or max_new < 1:
        raise FactualityDataError(
            f"eval_samples and max_new must be >= 1; got {eval_samples}, {max_new}"
        )
    room = model.arch.context - max_new
    if room < 1:
        raise FactualityDataError(
            f"max_new = {max_new} leaves no room for a prompt in a context of "
            f"{model.arch.context} tokens"
        )
    prompts = corpus.prompts[split][:eval_samples]
    encoded = [corpus.tokenizer.encode(p.text.strip())[-room:] for p in prompts]
    empty = [p.id for p, e in zip(prompts, encoded, strict=True) if not e]
    if empty:
        raise FactualityDataError(f"prompts {empty[:5]} have no text to encode")
    evidence = [
        "\n".join(corpus.evidence[t] for t in (p.titles or (p.topic,)) if t in corpus.evidence)
        for p in prompts
    ]
    metrics: dict[str, float] = {}
    for setting in SETTINGS:
        gen = torch.Generator(device=device).manual_seed(seed)
        rows: list[list[int]] = [[] for _ in prompts]
        for _, idx in sorted(group_by_length(encoded).items()):
            for b in range(0, len(idx), BATCH_ROWS):
                sub = idx[b : b + BATCH_ROWS]
                x = torch.tensor([encoded[i] for i in sub], dtype=torch.long, device=device)
                out = sample(model, x, max_new, setting, corpus.sentence_end, gen).tolist()
                for i, row in zip(sub, out, strict=True):
                    rows[i] = row[: row.index(corpus.eos)] if corpus.eos in row else row
        errors = entities = 0
        for row, ev in zip(rows, evidence, strict=True):
            e, n = ne_error(corpus.tokenizer.decode(row), ev)
            errors, entities = errors + e, entities + n
        name = setting.name
        metrics[f"ne_error_{name}"] = errors / entities if entities else 0.0
        metrics[f"entities_{name}"] = entities / max(1, len(prompts))
        metrics[f"distinct2_{name}"] = distinct_n(rows, 2)
    return metrics
