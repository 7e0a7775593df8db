"""Deterministic local prompt-complexity classifier (standard library only).

Decides whether a prompt goes to the small model (``"simple"``) or the large
one (``"complex"``). It runs on the Lambda cold-start path, so it is pure
Python: no third-party imports, no network, no model files, and the same text
always gets the same result (no randomness, no dependence on hash seeds).

Labeling policy it aims at
--------------------------
complex: multi-step reasoning, proofs or non-trivial computation, writing or
debugging non-trivial code, in-depth analysis / comparison / evaluation,
planning or design under constraints, long-form writing.
simple: greetings and chit-chat, short factual lookups, definitions, short
translations, spelling or grammar fixes, classification / sentiment /
extraction from short text, short summaries, simple lists and formatting.

Scoring
-------
Each feature ``f`` is a value in ``[0, 1]``. The score is a logistic squash of
a weighted sum, plus a learned correction::

    z     = BIAS + sum(FEATURE_WEIGHTS[f] * value[f]) + learned
    score = 1 / (1 + exp(-z))          # rounded to 3 decimals

``BIAS = -1.2``, so a short prompt with no signal scores about 0.23 (simple).

``learned`` is the sum of the weights (router_weights.json beside this module)
of the prompt's words, word pairs and CJK character pairs, each counted once.
They were fitted by logistic regression on the routing set's tuning split with
the rules' ``z`` as a fixed offset (evals/train_router.py, ``make
train-routing``), so they correct what the rules get wrong; there is no learned
bias. A correction of 0.25 or more is listed among the reasons with its
strongest words.

==============  ======  ==================================================
feature         weight  what fires it
==============  ======  ==================================================
length          +1.5    estimated tokens: 0 up to 48 tokens, rising
                        log-linearly to 1 at 1536 tokens
reasoning       +3.0    prove / proof that, derive, step by step, show your
                        work, reason it out, explain why / in detail,
                        analyze, compare, weigh, evaluate, critique, design
                        a, optimize, scale, trade-offs, justify, create a
                        plan/strategy, N-week plan, migrate to
                        microservices, logic puzzles and classic puzzle
                        names, "in 3 weighings", "fewest ..." (1.0); the
                        bare nouns (proof, analysis, comparison,
                        architecture ...), show that, explain, plan,
                        solve, what-if, break down (0.5); "show that" in a
                        prompt about math is a proof (1.0)
multi_part      +2.0    numbered items, bullet lists, several question
                        marks, "first ... then ...", "and also",
                        "additionally"
code            +3.0    fenced code blocks, code-like syntax, "write a
                        function/program/script", "build X in <language>",
                        debug, refactor, stack traces (1.0); language
                        names, programming concepts, "implement" (0.5)
math            +3.0    equations, math symbols / LaTeX, sin(x)-style
                        functions, calculate/compute with non-trivial
                        numbers (1.0); non-trivial arithmetic such as
                        4821 * 37, word problems with >= 3 numbers (1.5);
                        theorem, calculus, probability and other math
                        vocabulary (0.5)
constraints     +1.5    "without using", O(n) bounds (1.0); must, at
                        least / at most, budget, requirements, 51-299 word
                        limits (0.5)
output_length   +3.0    essay, detailed report, comprehensive / in-depth,
                        >= 300 words, >= 3000 characters (1000 CJK),
                        >= 40 lines, several pages, write an article, a
                        long poem / multi-section manual (1.0); detailed /
                        thorough, guide, manual, write a story / poem (0.5)
chit_chat       -3.0    greeting or small talk (hello, hola, bonjour,
                        hallo, ola, how are you, thanks ...)
factual_lookup  -1.5    short (<= 40 tokens) "what is / who is / define /
                        when was ..." question
simple_task     -2.5    translate, fix spelling/grammar, sentiment /
                        classify / extract, summarize, simple list,
                        formatting or unit conversion, rephrase
brevity         -1.0    "in one sentence", "briefly", "yes or no",
                        "just the definition", "no need for examples",
                        <= 50 words
detailed_request +2.0   a request of more than 48 tokens in the user's own
                        words (not pasted text), with no simple task and
                        no small talk: 0 at 48 tokens, 1 from 100. Long
                        descriptions of one's own situation ("we are
                        moving in July with two kids ... what first?")
                        are nearly always planning or analysis.
==============  ======  ==================================================

How a positive feature's value is computed: every cue has a label and a
strength; per label the strongest matching cue counts, the label strengths
are summed, capped at 2.0 and divided by 2. So one strong cue gives 0.5 (a
+1.5 contribution for a weight-3 feature), two strong cues saturate it. The
simple features are 0 or 1 (``chit_chat`` is 0.5 for prompts over 40 tokens).

Interactions that keep the score honest:

* Instruction region. On prompts longer than 800 characters, keyword cues
  only count fully when they occur in the first or last 400 characters (where
  the actual ask usually is); cues found only in the pasted body count at half
  strength, and simple-task cues (summarize, translate, fix the spelling ...)
  are only looked for in those two regions. This keeps "Summarize this in one
  sentence: <400 words>" simple even if the pasted text happens to mention
  "analysis" or "design". Prompts longer than 8000 characters are only
  scanned in their first and last 4000 characters (length still counts the
  whole text); this bounds latency at a few milliseconds.
* Dampening. When any of reasoning / code / math / output_length reaches 0.5
  (i.e. a strong cue fired), ``chit_chat`` and ``factual_lookup`` are dropped
  (a greeting before a real task, or a task phrased as "what is / what are",
  says nothing about its difficulty) and ``simple_task`` / ``brevity`` are
  halved ("Hi! Prove that ...", "What are the trade-offs of ...",
  "Summarize and critique ...").
* Pasted text is data. When a prompt reads as an instruction around pasted
  text ("<instruction>:" or a paragraph, then the pasted text, maybe a closing
  question; or the pasted text, then the instruction as the last paragraph)
  and the instruction alone asks a simple task, the prompt is judged on the
  instruction: fixing the typos of a paper about proofs is still a typo fix.
  The reasons say how many characters were set aside. Without a simple task
  the whole prompt counts ("Here are our figures: ... Which store is best?").
  In a prompt under 800 characters, cues after "<instruction>:" count at half
  strength, like the body of a long prompt.
* A greeting before a real request ("Good afternoon! Could you help me plan
  ...") is ignored once more than 12 tokens follow it and a complexity cue
  fired; small talk ("how are you") always counts.
* Quoted text is data. Keyword cues ignore the inside of quotes and inline
  code spans ("Give me a synonym for 'analyze'" is not an analysis request);
  structural cues (code syntax, numbers, lists) still see it.

Language coverage: keyword cues exist for English, Spanish, French, German,
Portuguese, Italian, Chinese and Japanese, plus a few Russian ones. Matching is done on a
casefolded, accent-stripped copy of the text, so "Démontrez", "demontrez",
"Schritt für Schritt" and "schritt fur schritt" all match. CJK characters count
as one token each (see :func:`estimate_tokens`).

The tier is ``"complex"`` when the rounded score is ``>= threshold``.
``confidence`` is the distance of the score from the threshold, scaled by the
room available on that side: ``(score - t) / (1 - t)`` for complex results,
``(t - score) / t`` for simple ones.

Speed: a typical prompt takes some tens of microseconds. The text is split
into words once, and a cue pattern is only run when the words its matches
start with occur, and then only where they occur (see the gates above the cue
tables); number and line patterns are only tried where digits and lines
start. These shortcuts never change a result:
tests/unit/test_classifier_speed_equivalence.py compares every output with a
plain mode (shortcuts patched out) and proves every gate sound.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "BIAS",
    "DEFAULT_THRESHOLD",
    "FEATURE_WEIGHTS",
    "Classification",
    "classify",
    "estimate_tokens",
]

DEFAULT_THRESHOLD = 0.5
BIAS = -1.2

FEATURE_WEIGHTS = MappingProxyType(
    {
        "length": 1.5,
        "reasoning": 3.0,
        "multi_part": 2.0,
        "code": 3.0,
        "math": 3.0,
        "constraints": 1.5,
        "output_length": 3.0,
        "chit_chat": -3.0,
        "factual_lookup": -1.5,
        "simple_task": -2.5,
        "brevity": -1.0,
        "detailed_request": 2.0,
    }
)

_STRONG_FEATURES = ("reasoning", "code", "math", "output_length")
_POSITIVE_FEATURES = ("reasoning", "multi_part", "code", "math", "constraints", "output_length")
_GREETING_TAIL = 12  # tokens after a greeting beyond which it is an opening, not small talk
_LEARNED_SHOWN = 0.25  # log-odds: a learned correction at least this large is listed among the reasons
_DETAIL_FLOOR = 48  # tokens of the user's own words: below this, no "detailed request"
_DETAIL_FULL = 100  # ... and the feature saturates here
_LABEL_CAP = 2.0  # summed label strength at which a positive feature saturates

_LENGTH_FLOOR = 48  # tokens: below this, length contributes nothing
_LENGTH_CEIL = 1536  # tokens: length feature saturates here
_SHORT_PROMPT = 40  # tokens: "short" for factual lookups and chit-chat
_REGION = 400  # chars at each end of the prompt treated as the instruction
_MAX_SCAN = 4_000  # chars kept from each end of very long prompts for matching (bounds latency)


@dataclass(frozen=True)
class Classification:
    tier: str  # "simple" | "complex"
    is_complex: bool
    score: float  # [0, 1], higher = more complex, rounded to 3 decimals
    confidence: float  # [0, 1], distance of score from threshold, scaled
    reasons: tuple[str, ...]


# --------------------------------------------------------------------------
# Text normalisation and token estimate
# --------------------------------------------------------------------------

class _LazyPattern:
    """A module-level regex compiled on its first use, then used directly.

    Compiling every cue costs ~25 ms (re's compiler is pure Python) and the
    gates leave most cues unused by any one prompt, so a cold start compiles
    only the ones its prompts reach. On first use the compiled pattern's
    methods (and ``pattern``, its source after ``prepare``) are copied onto the
    instance: later calls cost what re's do.
    """

    _COPIED = ("pattern", "flags", "groups", "groupindex",
               "search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")

    def __init__(self, source: str, flags: int = 0, prepare: Callable[[str], str] | None = None) -> None:
        self._source, self._flags, self._prepare = source, flags, prepare

    def __getattr__(self, name: str):  # only reached before the first use (or for unknown names)
        if name.startswith("__"):
            raise AttributeError(name)
        source = self._source if self._prepare is None else self._prepare(self._source)
        compiled = re.compile(source, self._flags)
        for attr in self._COPIED:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"_lazy({self._source[:40]!r})"


def _lazy(source: str, flags: int = 0, prepare: Callable[[str], str] | None = None) -> re.Pattern[str]:
    return _LazyPattern(source, flags, prepare)  # type: ignore[return-value]  # duck-typed re.Pattern


# Quoted / inline-code spans are data ("Give me a synonym for 'analyze'"), so
# keyword cues do not look inside them. Structural cues still see them.
# ('(?<!\w')... is (?<!\w)'... with the check after the quote, so that every
# alternative starts with a quote character and the engine scans for those fast.)
_QUOTED = _lazy(
    r"'(?<!\w')[^'\n]{1,300}'(?!\w)|\"[^\"\n]{1,3000}\"|«[^»«\n]{1,3000}»|`[^`\n]{1,300}`|「[^」「\n]{1,3000}」"
)
_QUOTE_OPENERS = ("'", '"', "«", "`", "「")  # every _QUOTED span starts with one of these


def _blank_quotes(folded: str) -> str:
    """Replace the inside of quoted spans with spaces (positions are kept).
    If nearly everything was quoted, the quotes *are* the prompt: keep it all."""
    if not any(q in folded for q in _QUOTE_OPENERS):
        return folded  # nothing can be quoted (cheaper than running _QUOTED)
    blanked = _QUOTED.sub(lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2) + m.group(0)[-1], folded)
    kept = len(blanked) - blanked.count(" ")
    total = len(folded) - folded.count(" ")
    return blanked if kept * 5 >= total else folded


def _strip_accents(s: str) -> str:
    """NFKD, then drop every combining character (used on the cue tables)."""
    decomposed = unicodedata.normalize("NFKD", s)
    if decomposed.isascii():  # most cue sources: no combining character (and a per-character scan costs ms)
        return decomposed
    for mark in {ch for ch in set(decomposed) if unicodedata.combining(ch)}:
        decomposed = decomposed.replace(mark, "")
    return decomposed


# The regexes only non-ASCII text needs are compiled on first use, so that
# cold starts with ASCII prompts do not pay for them (they are constants).
@functools.cache
def _not_marks() -> re.Pattern[str]:
    """Runs of characters that are certainly not combining marks
    (unicodedata.combining() is 0 for every one; the speed-equivalence test
    checks them all): Latin, Greek, Cyrillic, punctuation and symbols, kana,
    CJK, Hangul, full-width forms."""
    return re.compile(
        r"[\x00-\u02ff\u0370-\u0482\u048a-\u052f\u1100-\u11ff\u2000-\u20cf\u2100-\u2cee\u3000-\u3029"
        r"\u3030-\u3098\u309b-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+"
    )


_QUOTE_PAIRS = (("\u2019", "'"), ("\u2018", "'"), ("\u02bc", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u201e", '"'))


@functools.lru_cache(maxsize=8)  # the rules and the learned correction fold the same text
def _fold(text: str) -> str:
    """Lower-case, accent-free, ASCII-quote copy of ``text`` used for matching:
    the quotes made ASCII, NFKD, combining characters dropped, casefold."""
    if text.isascii():  # the common case: NFKD and the quotes change nothing
        return text.lower()
    for curly, straight in _QUOTE_PAIRS:  # str.translate is slow on non-ASCII text
        if curly in text:
            text = text.replace(curly, straight)
    decomposed = unicodedata.normalize("NFKD", text)
    # Drop the combining characters, looking each distinct candidate up once.
    for mark in {ch for ch in _not_marks().sub("", decomposed) if unicodedata.combining(ch)}:
        decomposed = decomposed.replace(mark, "")
    return decomposed.casefold()


# Code points counted as one token each by estimate_tokens.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x30FF),  # CJK punctuation, hiragana, katakana
    (0x3100, 0x31FF),  # bopomofo, hangul compat jamo, kanbun, katakana ext
    (0x3400, 0x4DBF),  # CJK ext A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half/full-width forms
    (0x20000, 0x3134F),  # CJK ext B-G
)


@functools.cache
def _cjk_runs() -> re.Pattern[str]:
    return re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES) + "]+")


# Latin-script characters (ASCII, Latin-1, Latin Extended-A/B) are counted as
# the Latin-1 ones (which encode) plus the Latin Extended ones (these runs).
_LATIN_EXTENDED_RUNS = _lazy(r"[\u0100-\u024f]+")


def estimate_tokens(text: str) -> int:
    """Rough token count: 1 per CJK character, ~4 characters per token for
    Latin-script text (runs of whitespace count as one character), ~2
    characters per token for other scripts (Cyrillic, Greek, Arabic, ...).
    """
    # str.split() and re's \s agree on what whitespace is, so this is the text
    # with every whitespace run collapsed to one space and the ends stripped.
    collapsed = " ".join(text.split())
    latin1 = len(collapsed.encode("latin-1", "ignore"))  # characters below U+0100
    if latin1 == len(collapsed):
        return math.ceil(latin1 / 4)
    cjk = sum(map(len, _cjk_runs().findall(collapsed)))
    latin = latin1 + sum(map(len, _LATIN_EXTENDED_RUNS.findall(collapsed)))
    other = len(collapsed) - cjk - latin
    return cjk + math.ceil(latin / 4) + math.ceil(other / 2)


# --------------------------------------------------------------------------
# Cue tables. Patterns are written lower-case and accent-free (they are run
# through _strip_accents at compile time so accented spellings also work) and
# matched against _fold(text). Never casefold a pattern: "\W" would become "\w".
#
# Most cue patterns carry a *gate*: groups of keys separated by " | ". Every
# match starts with a key of the first group and contains a key of each other
# group. A prompt is split into words once; a gated pattern with a group none
# of whose keys occur cannot match and is skipped, otherwise it is only tried
# where its first-group keys occur (a regex search tries every position and
# costs far more than those few tries). Neither changes a result. Keys:
#   word   a word (maximal run of ASCII letters, digits, _) equal to word
#   stem*  a word that starts with stem (4 characters or more)
#   *text  text, possibly inside a word
#   other  anything else (non-ASCII, punctuation): that text
# Words are compared on their first 6 characters (stems of 4-5 characters on
# their first 4), so a gate may let a prompt through in vain but never stops a
# match. A first group starting with "~" holds keys found *somewhere* in every
# match; such a pattern is searched in full when its gate passes. For the
# simple-task, brevity and chit-chat cues a gate must also hold when the search
# stops at the end of the instruction region (a last word there needs a stem).
# tests/unit/test_classifier_speed_equivalence.py proves every gate sound.
# --------------------------------------------------------------------------

_GATES: dict[re.Pattern[str], str] = {}  # pattern -> its gate (accent-stripped like the pattern)


# A regex source split into escapes, character classes, parentheses, bars and other runs.
_REGEX_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|[()|]|[^\\\[()|]+", re.DOTALL)


def _top_level_alternatives(pattern: str) -> list[str]:
    alternatives, current, depth = [], [], 0
    for token in _REGEX_TOKEN.findall(pattern):
        depth += (token == "(") - (token == ")")
        if token == "|" and depth == 0:
            alternatives.append("".join(current))
            current = []
        else:
            current.append(token)
    return [*alternatives, "".join(current)]


def _factor_word_boundaries(pattern: str) -> str:
    """Rewrite ``\\ba|\\bb|c`` as ``\\b(?:a|b)|c``: the same matches in the same
    order of preference, but the engine tests the boundary once per position
    instead of once per alternative (it only factors it out by itself when every
    alternative starts with it, and most cue patterns end with CJK words)."""
    parts: list[str] = []
    run: list[str] = []
    for alternative in _top_level_alternatives(pattern):
        if alternative.startswith("\\b"):
            run.append(alternative[2:])
            continue
        if run:
            parts.append("\\b(?:" + "|".join(run) + ")")
            run = []
        parts.append(alternative)
    if run:
        parts.append("\\b(?:" + "|".join(run) + ")")
    return "|".join(parts)


def _cue_source(pattern: str) -> str:
    return _factor_word_boundaries(_strip_accents(pattern))


_GATED_BY_SOURCE: dict[str, re.Pattern[str]] = {}  # as written in the tables


def _rx(pattern: str, gate: str | None = None) -> re.Pattern[str]:
    compiled = _lazy(pattern, re.MULTILINE, prepare=_cue_source)
    if gate is not None:
        if pattern in _GATED_BY_SOURCE:
            raise ValueError(f"pattern defined twice: {pattern[:60]!r}")
        _GATED_BY_SOURCE[pattern] = compiled
        _GATES[compiled] = _strip_accents(gate)
    return compiled


# "Show that ..." is a proof request when the prompt is about math (see _features).
_SHOW_THAT_SOURCE = (
    r"\bshow that\b|\bmuestra que\b|\bmontre[rz]? que\b|\bzeig(?:e|en|t)?,? (?:sie,? |mir,? )?dass\b|\bmostre que\b"
)
_SHOW_THAT_GATE = "show muestra montre* zeig* mostre | that que dass"

# Rows are (feature, label, strength, pattern, gate); the gate goes to _GATES.
_KEYWORD_CUES: tuple[tuple[str, str, float, re.Pattern[str]], ...] = tuple(
    (feature, label, strength, _rx(pattern, gate))
    for feature, label, strength, pattern, gate in (
        # ---- reasoning / analysis -------------------------------------
        (
            "reasoning",
            "proof",
            1.0,
            (
                r"\bprove\b|\bproofs? (?:that|of)\b|\bdemonstrate that\b|\bdemuestr[ae]\b|\bdemostrar\b"
                r"|\bprueb[ae] que\b|(?<!\ba )(?<!\bont )(?<!\bete )(?:\bdemontr(?:e|er|ez)\b|\bprouve[rz]?\b)"
                r"|\bbeweis(?:e|en|t)?\b|\bdemonstr(?:e|ar)\b|\bprov[ea] que\b|\bdimostr(?:a|are)\b|\bдокаж\w*"
                r"|请证明|试证|求证|証明(?:して|せよ|しなさい)"
            ),
            (
                "prove proof proofs demonstrate demuestra demuestre demostrar prueba pruebe demontr* "
                "prouve* beweis* demonstr* prova dimostr* докаж 请证明 试证 求证 証明"
            ),
        ),
        (
            "reasoning",
            "proof",
            0.5,
            (
                r"\bproofs?\b|\bdemostracion\b|\bdemonstracao\b|\bdimostrazione\b|\bдоказа\w*|证明|証明"
            ),
            "proof proofs demostracion demonstracao dimostrazione доказа 证明 証明",
        ),
        (
            "reasoning",
            "proof",
            0.5,
            _SHOW_THAT_SOURCE,
            _SHOW_THAT_GATE,
        ),
        (
            "reasoning",
            "proof",
            1.0,
            r"(?:^|(?<=[。！？，,.!?:：\s]))证明",
            "~ 证明",
        ),
        (
            "reasoning",
            "derivation",
            0.5,
            r"\bderivation\b",
            "derivation",
        ),
        (
            "reasoning",
            "derivation",
            1.0,
            r"\bderive\b|\bderiva\b|\bderivar\b|\bderive[rz]\b|\bherleit\w*|\bdeduce\b|導出|推导|推導",
            "derive deriva herleit* deduce 導出 推导 推導",
        ),
        (
            "reasoning",
            "step by step",
            1.0,
            (
                r"step[- ]by[- ]step|\bpaso a paso\b|\betape par etape\b|\bschritt fur schritt\b"
                r"|\bpasso a passo\b|\bpasso dopo passo\b|\bшаг за шагом\b|一步一步|逐步|ステップバイステップ|段階的に"
                r"|\bshow (?:your|all|the|each|all the|me the|us the) (?:work|working|steps|reasoning|calculations?"
                r"|deduction|derivation|logic|math)\b|\bshow (?:me |us )?how you\b"
                r"|\b(?:explain|justify|show|check) each (?:step|case)\b|\bchain of thought\b"
                r"|\breason (?:it out|through)\b|\bthink (?:it|this) through\b"
                r"|\bexplain your (?:reasoning|logic|thinking)\b|\bwith (?:full |detailed |clear )?reasoning\b"
                r"|\bmuestra (?:tu|el) (?:trabajo|procedimiento)\b"
                r"|\bmontre[rz]? (?:ton|votre) raisonnement\b|\bmit rechenweg\b|\bmostre (?:o|seu) raciocinio\b"
                r"|\bshow (?:work|working|steps|the formula|your formula)\b"
                r"|\bspiega(?:mi)? il (?:ragionamento|procedimento)\b"
                r"|\bmostra(?:mi)? i passaggi\b|\bexplica (?:tu|el) razonamiento\b|\bexplique (?:ton|le) raisonnement\b"
                r"|順を追って|順序立てて|一步步|分步"
            ),
            (
                "*step paso etape schritt passo шаг 一步一步 逐步 ステップバイステップ 段階的に show explain justify check chain "
                "muestra montre* mit mostre reason think with spiega spiegami mostra mostrami explica explique "
                "順を追って 順序立てて 一步步 分步 "
                "| step* paso etape schritt passo шаг 一步一步 逐步 ステップバイステップ 段階的に work working reasoning "
                "calculation* deduction derivation logic math how case thought muestra raisonnement rechenweg "
                "raciocinio out through thinking formula ragionamento procedimento passaggi razonamento 順を追って 順序立てて 一步步 分步"
            ),
        ),
        (
            "reasoning",
            "explanation",
            1.0,
            (
                r"\bexplain (?:why|in detail|in depth|the reasoning|the difference|the trade)"
                r"|\bexplica (?:por que|en detalle)|\bexplique[rz]? (?:pourquoi|en detail|por que|em detalhe)"
                r"|\berklar(?:e|en sie) (?:warum|wieso|weshalb|ausfuhrlich|im detail)|\bspiega perche\b"
                r"|\bобъясни,? почему\b"
            ),
            "explain explica explique* erklar* spiega объясни",
        ),
        (
            "reasoning",
            "explanation",
            0.5,
            (
                r"\bexplain\w*|\bexplica\w*|\bexplique\w*|\berklar(?:e|en|ung)\b"
                r"|\bhow (?:does|do) .{1,60}\bwork\b|\bcomo funciona\b|\bcomment fonctionne\b|\bwie funktioniert\b"
                r"|解释|説明|为什么|なぜ"
            ),
            (
                "explain* explica* explique* erklar* how como comment wie 解释 説明 为什么 なぜ "
                "| explain* explica* explique* erklar* work funciona fonctionne funktioniert 解释 説明 为什么 なぜ"
            ),
        ),
        (
            "reasoning",
            "analysis",
            1.0,
            (
                r"\banaly[sz](?:e|es|ing|ed)\b|\banaliz(?:a|ar|e)\b|\banalys(?:er|ez)\b|\banalisa\b"
                r"|\banalysiere\w*|\banalis(?:e|ar)\b|\banalizza\w*|\bпроанализиру\w*|\bанализ\w*|分析"
            ),
            "analys* analyz* analiz* analis* анализ проанализиру 分析",
        ),
        (
            "reasoning",
            "analysis",
            0.5,
            r"\banalysis\b|\banalisis\b|\banalyse\b|\banalisi\b|\bbreak (?:it |this |them |that |these )?down\b"
            r"|\bbreakdown of\b",
            "analys* analis* break breakdown | analys* analis* down breakdown",
        ),
        (
            "reasoning",
            "analysis",
            1.0,
            (
                r"\b(?:give|provide|write|do|make|perform|conduct|carry out)\b[^.?!\n]{0,25}"
                r"\b(?:analysis|comparison|evaluation|assessment|critique)\b"
            ),
            (
                "give provide write do make perform conduct carry "
                "| analysis comparison evaluation assessment critique"
            ),
        ),
        (
            "reasoning",
            "comparison",
            1.0,
            (
                r"\bcompar(?:e|es|ing|a|ar|er|ez)\b|\bcontrast(?:e|es|a|ar|er|ez)?\b|\bvergleiche[n]?\b"
                r"|\bweigh (?:both|them|the|up|these|those|my|our|your|it|each)\b"
                r"|\bconfronta\w*|\bсравни\w*|比较一下|进行比较|对比一下|对比分析|比較して|比較し、|を比較"
            ),
            "compar* contrast* weigh vergleich* confronta* сравни 比较一下 进行比较 对比一下 对比分析 比較して 比較し、 を比較",
        ),
        (
            "reasoning",
            "comparison",
            0.5,
            (
                r"\bcompar(?:ison|acion|aison|acao)\b|\bvergleich\b|\bversus\b|\bvs\.?(?=\s)|\bfrente a\b"
                r"|\bdifference between\b|\bdiferencia entre\b|\bdifference entre\b|\bunterschied zwischen\b"
                r"|\bdiferenca entre\b|区别|違い|比较|比較|对比"
            ),
            "compar* vergleich* versus vs frente difference diferencia unterschied diferenca 区别 違い 比较 比較 对比",
        ),
        (
            "reasoning",
            "evaluation",
            1.0,
            (
                r"\bevaluate\b|\bassess(?:es|ing)?\b|\bevalu(?:a|e|ar)\b|\bevaluer\b|\bevaluez\b|\bbewerte\w*"
                r"|\bbeurteile\w*|\bavali(?:e|ar)\b|评估|評価"
            ),
            "evalua* evalue* assess* bewerte* beurteile* avalie avaliar 评估 評価",
        ),
        (
            "reasoning",
            "evaluation",
            0.5,
            r"\bevaluation\b|\bassessment\b|\bevaluacion\b|\bavaliacao\b|\bbewertung\b",
            "evalua* assess* avaliacao bewert*",
        ),
        (
            "reasoning",
            "critique",
            1.0,
            (
                r"\bcritique\w*|\bcriticize\b|\bcritica\b|\bcriticar\b|\bkritisier\w*"
                r"|\breview (?:my|this|the) (?:code|design|architecture|essay|paper|argument|proposal|plan)\b|批判"
            ),
            "critiq* critic* kritisier* review 批判",
        ),
        (
            "reasoning",
            "design",
            1.0,
            (
                r"\bdesign (?:a|an|the|my|our|your|some|and)\b|\bdesigning (?:a|an|the)\b|\bsystem design\b"
                r"|\bdesign (?:patterns?|doc(?:ument)?s?|decisions?|choices)\b|\barchitect (?:a|an|the)\b"
                r"|\bdisen(?:a|ar|e)(?:me|nos|le|les|lo|la|los|las)?\b|\bconcev(?:oir|ez)\b|\bconcois\b|\bentw(?:irf|erfen)\b"
                r"|\bprojet(?:e|ar)\b|\bprogett\w*|设计|設計"
            ),
            "design system architect disena disene disenar concev* concois entwirf entwerfen projet* progett* 设计 設計",
        ),
        (
            "reasoning",
            "design",
            1.0,
            (
                r"\bhow would you (?:design|build|structure|architect|approach|set up|organi[sz]e|scale|model)\b"
                r"|\bwie wurdest du\b[^.?!\n]{0,60}\b(?:aufbauen|gestalten|entwerfen|strukturieren|umsetzen|planen)\b"
                r"|\bcomo (?:voce |tu )?(?:estruturaria|projetaria|montaria|organizaria|arquitetaria)\b"
                r"|\bcomo (?:estructurarias|disenarias|montarias|organizarias|plantearias)\b"
                r"|\bcomment (?:tu |vous )?(?:structurerais|concevrais|organiserais|construirais|structureriez"
                r"|concevriez|organiseriez)\b|\bcome (?:strutturesti|progetteresti|organizzeresti|costruiresti)\b"
            ),
            (
                "how wie como comment come "
                "| design build structure architect approach set organise organize scale model aufbauen gestalten "
                "entwerfen strukturieren umsetzen planen estruturaria projetaria montaria organizaria arquitetaria "
                "estructurarias disenarias montarias organizarias plantearias structurerais concevrais organiserais "
                "construirais structureriez concevriez organiseriez strutturesti progetteresti organizzeresti "
                "costruiresti"
            ),
        ),
        (
            "reasoning",
            "design",
            0.5,
            (
                r"\bdesign\b|\bdiseno\b|\bentwurf\b|\barchitectures?\b|\barquitectura\b|\barquitetura\b"
                r"|\bmonolit\w*|\bmonolith\w*|\bmicro-?servic\w*|\bmicrosservic\w*|\bevent-driven\b|\bserverless\b"
                r"|\bmulti-?tenant\w*|\bmandanten\w*|\boffline-first\b"
            ),
            "design diseno entwurf architect* arquitectura arquitetura monolit* monolith* micro microservic* "
            "microsservic* event serverless multi multitenant* mandanten* offline",
        ),
        (
            "reasoning",
            "scalability",
            1.0,
            (
                r"\bscalab\w*|\bscale (?:a|an|the|this|it|to|up|out)\b|\bhigh[- ]availability\b|\bfault[- ]toleran\w*"
                r"|\bdistributed systems?\b|\bload[- ]balanc\w*|\bescalab\w*|\bskalierbar\w*|\bescalavel\b"
                r"|\bpasser a l'echelle\b"
            ),
            (
                "scalab* scale high fault distributed load escalab* skalierbar* escalavel passer "
                "| scalab* scale availability toleran* distributed balanc* escalab* skalierbar* echelle"
            ),
        ),
        (
            "reasoning",
            "optimization",
            1.0,
            (
                r"\boptimi[sz](?:e|ing)\b|\boptimiz(?:a|ar)\b|\boptimis(?:er|ez)\b"
                r"|\boptimiere\w*|\botimiz(?:e|ar)\b|优化|最適化"
            ),
            "optimi* otimiz* 优化 最適化",
        ),
        (
            "reasoning",
            "optimization",
            0.5,
            r"\boptimi[sz]ation\b|\boptimizacion\b|\boptimierung\b|\botimizacao\b",
            "optimi* otimiz*",
        ),
        (
            "reasoning",
            "trade-offs",
            1.0,
            (
                r"\btrade[- ]?offs?\b|\bpros and cons\b|\badvantages and disadvantages\b|\bstrengths and weaknesses\b"
                r"|\bventajas y desventajas\b|\bpros y contras\b|\bavantages et (?:les )?inconvenients\b"
                r"|\bvor- und nachteile\b|\bvorteile und nachteile\b|\bvantagens e desvantagens\b"
                r"|\bpros e contras\b|\bpuntos fuertes y debiles\b|\bpunti di forza e (?:di )?debolezza\b"
                r"|\bpontos fortes e fracos\b|\bpoints forts et (?:les )?points faibles\b|利弊|优缺点|メリットとデメリット"
            ),
            (
                "trade tradeo* pros advantages strengths ventajas avantages vor vorteile vantagens puntos punti pontos "
                "points 利弊 优缺点 メリットとデメリット "
                "| trade tradeo* pros advantages strengths ventajas avantages nachteile vantagens debiles debolezza "
                "fracos faibles 利弊 优缺点 メリットとデメリット"
            ),
        ),
        (
            "reasoning",
            "justification",
            1.0,
            r"\bjustif(?:y|ies|ication)\b|\bjustifi(?:ca|que|quez|er)\b|\bbegrund\w*",
            "justif* begrund*",
        ),
        (
            "reasoning",
            "planning",
            1.0,
            (
                r"\b(?:create|develop|build|draft|write|make|devise|outline|propose|plan|prepare|design)\b[^.?!\n]{0,40}"
                r"\b(?:strategy|plan|roadmap|itinerary|curriculum|study plan|migration plan|go-to-market)\b"
                r"|\b(?:(?:crea|elabora|desarrolla|dame|disena|prepara|planifica|arma|propon|organiza)(?:me|nos)?|hazme|haznos|haz)\b"
                r"[^.?!\n]{0,40}\b(?:estrategia|plan|hoja de ruta|itinerario|rutina|calendario|cronograma)\b"
                r"|\b(?:cree[rz]?|elabore[rz]?|etablis|etablissez|propose[rz]?|prepare[rz]?|planifie[rz]?)\b"
                r"[^.?!\n]{0,40}"
                r"\b(?:strategie|plan|feuille de route|itineraire)\b"
                r"|\b(?:erstelle|entwickle|plane|entwirf)\b[^.?!\n]{0,40}"
                r"\b(?:strategie|plan|fahrplan|reiseplan|lernplan|roadmap)\b"
                r"|\b(?:crie|elabore|desenvolva|monte|planeje|prepare)\b[^.?!\n]{0,40}"
                r"\b(?:estrategia|plano|roteiro|cronograma)\b"
            ),
            (
                "create develop build draft write make devise outline propose* plan prepar* design crea elabor* "
                "desarrolla dame disena planifi* cree* etablis* erstelle entwickle plane entwirf crie desenvolva "
                "monte planeje haz hazme haznos arma* propon* organiza* crea* elabor* desarr* dame* disena* prepar* "
                "| strategy plan roadmap itinerary curriculum market estrategia hoja itinerario strategie feuille "
                "itineraire fahrplan reiseplan lernplan plano roteiro cronograma rutina calendario"
            ),
        ),
        (
            "reasoning",
            "planning",
            1.0,
            (
                r"\b\d{1,2}[- ](?:week|day|month)s? (?:\w+ )?(?:plan|program|programme|schedule|itinerary|curriculum"
                r"|training|roadmap)\b|\b(?:plan|programa|plano|programme|piano|rutina)\b[^.?!\n]{0,30}\b(?:de|di|sur)"
                r" \d{1,2} (?:semanas|semaines|settimane|dias|jours|giorni|meses|mois|mesi)\b"
                r"|\b\d{1,2}-(?:wochen|tage|monats)-?(?:plan|programm|trainingsplan)\b"
            ),
            (
                "~ week weeks day days month months semanas semaines settimane dias jours giorni meses mois mesi "
                "wochen tage* monats"
            ),
        ),
        (
            "reasoning",
            "planning",
            1.0,
            (
                r"\b(?:week|day|month|phase|stage)[- ]by[- ](?:week|day|month|phase|stage)\b|\bsemana a semana\b"
                r"|\bsemaine par semaine\b|\bwoche fur woche\b|\bmes a mes\b"
                r"|\bmigra\w*[^.?!\n]{0,80}\b(?:micro-?servic\w*|microsservic\w*|monolit\w*|monolith\w*|cloud"
                r"|kubernetes|serverless|aws|gcp|azure|postgres\w*|mysql|architecture|arquitetura|arquitectura)\b"
                r"|計画を(?:立て|作)|プランを(?:立て|作|考え)|スケジュールを(?:立て|組)|(?:制定|做|规划|设计)(?:一个|一份)?"
                r".{0,12}(?:计划|方案|规划|路线图)"
            ),
            (
                "week day month phase stage semana semaine woche mes migra* 計画を プランを スケジュールを 制定 做 规划 设计 "
                "| week day month phase stage semana semaine woche mes micro microservic* microsservic* monolit* "
                "monolith* cloud kubernetes serverless aws gcp azure postgres* mysql architecture arquitetura "
                "arquitectura 立て 作 考え 組 计划 方案 规划 路线图"
            ),
        ),
        (
            "reasoning",
            "planning",
            0.5,
            (
                r"\bplan (?:a|an|the|my|out|for)\b|\bstrateg\w*|\broadmap\b|\bplanifi\w*|\bplanej\w*|计划|計画|规划"
                r"|方案|戦略|策略|ロードマップ|路线图"
            ),
            "plan strateg* roadmap planifi* planej* 计划 計画 规划 方案 戦略 策略 ロードマップ 路线图",
        ),
        (
            "reasoning",
            "problem solving",
            0.5,
            (
                r"\bsolve\b|\bresuelve\b|\bresolver\b|\bresous\b|\bresolvez\b|\bresoudre\b|\bresolva\b"
                r"|\bfigure out\b|\bwork out\b|\bpuzzle\b|\briddle\b"
            ),
            "solve resuelve resolv* resous resoudre figure work puzzle riddle",
        ),
        (
            "reasoning",
            "puzzle",
            1.0,
            (
                r"\blogic(?:al)? (?:puzzles?|problems?|riddles?|grids?)\b|\bbrain ?teasers?\b"
                r"|\bpuzzle\b[^.?!\n]{0,80}\b(?:solve|solution|crack|answer|deduc\w*|logically|reason\w*)"
                r"|\b(?:solve|crack|figure out)\b[^.?!\n]{0,40}\b(?:puzzles?|riddles?)\b"
                r"|\bacertijos?\b|\benigmes?\b|\bcasse-tetes?\b|\bratsel\w*|\blogikratsel\w*|\bcharadas?\b"
                r"|谜题|推理题|智力题|逻辑题|パズル|謎解き|論理問題"
            ),
            (
                "logic* brain* puzzle solve crack figure acertijo* enigme* casse ratsel* logikratsel* charada* "
                "谜题 推理题 智力题 逻辑题 パズル 謎解き 論理問題"
            ),
        ),
        (
            "reasoning",
            "estimate",
            1.0,
            (
                r"\b(?:roughly|approximately|about) how (?:many|much)\b|\bestimate (?:how|the number|the total)\b"
                r"|\bfermi\b|\bback[- ]of[- ]the[- ]envelope\b|\bballpark\b|\bestime[rz]?\b|\bstima\b"
                r"|\bschatz(?:e|en)?\b|\bestimativa\b|\bgrob geschatzt\b|大概有多少|ざっくり"
            ),
            (
                "roughly approximately about estimate fermi back ballpark estime estimer estimez stima schatz "
                "schatze schatzen estimativa grob 大概有多少 ざっくり"
            ),
        ),
        (
            "reasoning",
            "puzzle",
            1.0,
            (
                r"\b(?:twice|double|triple|three times|half|doppio|triplo|dobro|doble|doppelt so alt|dreimal so alt"
                r"|le double|le triple|(?:[2-9]|10)x)\b[^.?!\n]{0,40}\b(?:age|ages|old|anni|eta|idade|edad|age|alter|ans)\b"
                r"|\bwhat (?:day of the week|weekday)\b|\bque dia da semana\b|\bque dia de la semana\b"
                r"|\bquel jour de la semaine\b|\bwelche[rn]? wochentag\b|\bche giorno della settimana\b|星期几|何曜日"
            ),
            (
                "~ twice double triple three half doppio triplo dobro doble doppelt dreimal le 0x 1x 2x 3x 4x 5x 6x "
                "7x 8x 9x 10x day weekday que quel welche welcher welchen che 星期几 何曜日"
            ),
        ),
        (
            "reasoning",
            "puzzle",
            1.0,
            (
                r"\bmonty hall\b|\bknights? and knaves\b|\btowers? of hanoi\b|\bbirthday (?:paradox|problem)\b"
                r"|\bprisoner'?s dilemma\b|\btwo envelopes?\b|\bzebra puzzle\b|\beinstein'?s (?:riddle|puzzle)\b"
                r"|\briver crossing\b|\bmissionaries and cannibals\b|\b(?:eight|8|n)[- ]queens?\b"
                r"|\b(?:lies|lying|liars?|tells? the truth|truth-?tellers?|lugner|mentiros[oa]s?|menteurs?"
                r"|bugiard[oi]|mentiroso)\b[^.?!\n]{0,80}\b(?:who|which|quien|qui|wer|quem|chi|honest|lying|lies"
                r"|truth)\b|\bfewest\b|说谎|嘘つき|最少"
            ),
            (
                "monty knight knights towers tower birthday prisoner* two zebra einstein* river missionaries eight 8 "
                "n lies lying liar liars tell tells truth* lugner mentiros* menteur* bugiard* fewest 说谎 嘘つき 最少 "
                "| monty knaves hanoi paradox problem dilemma envelope envelopes zebra riddle puzzle crossing "
                "cannibals queen queens who which quien qui wer quem chi honest lying lies truth fewest 说谎 嘘つき 最少"
            ),
        ),
        (
            "reasoning",
            "puzzle",
            1.0,
            (
                r"\b(?:in|within|using|with) (?:\d{1,2}|two|three|four|five|six|seven) (?:weighings|moves|steps"
                r"|tries|guesses|questions|comparisons|crossings|trips|cuts)\b"
                r"|\b(?:minimum|minimal|fewest|least|smallest|shortest|optimal)\b[^.?!\n]{0,20}\b(?:number of"
                r" (?:moves|steps|picks|weighings|crossings|trips|questions|guesses|cuts|colou?rs)|sequence of (?:moves"
                r"|steps)|weighings|crossings)\b|\bweighings\b"
            ),
            (
                "in within using with minimum minimal fewest least smallest shortest optimal weighings "
                "| weighings moves steps tries guesses questions comparisons crossings trips cuts picks colors "
                "colours"
            ),
        ),
        (
            "reasoning",
            "hypothetical / implications",
            0.5,
            (
                r"\bwhat would happen if\b|\bwhat if\b|\bhow would you\b|\bimplications?\b|\bconsequences\b"
                r"|\bque pasaria si\b|\bque se passerait-il si\b|\bwas ware,? wenn\b|\bo que aconteceria se\b"
            ),
            (
                "what how implication* consequences que was o "
                "| happen if would implication* consequences pasaria passerait ware aconteceria"
            ),
        ),
        (
            "reasoning",
            "critical reasoning",
            0.5,
            (
                r"\breason(?:ing)? about\b|\bthink (?:through|carefully)\b|\broot cause\b|\bcritically\b"
                r"|\bto what extent\b|\bargue (?:for|against|that)\b"
            ),
            (
                "reason think root critically to argue "
                "| reason think root critically extent argue"
            ),
        ),
        # ---- code ----------------------------------------------------------
        (
            "code",
            "write code",
            1.0,
            (
                r"\b(?:write|implement|create|build|code|generate|give me|need|want)\b[^.?!\n]{0,40}"
                r"\b(?:function|program|script|class|method|algorithm|api|endpoint|query|regex|regular expression"
                r"|unit tests?|module|library|parser|cli|app|application|bot|server|sql|code)\b"
                r"|\b(?:escribe|implementa|crea|programa)\b[^.?!\n]{0,40}"
                r"\b(?:funcion|programa|script|clase|metodo|algoritmo|consulta|codigo)\b"
                r"|\b(?:ecris|ecrivez|ecrire|implemente[rz]?|cree[rz]?)\b[^.?!\n]{0,40}"
                r"\b(?:fonction|programme|script|classe|methode|algorithme|requete|code)\b"
                r"|\b(?:schreibe?|implementiere|erstelle|programmiere)\b[^.?!\n]{0,40}"
                r"\b(?:funktion|programm|skript|klasse|methode|algorithmus|abfrage|code)\b"
                r"|\b(?:escreva|implemente|crie|programe)\b[^.?!\n]{0,40}"
                r"\b(?:funcao|programa|script|classe|metodo|algoritmo|consulta|codigo)\b"
                r"|写.{0,12}(?:函数|程序|代码|脚本)|编写|(?:関数|プログラム|コード|スクリプト)を(?:書|作)"
            ),
            (
                "write implement* create build code generate give need want escribe crea program* ecris ecrivez ecrire cree* "
                "schreib* erstelle escreva crie 写 编写 関数 プログラム コード スクリプト "
                "| function program script class clase classe klasse method metodo algorithm api endpoint query "
                "regex regular unit module library parser cli app application bot server sql code codigo funcion "
                "consulta fonction requete funktion skript abfrage funcao 代码 函数 程序 脚本 编写 を書 を作"
            ),
        ),
        (
            "code",
            "write code",
            1.0,
            (
                r"\b(?:write|implement|build|create|code|make|develop|program|escribe|escribeme|implementa|crea|programa"
                r"|ecris|ecrire|ecrivez|implemente[rz]?|schreib\w*|implementiere|erstelle|programmiere|escreva|crie"
                r"|programe|scrivi|scrivimi|realizza|need|want)\b[^.?!\n]{0,80}\b(?:in|en|em|auf|mit|using|usando"
                r"|utilisant|con) (?:python|javascript"
                r"|typescript|java|kotlin|swift|rust|go|golang|haskell|ruby|php|scala|perl|bash|powershell|c\+\+|c#|c"
                r"|lua|elixir|erlang|ocaml|dart|solidity|verilog|vhdl|cobol|fortran|matlab|julia|zig|clojure|lisp"
                r"|scheme|prolog|sql)(?![\w+#])(?! (?:major|minor|sharp|flat)\b)"
            ),
            (
                "write implement create build code make develop program escribe escribeme implementa crea programa "
                "ecris ecrire ecrivez implemente* schreib* implementiere erstelle programmiere escreva crie programe "
                "scrivi scrivimi realizza need want "
                "| python javascript typescript java kotlin swift rust go golang haskell ruby php scala perl bash "
                "powershell c lua elixir erlang ocaml dart solidity verilog vhdl cobol fortran matlab julia zig "
                "clojure lisp scheme prolog sql"
            ),
        ),
        (
            "code",
            "write code",
            1.0,
            (
                r"用 ?(?:python|javascript|typescript|java|go|golang|rust|c\+\+|c#|c|sql|haskell|ruby|php|kotlin|swift)"
                r" ?(?:写|实现|编写|做)"
                r"|\b(?:python|javascript|typescript|java|go|golang|rust|c\+\+|c#|c|sql|haskell|ruby|php|kotlin|swift)"
                r" ?で.{0,20}(?:書|実装|作)"
            ),
            (
                "~ 用 で | python javascript typescript java go golang rust c sql haskell ruby php kotlin swift"
            ),
        ),
        (
            "code",
            "write code",
            1.0,
            (
                r"\b(?:parser|interpreter|compiler|server|client|library|cli|bot|scraper|crawler|filter|cache|queue"
                r"|tree|heap|trie|allocator|emulator|engine|solver|tokenizer|lexer|linter|driver|daemon|plugin"
                r"|extension)\b[^.?!\n]{0,30}\bin (?:python|javascript|typescript|java|kotlin|swift|rust|go|golang"
                r"|haskell|ruby|php|scala|c\+\+|c#|c|zig|elixir|erlang|ocaml|clojure)(?![\w+#])"
            ),
            (
                "parser interpreter compiler server client library cli bot scraper crawler filter cache queue tree "
                "heap trie allocator emulator engine solver tokenizer lexer linter driver daemon plugin extension "
                "| python javascript typescript java kotlin swift rust go golang haskell ruby php scala c zig elixir "
                "erlang ocaml clojure"
            ),
        ),
        (
            "code",
            "write code",
            1.0,
            (
                r"(?:^|(?<=[.!?] ))(?<![a-z0-9_])(?:python|js|javascript|typescript|ts|go|golang|rust|java|kotlin|swift|ruby|php|c\+\+"
                r"|c#|sql postgres|sql mysql|sql|postgres|bash script|bash-skript|bash|script bash|powershell|regex"
                r"|dockerfile|terraform module|terraform|apps script|haskell|scala|numpy|pandas|react|excel formula)"
                r"(?![a-z0-9_])(?: \w+)?\s?[:：]|\b(?:regex|regexp|regular expression|expresion regular|expressao regular"
                r"|regulare[rn]? ausdruck) (?:for|pour|para|per|fur)\b|\bsql(?:查|で)"
            ),
            (
                "~ python js javascript typescript ts go golang rust java kotlin swift ruby php c sql postgres bash "
                "script powershell regex dockerfile terraform apps haskell scala numpy pandas react excel regexp "
                "regular expresion expressao regulare regularer regularen sql查 sqlで"
            ),
        ),
        (
            "code",
            "implementation",
            0.5,
            r"\bimplement\w*|\bimplementa\w*|实现|実装",
            "implem* 实现 実装",
        ),
        (
            "code",
            "debugging",
            1.0,
            (
                r"\bdebug\w*|\brefactor\w*|\btraceback\b|\bstack ?trace\b|\bsegmentation fault\b|\bsegfault\b"
                r"|\bcompil\w* error\b|\bsyntax ?error\b|\btypeerror\b|\bnullpointerexception\b|\bindexerror\b"
                r"|\bkeyerror\b|\bzerodivisionerror\b|\bdepura\w*|\brefactoriz\w*|\bdebogu\w*|\brefatora?\w*"
                r"|\brefaktorier\w*|调试|デバッグ"
            ),
            (
                "debug* refact* traceback stack* segmentation segfault compil* syntax* typeerror "
                "nullpointerexception indexerror keyerror zerodivisionerror depura* debogu* refator* refaktorier* "
                "调试 デバッグ"
            ),
        ),
        (
            "code",
            "programming language",
            0.5,
            (
                r"(?<![a-z0-9_])(?:python|javascript|typescript|java|kotlin|swift|rust|golang|haskell|ruby|php|scala|perl"
                r"|sql|bash|powershell|react|django|flask|numpy|pandas|node\.js|nodejs|html|css|kubernetes"
                r"|docker|terraform|fortran|matlab|lua|elixir|erlang|ocaml|dart|solidity|verilog|vhdl|cobol|postgres"
                r"|postgresql|mysql|sqlite|bigquery|svelte|vue|angular|nextjs|next\.js)(?![a-z0-9_])"
                r"|(?<![a-z0-9_])(?:c\+\+|c#)"
            ),
            (
                "python javascript typescript java kotlin swift rust golang haskell ruby php scala perl sql bash "
                "powershell react django flask numpy pandas node nodejs html css kubernetes docker terraform "
                "fortran matlab lua elixir erlang ocaml dart solidity verilog vhdl cobol c postgres postgresql mysql "
                "sqlite bigquery svelte vue angular nextjs next"
            ),
        ),
        (
            "code",
            "programming concepts",
            0.5,
            (
                r"\b(?:algorithms?|data structures?|time complexity|space complexity|big[- ]o|recursion|recursive"
                r"|dynamic programming|binary search|linked list|hash ?map|hash table|concurrency|multithread\w*"
                r"|race condition|deadlock|memory leak|apis?|microservices?|database schema|unit tests?|regex"
                r"|regular expression|compiler|async|await|lru|cache|algoritmo|algorithme|algorithmus"
                r"|estructura de datos|structure de donnees|datenstruktur|estrutura de dados|interpreter|lexer"
                r"|tokenizer|red-black trees?|avl trees?|b-trees?|binary trees?|priority queues?"
                r"|garbage collector|state machines?|solver|crdts?|paxos|mutex|semaphores?|thread-safe|interprete"
                r"|web scraper|scraper|crawler|rate limit\w*|parser|bloom filter"
                r"|lock-free)\b"
            ),
            (
                "algorithm* data time space big recursi* dynamic binary linked hash* concurrency multithread* race "
                "deadlock memory api apis microservice* database unit regex regular compiler async await lru cache "
                "estructura structure estrutura datenstruktur interpreter lexer tokenizer red avl b priority "
                "garbage state solver crdt crdts paxos mutex semaphore* thread lock interprete web scraper crawler rate "
                "parser bloom "
                "| algorithm* structure* estructura estrutura datenstruktur complexity big recursi* dynamic binary "
                "linked hash* concurrency multithread* race deadlock leak api apis microservice* schema unit regex "
                "regular compiler async await lru cache interpreter lexer tokenizer tree trees queue queues "
                "collector machine machines solver crdt crdts paxos mutex semaphore* safe free interprete scraper crawler "
                "limit* parser filter"
            ),
        ),
        # ---- math ----------------------------------------------------------
        (
            "math",
            "theorem",
            0.5,
            (
                r"\btheorem\w*|\blemma\b|\bcorollary\b|\baxioms?\b|\bconjecture\b|\bteorema\b|\btheoreme\b"
                r"|\blemme\b|\bconjetura\b|\bvermutung\b|\bconjectura\b|定理|引理"
            ),
            (
                "theorem* lemma corollary axiom axioms conjecture conjectura conjetura teorema lemme vermutung 定理 "
                "引理"
            ),
        ),
        (
            "math",
            "calculus",
            0.5,
            (
                r"\bintegrals?\b|\bintegrale\b|\bintegration by parts\b|\bderivatives?\b|\bdifferentiat\w*"
                r"|\blimit of\b|\blim_|\bconverge\w*|\bdiverge\w*|\bdifferential equations?\b|\bderivada\b"
                r"|\bderivee\b|\bableitung\b|\bintegrier\w*|\bgrenzwert\b|\becuacion diferencial\b"
                r"|\bequation differentielle\b|\bdifferentialgleichung\b|\bequacao diferencial\b"
                r"|微分|积分|積分|导数|極限|极限"
            ),
            (
                "integr* derivative* differen* limit lim_* converg* diverg* derivada derivee ableitung grenzwert "
                "ecuacion equation equacao 微分 积分 積分 导数 極限 极限"
            ),
        ),
        (
            "math",
            "probability / statistics",
            0.5,
            (
                r"\bprobabilit\w*|\bexpected value\b|\bvariance\b|\bstandard deviation\b|\bbayes\w*"
                r"|\bstochastic\b|\bprobabilidad\b|\bwahrscheinlichkeit\w*|\bprobabilidade\b"
                r"|\berwartungswert\b|概率|確率"
            ),
            "probab* expected variance standard bayes* stochastic wahrscheinlichkeit* erwartungswert 概率 確率",
        ),
        (
            "math",
            "combinatorics",
            1.0,
            (
                r"\bin how many (?:different )?ways\b|\bhow many (?:different )?ways\b|\bnumber of ways\b"
                r"|\bhow many \d+-digit\b"
                r"|\bdigits? (?:sum|summing|add up)\b|\bquanti modi\b|\bde combien de facons\b"
                r"|\bwie viele moglichkeiten\b|\bde quantas (?:maneiras|formas)\b|\bde cuantas (?:maneras|formas)\b"
                r"|\bexpected number of\b|多少种|何通り"
            ),
            (
                "in how number digit digits quanti de wie expected 多少种 何通り "
                "| ways digit digits modi facons moglichkeiten maneiras formas maneras expected 多少种 何通り"
            ),
        ),
        (
            "math",
            "finance math",
            0.5,
            (
                r"\b(?:annual|annuali[sz]ed|average) growth rate\b|\bgrowth rate\b|\bcompound(?:ed)? (?:interest|growth|annual)\b"
                r"|\bcagr\b|\bcumulative\b|\binterest rate\b|\bpercentage (?:change|points?)\b"
                r"|\bnet present value\b|\bnpv\b|\bamorti[sz]\w*|\bbreak-even\b|\binteres compuesto\b"
                r"|\binterets composes\b|\bzinseszins\w*|\bjuros compostos\b|\bmonthly payments?\b|\bapr\b"
                r"|\bmortgage\b|\bloan\b|\bmutuo\b|\bfinanciamento\b|\bhipoteca\b|\bemprunt\b|\bkredit\b|复利|複利|房贷|ローン"
            ),
            (
                "annual annuali* average growth compound* cagr cumulative interest percentage net npv amorti* break "
                "interes interets zinseszins* juros monthly apr mortgage loan mutuo financiamento hipoteca emprunt kredit "
                "复利 複利 房贷 ローン"
            ),
        ),
        (
            "math",
            "math terms",
            0.5,
            (
                r"\bmatri(?:x|ces)\b|\beigen\w*|\bdeterminant\b|\bvector space\b|\bprimes\b|\bprime numbers?\b"
                r"|\birrational\w*|\brational numbers?\b|\bmodulo\b|\bmodular arithmetic\b|\bgcd\b|\blcm\b"
                r"|\bpolynomials?\b|\blogarithm\w*|\bfactorial\b|\bcombinatori\w*|\bpermutations?\b|\bsqrt\b"
                r"|\bsquare root\b|\bequations?\b|\binequalit\w*|\bnumeros primos\b|\bnombres premiers\b"
                r"|\bprimzahl\w*|\bmatriz\b|\bmatrice\b|\birracional\b|\birrationnel\w*|\braiz (?:cuadrada|quadrada)\b"
                r"|\bracine carree\b|\bquadratwurzel\b|\becuacion\w*|\bgleichung\w*|\bequacao\b|\bequacoes\b"
                r"|\bnatural numbers?\b|\bintegers?\b|\bprime factori[sz]ation\b|\bdivisible\b|\bnaturliche zahl\w*"
                r"|\bprimfaktor\w*|\bganze zahl\w*|\bteilbar\w*|\bnombres? (?:entiers?|naturels?)\b|\bdivisivel\b"
                r"|\bnumeros? (?:naturales|naturais|enteros|inteiros|primos?)\b|\bnumero primo\b"
                r"|\bsubsequences?\b|\bsequences?\b|\bseries\b|\binfinity\b|\bsous-suites?\b|\bsuites? (?:reelles?|numeriques?)\b"
                r"|\bmonoton\w*|\bteilfolge\w*|\bsucesion\w*|\bsuccession\w*|\bsequencias?\b"
                r"|质数|素数|无理数|無理数|方程|平方数|整数|自然数|数列|级数|級数"
            ),
            (
                "matri* eigen* determinant vector primes prime rational* irrational* modulo modular gcd lcm "
                "polynomial* logarithm* factorial combinatori* permutation* sqrt square equation* inequalit* "
                "numeros nombres primzahl* irracional irrationnel* raiz racine quadratwurzel ecuacion* gleichung* "
                "equacao equacoes natural integer integers prime divisible naturliche primfaktor* ganze teilbar* "
                "nombre divisivel numero subseq* sequen* series infinity sous suite suites monoton* teilfolge* sucesion* "
                "succession* 质数 素数 无理数 無理数 方程 平方数 整数 自然数 数列 级数 級数"
            ),
        ),
        (
            "math",
            "equation",
            1.0,
            (
                r"\b[a-z]\s*\^\s*[\d({a-z]|\b\d+\s*[a-z]\s*[+\-]\s*\d|\b[a-z]\s*[+\-*/]\s*[a-z0-9]+\s*=\s*[a-z0-9]"
                r"|\b[a-z]\s*=\s*-?\d+\s*[a-z]\b|\bf\s*\(\s*[a-z]\s*\)\s*=|\bd[a-z]?\s*/\s*d[a-z]\b|\blog_?\d*\s*\("
                r"|\b\d\s*/\s*\(\s*[a-z]"
                r"|\b(?:sin|cos|tan|cot|sec|csc|ln|exp|sqrt|arcsin|arccos|arctan|sinh|cosh|tanh)\s*\(\s*[a-z]"
            ),
            "~ ^ + - = / (",
        ),
        (
            "math",
            "math notation",
            1.0,
            r"\\(?:frac|int|sum|sqrt|lim|prod|alpha|beta|theta|lambda|sigma|mathbb|partial|infty|cdot|leq|geq)\b",
            "\\",  # the backslash of a LaTeX command
        ),
        # ---- constraints ---------------------------------------------------
        (
            "constraints",
            "must",
            0.5,
            (
                r"\bmust\b|\bhas to\b|\bhave to\b|\brequired\b|\bmandatory\b|\bdebe\w*|\btiene que\b"
                r"|\bdoi[ts]\b|\bdoivent\b|\bil faut\b|\bmuss\w*|\bdeve[ms]?\b|\btem que\b|\bobligatori\w*"
            ),
            (
                "must has have required mandatory debe* tiene dois doit doivent il muss* deve devem deves tem "
                "obligatori* "
                "| must has have required mandatory debe* tiene dois doit doivent faut muss* deve devem deves tem "
                "obligatori*"
            ),
        ),
        (
            "constraints",
            "without using",
            1.0,
            (
                r"\bwithout (?:using|the use of|importing|any (?:loops?|librar(?:y|ies)|imports?)|loops?|recursion)\b"
                r"|\bdo(?:n't| not) use\b|\bmust not\b|\bnot allowed\b|\bno (?:external )?librar(?:y|ies)\b"
                r"|\bonly (?:use|using)\b|\bsin (?:usar|utilizar)\b|\bsans (?:utiliser|employer)\b"
                r"|\bn'utilise[z]? pas\b|\bohne .{0,30}(?:zu verwenden|zu benutzen|zu nutzen)\b"
                r"|\bverwende keine?\b|\bsem (?:usar|utilizar)\b|\bnao use\b|不使用|不要使用|使わずに"
            ),
            (
                "without do don must not no only sin sans n ohne verwende sem nao 不使用 不要使用 使わずに "
                "| without use using must allowed librar* usar utilizar utilis* employer ohne verwende 不使用 不要使用 使わずに"
            ),
        ),
        (
            "constraints",
            "bounds",
            0.5,
            (
                r"\bat (?:least|most)\b|\bno (?:more|less|fewer) than\b|\bexactly \d|\bwithin \d|\bunder \d"
                r"|\bup to \d|\bal menos\b|\bcomo (?:maximo|minimo)\b|\bno mas de\b|\bexactamente\b"
                r"|\bau (?:moins|plus)\b|\bpas plus de\b|\bexactement\b|\bmindestens\b|\bhochstens\b"
                r"|\bnicht mehr als\b|\bgenau \d|\bpelo menos\b|\bno (?:maximo|minimo)\b|\bnao mais (?:de|que)\b"
                r"|\bexatamente\b|至少|最多"
            ),
            (
                "at no exactly within under up al como exactamente au pas exactement mindestens hochstens nicht "
                "genau pelo nao exatamente 至少 最多 "
                "| least most than exactly within under up menos maximo minimo mas exactamente moins plus exactement "
                "mindestens hochstens mehr genau mais exatamente 至少 最多"
            ),
        ),
        (
            "constraints",
            "complexity bound",
            1.0,
            (
                r"\bo\(\s*(?:1|n|log\s*n|n\s*log\s*n|n\s*\^?\s*2|n2|m|k|v\s*\+\s*e|n\s*\+\s*m|n\s*\*\s*m|nm|mn)\s*\)"
                r"|\blinear time\b|\bconstant (?:time|space|memory)\b|\blogarithmic time\b|\bin[- ]place\b"
            ),
            (
                "o linear constant logarithmic in "
                "| o linear constant logarithmic place"
            ),
        ),
        (
            "constraints",
            "budget / requirements",
            0.5,
            (
                r"\bbudget\b|\bdeadline\b|\brequirements?\b|\bconstraints?\b|\bpresupuesto\b|\brestricciones\b"
                r"|\brequisitos\b|\bcontraintes?\b|\bexigences\b|\bfrist\b|\beinschrankungen\b|\banforderungen\b"
                r"|\borcamento\b|\brestricoes\b|\bprazo\b|\bplazo\b|\bdelai\b|予算|预算|制約|约束条件|締め切り|截止日期"
            ),
            (
                "budget deadline requirement* constraint* presupuesto restricciones requisitos contrainte* "
                "exigences frist einschrankungen anforderungen orcamento restricoes prazo plazo delai 予算 预算 制約 约束条件 "
                "締め切り 截止日期"
            ),
        ),
        # ---- requested output length --------------------------------------
        (
            "output_length",
            "essay",
            1.0,
            (
                r"\bessays?\b|\bensayo\b|\bdissertation\b|\baufsatz\b|\bessai\b|\bredacao\b|\bensaio\b"
                r"|\bthesis\b|\btesis\b|\btese\b|论文|論文"
            ),
            "essay essays ensayo dissertation aufsatz essai redacao ensaio thesis tesis tese 论文 論文",
        ),
        (
            "output_length",
            "long document",
            1.0,
            (
                r"\b(?:detailed|full|comprehensive|in-depth|technical|formal|research) (?:\w+ )?(?:report|proposal"
                r"|document|specification|review|draft)\b|\bwhite ?paper\b|\bresearch paper\b|\bliterature review\b"
                r"|\bbusiness plan\b|\bcase study\b|\binforme detallado\b|\brapport detaille\b"
                r"|\bdetaillierten bericht\b|\brelatorio detalhado\b|\bplan de negocios?\b|\bplano de negocios\b"
                r"|\bbusinessplan\b|报告|レポート"
            ),
            (
                "detailed full comprehensive in technical formal research white* literature business case informe "
                "rapport detaillierten relatorio plan plano 报告 レポート "
                "| report proposal document specification review draft white* paper business case informe rapport bericht "
                "relatorio negocio* 报告 レポート"
            ),
        ),
        (
            "output_length",
            "long-form writing",
            1.0,
            (
                r"\b(?:write|draft|compose|escribe|redacta|ecris|ecrivez|redige[rz]?|schreibe?|verfasse|escreva"
                r"|redija)\b[^.?!\n]{0,40}\b(?:article|blog post|chapter|report|proposal|articulo|artigo|artikel"
                r"|informe|rapport|bericht|relatorio|capitulo|chapitre|kapitel)\b"
            ),
            (
                "write draft compose escribe redacta ecris ecrivez redige* schreib* verfasse escreva redija "
                "| article blog chapter report proposal articulo artigo artikel informe rapport bericht relatorio "
                "capitulo chapitre kapitel"
            ),
        ),
        (
            "output_length",
            "long-form writing",
            1.0,
            (
                r"\b(?:long|lengthy|extended|epic|full-length|book-length|multi-(?:section|chapter|part|page))\b"
                r"[^.?!\n]{0,30}\b(?:poems?|story|stories|narrative|ballad|manual|guide|report|essay|novel|novella"
                r"|saga|screenplay|article|document|chapter|letter|speech)\b(?!\s+short)"
                r"|\b(?:larg[oa]|extens[oa]|longue|lange[nrs]?|longo)\b[^.?!\n]{0,30}\b(?:poema|poeme|gedicht"
                r"|historia|histoire|geschichte|cuento|conto|relato|recit|nouvelle|erzahlung|novela|roman|romance"
                r"|ensayo|informe|rapport|bericht|relatorio|articulo|article|artikel|artigo|carta|lettre|brief)\b"
                r"|長編|长篇|長文|长文"
            ),
            (
                "long lengthy extended epic full book multi larg* extens* longue lange lange* longo 長編 长篇 長文 长文 "
                "| poems poem story stories narrative ballad manual guide report essay novel novella saga screenplay "
                "article document chapter letter speech poema poeme gedicht historia histoire geschichte cuento conto "
                "relato recit nouvelle erzahlung novela roman romance ensayo informe rapport bericht relatorio "
                "articulo artikel artigo carta lettre brief 長編 长篇 長文 长文"
            ),
        ),
        (
            "output_length",
            "creative writing",
            0.5,
            (
                r"写.{0,15}(?:小说|故事|诗|剧本|散文|作文|童话)|(?:小説|物語|詩|エッセイ|短編|童話|脚本|作文).{0,15}"
                r"(?:を書|書いて|書け|を作)"
            ),
            "~ 写 を書 書いて 書け を作",
        ),
        (
            "output_length",
            "creative writing",
            0.5,
            (
                r"\b(?:write|draft|compose|escribe|escribeme|redacta|ecris|ecrivez|schreibe?|verfasse|escreva|escreve"
                r"|redija|scrivi|scrivimi)\b[^.?!\n]{0,40}\b(?:story|speech|cover letter|screenplay|novel|novella|poem|ballad|sonnet|fable"
                r"|fairy tale|cuento|historia|discurso|histoire|discours|geschichte|rede|conto|poema|poeme|gedicht"
                r"|nouvelle|novela|roman|romance|kurzgeschichte|erzahlung|recit|relato|fabula|fable|soneto)\b"
            ),
            (
                "write draft compose escribe escribeme redacta ecris ecrivez schreib* verfasse escreva escreve redija "
                "scrivi scrivimi "
                "| story speech cover screenplay novel novella poem ballad sonnet fable fairy cuento historia "
                "discurso histoire discours geschichte rede conto poema poeme gedicht nouvelle novela roman romance "
                "kurzgeschichte erzahlung recit relato fabula soneto"
            ),
        ),
        (
            "output_length",
            "comprehensive",
            1.0,
            (
                r"\bcomprehensive\b|\bexhaustive\b|\bin[- ]depth\b|\bexhaustiv[oa]\b|\ba fondo\b|\bexhaustif\b"
                r"|\bapprofondi\w*|\ben profondeur\b|\bumfassend\w*|\bausfuhrlich\w*|\babrangente\b"
                r"|\baprofundad[oa]\b|\bexaustiv[oa]\b|详细|詳細|全面"
            ),
            (
                "comprehensive exhaust* in a en approfondi* umfassend* ausfuhrlich* abrangente aprofundad* exaustiv* "
                "详细 詳細 全面 "
                "| comprehensive exhaust* depth fondo approfondi* profondeur umfassend* ausfuhrlich* abrangente "
                "aprofundad* exaustiv* 详细 詳細 全面"
            ),
        ),
        (
            "output_length",
            "detailed",
            0.5,
            (
                r"\bdetailed\b|\bthorough(?:ly)?\b|\bin detail\b|\bdetallad[oa]\b|\ben detalle\b|\bdetaillee?s?\b"
                r"|\ben detail\b|\bdetailliert\w*|\bim detail\b|\bdetalhad[oa]\b|\bem detalhe\b|\bgrundlich\w*"
                r"|\bminuziosa\w*|\bdettagliat\w*|\bnel dettaglio\b|\bdireitinho\b|\ben detaillant\b"
            ),
            (
                "detail* thorough* in detall* en im detalh* em grundlich* minuziosa* dettagliat* nel direitinho "
                "| detail* thorough* detall* detalh* grundlich* minuziosa* dettagliat* dettaglio direitinho detaillant"
            ),
        ),
        (
            "output_length",
            "guide / tutorial",
            0.5,
            (
                r"\b(?:guide|tutorial|curriculum|lesson plan|course outline|handbook|playbook|guia|leitfaden"
                r"|anleitung|manual|manuel|handbuch|user manual)\b"
            ),
            "guide tutorial curriculum lesson course handbook playbook guia leitfaden anleitung manual manuel "
            "handbuch user",
        ),
    )
)

_SHOW_THAT = _GATED_BY_SOURCE[_SHOW_THAT_SOURCE]

# Simple-task cues: only looked for in the instruction region.
_SIMPLE_TASK_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, _rx(pattern, gate))
    for label, pattern, gate in (
        (
            "translation",
            (
                r"\btranslat\w*|\btraduc\w*|\btraduis\w*|\btraduire\b|\btraduza\b|\btraduzir\b|\bubersetz\w*"
                r"|\bhow do you say\b|\bcomo se dice\b|\bcomment dit-on\b|\bwie sagt man\b|\bcomo se diz\b"
                r"|翻译|翻訳"
            ),
            (
                "translat* traduc* tradui* traduz* ubersetz* how como comment wie 翻译 翻訳 "
                "| translat* traduc* tradui* traduz* ubersetz* you dice* dit sagt como 翻译 翻訳"
            ),
        ),
        (
            "spelling/grammar fix",
            (
                r"\b(?:fix|correct|check|proofread|improve)\b.{0,40}\b(?:spelling|grammar|typos?|punctuation"
                r"|capitali[sz]ation)\b|\bproofread\w*|\bspell[- ]?check\w*"
                r"|\b(?:corrige|corrija|corrigez|corriger|corregir|korrigiere|korrigieren|verbessere)\b.{0,40}"
                r"\b(?:ortografia|gramatica|orthographe|grammaire|fautes|faltas|errores|erros|rechtschreibung"
                r"|grammatik|tippfehler|errori|refusi)\b|\bortografia\b|\borthographe\b|\brechtschreib\w*"
                r"|\b(?:corrigeme|correggi|correggimi)\b|错别字|错字|语病|病句|校对|誤字|脱字|校正して|文法の誤り"
            ),
            (
                "fix correct check proofread* improve spell* corrig* corrija corregir korrig* verbessere ortografia* "
                "orthographe* rechtschreib* correggi correggimi 错别字 错字 语病 病句 校对 誤字 脱字 校正して 文法の誤り "
                "| spelling* grammar* typo* punctuation* capitali* proofread* spell* corrig* corrija corregir "
                "korrig* verbessere ortografia* orthographe* rechtschreib* correggi correggimi faltas errori refusi "
                "错别字 错字 语病 病句 校对 誤字 脱字 校正して 文法の誤り"
            ),
        ),
        (
            "classification/extraction",
            (
                r"\bsentiment\b|\bclassify\b|\bcategori[sz]e\b|\bpositive,? (?:or|negative,? or) (?:negative|neutral)\b"
                r"|\bis (?:this|it|the)\b.{0,30}\b(?:spam|positive|negative|sarcastic|toxic|offensive)\b"
                r"|\bextract\b|\bsentimiento\b|\bclasifica\w*"
                r"|\bextrae\b|\bclassifie[rz]?\b|\bextrais\b|\bextraire\b|\bstimmung\b|\bklassifiziere\w*"
                r"|\bextrahiere\w*|\bsentimento\b|\bclassifique\b|\bclassificar\b|\bextraia\b|\bextrai\b|\bestrai\w*"
                r"|\b(?:positiv[oa]|negativ[oa]|positive|negative)\b[,;]? (?:o|ou|or|oder|ou) (?:negativ[oa]|neutr[oa]|"
                r"negative|neutral|neutre|positiv[oa]|positive)\b"
                r"|\b(?:saca|sacame|extrai|zieh)\b[^.?!\n]{0,60}\b(?:nombres|nomes|namen|names|datos|dados|raus)\b"
                r"|\b(?:list|name|find|pull out|give me)\b[^.?!\n]{0,40}\b(?:mentioned|named|that appear|listed) in\b"
                r"|\bwerden\b[^.?!\n]{0,40}\bgenannt\b|\bnames only\b|\b(?:only|just) the names\b|\bpull out\b"
                r"|\bnur (?:die )?namen\b|\bsolo (?:los |i )?(?:nombres|nomi)\b|\bseulement les noms\b|\bso os nomes\b"
                r"|情感|情绪|感情分析|提取|抽出|好评|差评|正面|负面|ポジティブ|ネガティブ"
            ),
            (
                "sentiment* classify* categori* positive* is extract* clasifica* extrae* extrai* stimmung* "
                "klassifiziere* extrahiere* estrai* positiv* negativ* saca sacame zieh list name find pull give werden "
                "names only just nur solo seulement so 情感 情绪 感情分析 提取 抽出 好评 差评 正面 负面 ポジティブ ネガティブ "
                "| sentiment* classify* categori* positive* negative* spam* sarcastic* toxic* offensive* extract* "
                "clasifica* extrae* extrai* stimmung* klassifiziere* extrahiere* estrai* negativ* neutr* positiv* "
                "nombres nome* name* dato* dado* raus* mentioned named appear listed genannt only pull namen solo "
                "seulement "
                "情感 情绪 感情分析 提取 抽出 好评 差评 正面 负面 ポジティブ ネガティブ"
            ),
        ),
        (
            "summarization",
            (
                r"\bsummari[sz]\w*|\b(?:a|short|brief|quick|one-line|one-sentence|two-sentence|three-sentence"
                r"|one-paragraph) (?:\w+ )?summary\b|^summary\b|\bsummary\?"
                r"|\btl;?dr\b|\bresum(?:e|en|ir|a|ez|er|o|eme|elo)\b|\bfass\w* .{0,60}\bzusammen\b"
                r"|\bzusammenfass\w*|\bsintetiza\b|\bgist\b|\bcondense\w*|\bboil\b[^.?!\n]{0,30}\bdown\b"
                r"|\b(?:key|main) (?:points|takeaways)\b|\briassum\w*|\bbasically say\b|总结|概括|要約|まとめ|摘要|要点"
            ),
            (
                "summari* a short brief quick one two three summary tl tldr* resum* fass* zusammenfass* sintetiza* gist* "
                "condense* boil key main riassum* basically 总结 概括 要約 まとめ 摘要 要点"
            ),
        ),
        (
            "simple list",
            (
                r"(?:^|[.!?:]\s+)(?:list|name|enumerate|lista|nombra|enumera|liste|nomme|nenne|cite)\s+"
                r"(?:the|all|\d{1,2}|a few|some|three|four|five|six|seven|eight|nine|ten|tres|cuatro|cinco|trois"
                r"|quatre|cinq|drei|vier|funf|quatro)\b"
                r"|(?:^|[.!?:]\s+)(?:give me|dame|donne-moi|gib mir|me de|de-me)\s+(?:\d{1,2}|a few|some|three|four"
                r"|five|six|seven|eight|nine|ten|tres|cuatro|cinco|trois|quatre|cinq|drei|vier|funf|quatro)\b"
            ),
            (
                "list name enumerate lista nombra enumera liste nomme nenne cite give dame donne gib me de . ! ? : "
                "| list name enumerate lista nombra enumera liste nomme nenne cite give dame donne gib me"
            ),
        ),
        (
            "formatting/conversion",
            (
                r"\b(?:format|convert|turn|rewrite|reformat|put)\b.{0,40}\b(?:json|csv|table|bullet(?: points)?"
                r"|bulleted list|numbered list|checklist|to-?do list|list|uppercase|lowercase|title case|markdown|yaml"
                r"|alphabetical order)\b"
                r"|\b(?:mach|erstell)\w*[^.?!\n]{0,30}\b(?:liste|checkliste|tabelle|stichpunkt\w*|aufzahlung)\b"
                r"|\bas (?:json|csv|yaml|a table|a list|a bulleted list)\b"
                r"|\b(?:fais|mets)\b[^.?!\n]{0,30}\b(?:liste|tableau|puces)\b"
                r"|\b(?:haz|hazme|hazlo|pon|ponlo|ponme|convierte\w*)\b[^.?!\n]{0,30}\b(?:lista|tabla|vinetas)\b"
                r"|\b(?:faz|faca|transforma\w*|coloca\w*)\b[^.?!\n]{0,30}\b(?:lista|tabela|topicos)\b"
                r"|\b(?:fai|fammi|metti\w*|trasforma\w*)\b[^.?!\n]{0,30}\b(?:elenco|lista|tabella|punti elenco)\b"
                r"|列成|整理成|做成表格|リストにして|箇条書き|表にして"
                r"|\bsort .{0,40}alphabetical\w*|\balphabeti[sz]e\b|\bin (?:upper|lower) ?case\b"
                r"|\bconvert \d[\d.,]*\s*\w+ (?:to|into|in) \w+|\bconvierte \d|\bconvertis(?:sez)? \d"
                r"|\brechne \d[\d.,]*\s*\w+ in\b|\bconverta \d"
            ),
            (
                "format convert turn rewrite reformat put sort alphabeti* in convierte rechne mach* erstell* fais mets as "
                "haz hazme hazlo pon ponlo ponme convierte* faz faca transforma* coloca* fai fammi metti* trasforma* 列成 整理成 做成表格 リストにして 箇条書き "
                "表にして "
                "| format convert turn rewrite reformat put sort alphabeti* upper* lower* convierte rechne numbered "
                "liste* checkliste tabelle stichpunkt* aufzahlung as tableau puces* lista* tabla* vinetas tabela topicos elenco "
                "tabella punti 列成 整理成 做成表格 リストにして 箇条書き 表にして"
            ),
        ),
        (
            "rewording",
            (
                r"\b(?:rephrase|paraphrase|reword)\w*|\bmake (?:this|it) (?:more )?(?:formal|polite|casual|shorter"
                r"|friendlier)\b|\b(?:to be|to sound|sound) (?:more |less )?(?:formal|polite|casual|professional"
                r"|friendly)\b|\breformul\w*|\bparafrase\w*|\bumformulier\w*|\breescrev\w*"
            ),
            (
                "rephrase* paraphrase* reword* make to sound reformul* parafrase* umformulier* reescrev* "
                "| rephrase* paraphrase* reword* formal* polite* casual* shorter* friend* professional* reformul* "
                "parafrase* umformulier* reescrev*"
            ),
        ),
    )
)

_GREETING = _rx(
    r"\A\W*(?:hi|hello|hey|howdy|yo|hiya|greetings|good (?:morning|afternoon|evening|night)|thanks|thank you"
    r"|thx|cheers|bye|goodbye|hola|buenos dias|buenas(?: tardes| noches)?|gracias|adios|bonjour|bonsoir"
    r"|salut|coucou|merci|au revoir|hallo|guten (?:morgen|tag|abend)|servus|moin|danke|tschuss|ola|oi"
    r"|bom dia|boa (?:tarde|noite)|obrigad[oa]|tchau|ciao|buongiorno|grazie|привет|здравствуй\w*"
    r"|спасибо)(?!\w)"
    r"|\A\W*(?:你好|您好|こんにちは|こんばんは|おはよう|안녕|谢谢|ありがとう)"
)
_CHIT_CHAT = _rx(
    r"\bhow are you\b|\bhow's it going\b|\bwhat's up\b|\bnice to meet you\b|\bwho are you\b"
    r"|\bwhat's your name\b|\btell me a joke\b|\bhave a (?:nice|good|great) day\b|\bcomo estas\b"
    r"|\bque tal\b|\bca va\b|\bcomment (?:ca va|vas-tu|allez-vous)\b|\bwie geht(?:'s| es| ihnen)\b"
    r"|\btudo bem\b|\bcomo vai\b|\bcomo voce esta\b|\bcome stai\b|\bкак дела\b|你好吗|お元気ですか",
    (
        "how what nice who tell have como que ca comment wie tudo come как 你好吗 お元気ですか "
        "| are s nice tell good great como que ca comment geht tudo come дела 你好吗 お元気ですか"
    ),
)
_FACTUAL = _rx(
    r"(?:^|[.!?:]\s{1,5}|¿)[ \t\"'(¡¿*-]{0,5}"
    r"(?:what is|what's|what are|what was|what were|what time|who is|who's|who was|who were"
    r"|who wrote|who invented|who painted|who discovered|when is|when was|when did|where is|where are"
    r"|where was|where's|which (?:is|was|country|city|planet)|how many|how much|how old|how tall|how far is"
    r"|how long is|define|definition of|meaning of|what does|que es|que son|quien es|quien fue"
    r"|quien escribio|cuando (?:es|fue)|donde (?:esta|queda)|cual es|cuales son|cuantos|cuanto|definicion de"
    r"|significado de|que significa|qu'est-ce que|qu'est-ce qu|qu'est ce que|c'est quoi|qui est|qui etait"
    r"|qui a (?:ecrit|invente|peint)|quand (?:est|a)|ou est|ou se trouve|quelle est|quel est|quels sont"
    r"|quelles sont|combien|definis|definir|definition de|que signifie|que veut dire|was ist|was sind"
    r"|wer ist|wer war|wer hat|wann (?:ist|war|wurde)|wo ist|wo liegt|welche[rs]? ist|wie viele|wie viel"
    r"|wie alt|wie hoch|definiere|definition von|was bedeutet|bedeutung von|o que e|o que sao|quem e"
    r"|quem foi|quem escreveu|quando (?:e|foi)|onde (?:e|fica|esta)|qual e|quais sao|quantos|quanto"
    r"|defina|definicao de|o que significa|c'est qui|qui a (?:ecrit|invente|peint|demontre|decouvert|prouve|fonde)"
    r"|a que horas?|a quelle heure|um wie viel uhr|a che ora|quanto|quanta|quantos|quantas)(?!\w)"
    r"|什么是|是什么|谁是|是谁|とは|は誰|って誰|誰だっけ|の名前を教えて|几点|何時|いつ"
)
_BREVITY = _rx(
    r"\bin (?:one|1|a single|a) (?:sentence|word|line|phrase)\b|\bone[- ]word answer\b|\bin a few words\b"
    r"|\bbriefly\b|\bshort answer\b|\byes or no\b|\btl;?dr\b|\ben una (?:frase|oracion|palabra)\b"
    r"|\ben pocas palabras\b|\bbrevemente\b|\ben une (?:phrase|ligne)\b|\ben un mot\b|\ben quelques mots\b"
    r"|\bbrievement\b|\bin einem (?:satz|wort)\b|\bin wenigen worten\b|\bkurz\b|\bem uma (?:frase|palavra)\b"
    r"|\bem poucas palavras\b|\bresumidamente\b|\bja oder nein\b|\boui ou non\b|\bsi o no\b|\bsim ou nao\b"
    r"|\b(?:just|only) the (?:definition|name|answer|number|result)\b|\bsolo (?:la definicion|el nombre)\b"
    r"|\bseulement la definition\b|\bnur die definition\b|\bso a definicao\b"
    r"|\bin (?:a couple of|one or two|two) (?:lines|sentences)\b|\ben (?:un par de|dos) (?:lineas|frases)\b"
    r"|\ben deux (?:lignes|phrases)\b|\bin zwei satzen\b|\bem duas (?:linhas|frases)\b"
    r"|\bno (?:hace falta|necesito)\b|\bpas besoin\b|\bnicht notig\b|\bnao precisa\b"
    r"|\b(?:no|don't|do not) need (?:the |a |any )?(?:proof|details|explanation|examples?)\b"
    r"|\binto (?:[1-5]|one|two|three|four|five) (?:bullet points|bullets|lines)\b"
    r"|一句话|简短|一言で|要らない|いらない|不需要|不用|只回答|一个词",
    (
        "in one briefly* short yes tl tldr* en brevemente* brievement* kurz* em resumidamente* ja oui si sim 一句话 简短 "
        "一言で just only solo seulement nur so no pas nicht nao don do into 要らない いらない 不需要 不用 只回答 一个词 "
        "| sentence* word* line* phrase* briefly* short yes tl tldr* una pocas brevemente* une un quelques "
        "brievement* einem wenigen kurz* uma poucas resumidamente* oder oui si sim 一句话 简短 一言で definition "
        "definicion definicao name* nombre answer number result lines lineas frases lignes phrases satzen linhas "
        "hace necesito besoin notig* precisa proof* details explanation example examples bullet bullets 要らない "
        "いらない 不需要 不用 只回答 一个词"
    ),
)

# Structural / computed cues
# Matched against the raw text: NFKD would turn "≠" into "=" and "x²" into "x2".
_MATH_SYMBOLS = _lazy(r"[∫∑∏√∞≤≥≠≈∂∇±∈∉∀∃⊂⊆∪∩]|[a-zA-Z)\]]\s?[²³⁴ⁿ]")
_MATH_SYMBOL_CHARS = _lazy(r"[∫∑∏√∞≤≥≠≈∂∇±∈∉∀∃⊂⊆∪∩²³⁴ⁿ]")  # one is in every match; scans fast
_FENCES = ("```", "~~~")  # a code block


# Code-like syntax: each cue is one or more checks (pattern, starts, needs) and
# fires if one of them matches. Every match of a check's pattern starts with one
# of ``starts`` (None: at the start of a line) and contains every string of
# ``needs``, so it is only tried where a start occurs, on texts with the needs
# (str.find and `in` are far cheaper than a regex scan). Two cues are rewritten
# so that their matches start with a literal, without changing whether they match:
#   \b\w+\.\w+\( ... matches somewhere iff \.(?<=\w\.)\w+\( ... does (it starts at the dot);
#   A|B matches somewhere iff A or B does (split into two checks).
_Check = tuple[re.Pattern[str], tuple[str, ...] | None, tuple[str, ...]]


def _check(pattern: str, starts: tuple[str, ...] | None, *needs: str) -> _Check:
    if starts is None and not needs:
        raise ValueError("a check needs starts or needs")  # the quick test in _code_and_math relies on it
    return _lazy(pattern, re.MULTILINE), starts, needs


_CODE_SYNTAX = (
    (_check(r"\bdef \w+\s*\(", ("def ",), "("),),
    (_check(r"\bfunction[ \t]*\w*[ \t]*\([^)\n]{0,200}\)[ \t]*\{", ("function",), "{"),),
    (_check(r"\bclass \w+\s*[:({]", ("class ",)),),
    (_check(r"#include\s*<", ("#include",)),),
    (_check(r"^[ \t]*(?:import [\w.]+|from [\w.]+ import )", None, "import "),),
    (_check(r"=>|->|::", ("=>", "->", "::")),),
    (_check(r"\bconsole\.log\(|\bprintf?\(|\bsystem\.out\.", ("console.log(", "print", "system.out.")),),
    (_check(r"\bpublic (?:static )?(?:void|int|class|string)\b", ("public ",)),),
    (_check(r"\bselect\s+(?:\*|[\w.]+(?:\s*,\s*[\w.]+)*)\s+from\s+\w+", ("select",), "from"),),
    (_check(r"[;{][ \t]*$", (";", "{")), _check(r"^[ \t]*\}[ \t]*;?[ \t]*$", None, "}")),
    (_check(r"\b(?:var|let|const) \w+\s*=", ("var ", "let ", "const "), "="),),
    (_check(r"\.(?<=\w\.)\w+\([^)\n]{0,200}\)", (".",), "(", ")"),),
    (_check(r"==|!=|&&|\|\||\+\+", ("==", "!=", "&&", "||", "++")),),
    (_check(r"</?[a-z][a-z0-9]{0,20}(?:\s[^>\n]{0,200})?>", ("<",), ">"),),
    (_check(r"`[^`\n]{1,200}`", ("`",)),),
    (_check(r"^[ \t]*#!/", None, "#!/"), _check(r"^[ \t]*\$ \w+", None, "$ ")),
)
_DEBUG_HINT = _rx(
    r"\b(?:error|exception|crash(?:es|ing|ed)?|bug|fix|wrong|fails?|failing|doesn't work|does not work"
    r"|not working|broken|throws?|raises?|undefined|null)\b|\bfalla\w*|\berreur\b|\bfehler\b|\berro\b",
    "error exception crash* bug fix wrong fail* doesn does not broken throw* raise* undefined null falla* erreur "
    "fehler erro",
)
_NUMBER = _lazy(r"\d+(?:[.,]\d+)*")
_DATE = _lazy(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b")
_ARITH = _lazy(r"(?<![\d,.])\d[\d,]*(?:\.\d+)?(?:[ \t]*(?:[+*/×÷^%]|\s-\s)[ \t]*\d[\d,]*(?:\.\d+)?)+")
_CALC_VERB = _rx(
    r"\b(?:calculate|compute|solve|work out|figure out|evaluate|calcula|calcule[rz]?|calcular|berechne\w*"
    r"|rechne|resuelve|resolva|resous|resolvez)\b|计算|計算",
    "calcul* compute solve work figure evaluate berechne* rechne resuelve resolv* resous 计算 計算",
)
_WORD_PROBLEM_Q = _rx(
    r"\bhow (?:many|much|long|far|fast|old)\b|\bwhat time\b|\bwhen (?:will|does|do|did)\b|\bcuant[oa]s?\b"
    r"|\bcombien\b|\bwie (?:viele?|lange|weit|schnell)\b|\bquant[oa]s?\b|多少|几|何時|いくつ",
    "how what when cuant* combien wie quant* 多少 几 何時 いくつ",
)
# A question that needs the numbers worked through, asked about a table of data
# (at least _DATA_NUMBERS numbers: "What is the total of 3, 5 and 9?" stays simple).
_DATA_QUESTION = _rx(
    r"\bwhat(?:'s| is| are| was| would be)? the (?:\w+ ){0,2}(?:total|net|average|cumulative|overall|final"
    r"|equivalent|combined)\b|\bwhich\b[^.?!\n]{0,40}\b(?:best|worst|most|least|cheapest|better|worse)\b"
    r"|\bwhether (?:he|she|they|it|that|this)(?:'s| is| are) (?:right|correct)\b"
    r"|\b(?:is|are) (?:he|she|they|it|that|this) (?:right|correct)\b",
    "what* which whether is are",
)
_DATA_NUMBERS = 5
_LENGTH_ASK = _rx(
    r"(?<![\d,.])(\d{1,3}(?:[,.]\d{3})+|\d{1,3}(?: \d{3})+|\d{1,7})(?![\d,.]\d)(?:\s?(mil|mille|k)\b)?\s?-?\s?"
    r"(words?|palabras|mots|worter|wortern|palavras|parole|pages?|paginas|seiten|pagine|paragraphs?|parrafos"
    r"|paragraphes|absatze|absatzen|paragrafos|paragrafi|sentences?|frases|phrases|satze|satzen|frasi"
    r"|characters|caracteres|signes|zeichen|caratteri)\b"
)
# Line counts only mean requested length after "at least / about ...": "these 200 lines of logs" is input.
_LINES_ASK = _rx(
    r"\b(?:at least|minimum of|about|around|roughly|approximately|al menos|au moins|mindestens|pelo menos)"
    r" (\d{1,4}) (?:lines|verses|stanzas|versos|estrofas|lineas|lignes|strophes|zeilen|strophen|linhas)\b",
    "at minimum about around roughly approximately al au mindestens pelo | lines verses stanzas versos estrofas "
    "lineas lignes strophes zeilen strophen linhas",
)
# A speech or talk of several minutes is long-form writing.
_SPEECH_WORDS = (
    r"(?:\b(?:speech|talk|toast|eulogy|keynote|discurso|discours|rede|ansprache|discorso|brindisi)\b"
    r"|スピーチ|演讲|致辞|发言|原稿|讲稿)"
)
_MINUTES = r"(\d{1,2})(?:[ -](?:minutes?|mins?|minutos|minuti|minuten)\b| ?分)"
_SPEECH_MINUTES = _rx(
    _SPEECH_WORDS + r"[^.?!\n。]{0,60}?" + _MINUTES + "|" + _MINUTES + r"[^.?!\n。]{0,40}?" + _SPEECH_WORDS,
    "~ speech talk toast eulogy keynote discurso discours rede ansprache discorso brindisi スピーチ 演讲 致辞 发言 原稿 讲稿 "
    "| minute minutes min mins minutos minuti minuten 分",
)
# CJK character counts: 3000字, 1万字, 五千字 is not parsed (digits only).
_CJK_LENGTH_ASK = _lazy(r"(\d{1,6}(?:\.\d)?)\s?([万千])?\s?(?:字|文字)")
_NUMBERED_LINE = _lazy(r"^[ \t]*(?:\(?\d{1,2}[.)]|\(?[a-h][.)]|[ivx]{1,4}[.)])[ \t]+\S", re.MULTILINE)
_NUMBERED_INLINE = _lazy(r"(?:^|\s)\(?\d{1,2}\)[ \t]+\S")
_STEP_N = _lazy(r"\bstep \d+\b|\bpaso \d+\b|\betape \d+\b|\bschritt \d+\b|\bpasso \d+\b")
_BULLET = _lazy(r"^[ \t]*[-*•][ \t]+\S", re.MULTILINE)
_SEQ_FIRST = _rx(
    r"\b(?:first|firstly|first of all|to begin|primero|primeramente|en primer lugar|d'abord|premierement"
    r"|tout d'abord|zuerst|erstens|zunachst|primeiro|primeiramente|em primeiro lugar)\b|首先|まず",
    (
        "first* to primer* primei* d tout premierement zuerst erstens zunachst en em 首先 まず "
        "| first* begin primer* primei* abord premierement zuerst erstens zunachst 首先 まず"
    ),
)
_SEQ_THEN = _rx(
    r"\b(?:then|next|after that|afterwards|finally|lastly|secondly|luego|despues|finalmente|por ultimo"
    r"|ensuite|puis|enfin|deuxiemement|dann|danach|anschliessend|schliesslich|zweitens|depois|em seguida"
    r"|por fim)\b|然后|最后|次に",
    (
        "then next after* finally lastly secondly luego despues finalmente por ensuite puis enfin deuxiemement dann "
        "danach anschliessend schliesslich zweitens depois em 然后 最后 次に "
        "| then next after* finally lastly secondly luego despues finalmente ultimo ensuite puis enfin deuxiemement "
        "dann danach anschliessend schliesslich zweitens depois seguida fim 然后 最后 次に"
    ),
)
_SEQ_ALSO = _rx(
    r"\b(?:and also|also,|additionally|in addition|furthermore|moreover|as well as|y tambien|ademas"
    r"|et aussi|de plus|en outre|und auch|ausserdem|zusatzlich|e tambem|alem disso|adicionalmente)\b|另外|此外",
    (
        "and also addition* in furthermore moreover as y ademas et de en und ausserdem zusatzlich e alem "
        "adicionalmente 另外 此外 "
        "| also addition* furthermore moreover well tambien ademas aussi plus outre auch ausserdem zusatzlich tambem "
        "alem adicionalmente 另外 此外"
    ),
)

_FEATURE_PHRASES = {
    "reasoning": "asks for reasoning or analysis",
    "multi_part": "multi-part request",
    "code": "involves code",
    "math": "involves math",
    "constraints": "explicit constraints",
    "output_length": "asks for long output",
    "chit_chat": "greeting or chit-chat",
    "factual_lookup": "short factual question",
    "simple_task": "simple task",
    "brevity": "asks for a brief answer",
    "detailed_request": "long, detailed request",
}


# --------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------


def _is_ascii_word(s: str) -> bool:
    """Non-empty and made only of ASCII letters, digits and "_"."""
    return s.isascii() and s.replace("_", "a").isalnum()


class _Keys:
    """One group of a gate (see the comment above the cue tables)."""

    __slots__ = ("names", "texts", "words4", "words6")

    def __init__(self, group: str) -> None:
        words6: set[str] = set()  # a word's first 6 characters (a shorter word: all of it)
        words4: set[str] = set()  # a word's first 4 characters
        texts: set[str] = set()  # text anywhere
        for token in group.split():
            stem = token[:-1] if token.endswith("*") else None
            if stem is not None and _is_ascii_word(stem):
                if len(stem) >= 6:
                    words6.add(stem[:6])
                elif len(stem) >= 4:
                    words4.add(stem[:4])
                else:
                    raise ValueError(f"gate stem shorter than 4 characters: {token!r}")
            elif _is_ascii_word(token):
                words6.add(token[:6])
            else:
                texts.add(token[1:] if token.startswith("*") else token)
        self.words6 = frozenset(words6)
        self.words4 = frozenset(words4)
        self.texts = frozenset(texts)
        # All of them in one namespace: "word6", "word4*", "=text".
        self.names = frozenset({*words6, *(f"{w}*" for w in words4), *(f"={t}" for t in texts)})


class _Gate:
    """A parsed gate: ``start`` (the first group: where matches start or, if
    ``anywhere``, something in them) and ``more`` groups found in every match."""

    __slots__ = ("anywhere", "more", "start")

    def __init__(self, gate: str) -> None:
        first, *more = gate.split(" | ")
        self.anywhere = first.startswith("~ ")
        self.start = _Keys(first.removeprefix("~ "))
        self.more = tuple(map(_Keys, more))


# Gates are looked up by id(pattern): a re.Pattern hashes its whole compiled
# program on every hash() call, which would cost more than the gates save. The
# patterns are module constants, so their ids never change.
_GATE_BY_ID = {id(pattern): _Gate(gate) for pattern, gate in _GATES.items()}
_MORE_GROUPS = {pattern_id: gate.more for pattern_id, gate in _GATE_BY_ID.items() if gate.more}


def _by_first_group_key() -> dict[str, frozenset[int]]:
    """Key name -> ids of the patterns whose gate's first group has it."""
    index: dict[str, set[int]] = {}
    for pattern_id, gate in _GATE_BY_ID.items():
        for name in gate.start.names:
            index.setdefault(name, set()).add(pattern_id)
    return {name: frozenset(ids) for name, ids in index.items()}


def _texts_by_first_char(texts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for text in texts:
        grouped.setdefault(text[0], []).append(text)
    return {first: tuple(group) for first, group in grouped.items()}


_BY_FIRST_GROUP_KEY = _by_first_group_key()
_ALL_GROUPS = [keys for gate in _GATE_BY_ID.values() for keys in (gate.start, *gate.more)]
_WORD6_KEYS = frozenset(k for keys in _ALL_GROUPS for k in keys.words6)
_WORD4_KEYS = frozenset(k for keys in _ALL_GROUPS for k in keys.words4)
_TEXTS = frozenset(t for keys in _ALL_GROUPS for t in keys.texts)
_ASCII_TEXTS = tuple(text for text in _TEXTS if text.isascii())
# Texts in other scripts, looked up only when their first character occurs.
_OTHER_TEXTS_BY_FIRST_CHAR = _texts_by_first_char(text for text in _TEXTS if not text.isascii())


@functools.cache
def _other_first_chars() -> re.Pattern[str]:
    return re.compile("[" + "".join(map(re.escape, _OTHER_TEXTS_BY_FIRST_CHAR)) + "]")


_FIRST6 = operator.itemgetter(slice(6))
_FIRST4 = operator.itemgetter(slice(4))
# Every ASCII character that cannot be part of a word becomes a space, so
# str.split() yields the words (maximal runs of ASCII letters, digits and _).
_NON_WORD_TO_SPACE = str.maketrans({c: " " for c in map(chr, range(128)) if not _is_ascii_word(c)})

_DIGIT_RUN = _lazy(r"\d(?<!\d\d)")  # the first digit of a run (a leading character class scans fast)


def _digit_run_starts(text: str) -> list[int] | None:
    """Where runs of digits start; None if there are so many that trying a
    pattern at each costs more than one search of the text."""
    if text.isascii() and not any(d in text for d in "0123456789"):
        return []
    starts = [m.start() for m in _DIGIT_RUN.finditer(text)]
    return None if len(starts) * 16 > len(text) else starts


def _matches_from(pattern: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` for a pattern that never matches the empty
    string and can only match at one of ``starts`` (sorted)."""
    end = 0
    for start in starts:
        if start >= end and (m := pattern.match(text, start)):
            end = m.end()
            yield m


def _occurrences(text: str, sub: str) -> list[int]:
    found = []
    i = text.find(sub)
    while i >= 0:
        found.append(i)
        i = text.find(sub, i + 1)
    return found


# The end of an instruction that introduces pasted text: a colon, then a line
# break or an opening quote. At least _MIN_DATA characters must follow it.
_DATA_MARKER = _lazy(r"[:：][ \t]*(?:\n|(?=[\"«「]))")
_MIN_DATA = 150
_LINE_INSTRUCTION = 300  # characters: longest first or last line read as an instruction

# Below this many characters a search costs less than working out where to try.
_SHORT_PROSE = 128


class _Scan:
    """Folded text (``text``), the same with quoted spans blanked (``prose``, used
    for keyword cues), where the instruction region is, and the gate checks:
    ``gated`` holds the ids of the gated patterns that may match the prose."""

    __slots__ = (
        "_found_texts",
        "_found_words4",
        "_found_words6",
        "_key_starts",
        "_line_starts",
        "_lines_found",
        "_spaced",
        "_starts_by_id",
        "digit_runs",
        "gated",
        "has_digit",
        "head_end",
        "prose",
        "tail_start",
        "text",
    )

    def __init__(self, folded: str) -> None:
        if len(folded) > 2 * _MAX_SCAN:
            folded = folded[:_MAX_SCAN] + "\n" + folded[-_MAX_SCAN:]
        self.text = folded
        self.prose = prose = _blank_quotes(folded)
        n = len(folded)
        if n <= 2 * _REGION:
            self.head_end, self.tail_start = n, 0
        else:
            self.head_end, self.tail_start = _REGION, n - _REGION
        marker = _DATA_MARKER.search(folded, 0, _REGION)
        if marker is not None and n - marker.end() >= _MIN_DATA:
            # "<instruction>:\n\n<pasted text>[\n\n<closing question>]": the pasted
            # text is data, even in a short prompt. A last paragraph after it
            # is an instruction again (a question about the data).
            self.head_end = min(self.head_end, marker.end())
            last = folded.rfind("\n\n")
            body_start = marker.end() + len(folded[marker.end() :]) - len(folded[marker.end() :].lstrip())
            if last > body_start and n - last <= _REGION:
                self.tail_start = last
            else:
                self.tail_start = n
        self.digit_runs = _digit_run_starts(folded)
        self.has_digit = self.digit_runs != []
        self.gated = self._check_gates(prose)
        self._key_starts: dict[str, list[int]] = {}
        self._starts_by_id: dict[int, list[int] | None] = {}
        self._lines_found = False
        self._line_starts: list[int] | None = None

    def _check_gates(self, prose: str) -> set[int]:
        """Split the prose into words once, note which gate keys it has, and
        return the ids of the gated patterns whose every gate group has one."""
        is_ascii = prose.isascii()
        # Other scripts turn into "?" (a separator); their keys are texts.
        ascii_prose = prose if is_ascii else prose.encode("ascii", "replace").decode("ascii")
        spaced = ascii_prose.translate(_NON_WORD_TO_SPACE)  # same positions as prose
        self._spaced = f" {spaced} "  # a word starting at i has " " at index i
        words = set(spaced.split())
        self._found_words6 = found6 = _WORD6_KEYS.intersection(map(_FIRST6, words))
        self._found_words4 = found4 = _WORD4_KEYS.intersection(map(_FIRST4, words))
        texts = [t for t in _ASCII_TEXTS if t in prose]
        if not is_ascii:
            for first in set(_other_first_chars().findall(prose)):
                texts.extend(t for t in _OTHER_TEXTS_BY_FIRST_CHAR[first] if t in prose)
        self._found_texts = frozenset(texts)
        found = {*found6, *(f"{w}*" for w in found4), *(f"={t}" for t in texts)}  # as in _Keys.names
        gated: set[int] = set()
        for name in found:
            gated |= _BY_FIRST_GROUP_KEY.get(name, frozenset())
        for pattern_id in gated & _MORE_GROUPS.keys():
            for keys in _MORE_GROUPS[pattern_id]:
                if keys.names.isdisjoint(found):
                    gated.discard(pattern_id)
                    break
        return gated

    def line_starts(self) -> list[int] | None:
        """Where the lines of ``text`` start; None if there are so many that
        trying a pattern at each costs more than one search."""
        if not self._lines_found:
            starts = [0, *(i + 1 for i in _occurrences(self.text, "\n"))]
            self._line_starts = None if len(starts) * 24 > len(self.text) else starts
            self._lines_found = True
        return self._line_starts

    def _word_starts(self, needle: str) -> list[int]:
        """Positions in prose of ``needle`` (" key" or " key ") in the spaced words."""
        starts = self._key_starts.get(needle)
        if starts is None:
            starts = self._key_starts[needle] = _occurrences(self._spaced, needle)
        return starts

    def _starts(self, pattern_id: int) -> list[int] | None:
        """Sorted positions where a match of the gated pattern can start (where
        one of its gate words starts), or None to search everywhere."""
        if pattern_id in self._starts_by_id:
            return self._starts_by_id[pattern_id]
        gate = _GATE_BY_ID[pattern_id]
        result = None
        if not gate.anywhere:
            keys = gate.start
            starts: set[int] = set()
            for key in keys.words6 & self._found_words6:
                starts.update(self._word_starts(f" {key} " if len(key) < 6 else f" {key}"))
            for key in keys.words4 & self._found_words4:
                starts.update(self._word_starts(f" {key}"))
            for text in keys.texts & self._found_texts:
                starts.update(_occurrences(self.prose, text))
            if len(starts) * 24 <= len(self.prose):  # else the tries cost more than a search
                result = sorted(starts)
        self._starts_by_id[pattern_id] = result
        return result

    def search(self, pattern: re.Pattern[str], pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
        """``pattern.search(self.prose, pos, endpos)`` for a gated pattern."""
        pattern_id = id(pattern)
        if pattern_id not in self.gated:
            return None
        prose = self.prose
        end = len(prose) if endpos is None else endpos
        starts = None if len(prose) < _SHORT_PROSE else self._starts(pattern_id)
        if starts is None:
            return pattern.search(prose, pos, end)
        for start in starts:
            if start > end:
                break
            if start >= pos and (m := pattern.match(prose, start, end)):
                return m
        return None

    def strength(self, pattern: re.Pattern[str]) -> float:
        """1.0 if the pattern matches in the instruction region, 0.5 if only in
        the body, 0.0 if nowhere."""
        m = self.search(pattern)
        if m is None:
            return 0.0
        if m.start() < self.head_end or self.search(pattern, self.tail_start) is not None:
            return 1.0
        return 0.5

    def in_region(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = self.search(pattern, 0, self.head_end)
        if m is None and self.tail_start:
            m = self.search(pattern, self.tail_start)
        return m

    def near_digits(self, pattern: re.Pattern[str], lead: tuple[int, ...] = (0,)) -> Iterator[re.Match[str]]:
        """``pattern.finditer(self.text)`` for a pattern whose matches start
        ``lead`` characters before the first digit of a run, and are not empty."""
        if self.digit_runs is None:
            return pattern.finditer(self.text)
        starts = self.digit_runs if lead == (0,) else sorted({max(s - k, 0) for s in self.digit_runs for k in lead})
        return _matches_from(pattern, self.text, starts)

    def all_matches(self, pattern: re.Pattern[str]) -> list[str]:
        """``pattern.findall(self.prose)`` for a gated pattern without groups
        that never matches the empty string."""
        found = []
        m = self.search(pattern)
        while m is not None:
            found.append(m.group(0))
            m = self.search(pattern, m.end())
        return found


class _Labels:
    """label -> strength, keeping the strongest cue per label, in first-seen order."""

    def __init__(self) -> None:
        self.by_feature: dict[str, dict[str, float]] = {}

    def add(self, feature: str, label: str, strength: float) -> None:
        if strength <= 0:
            return
        labels = self.by_feature.setdefault(feature, {})
        if strength > labels.get(label, 0.0):
            labels[label] = strength

    def value(self, feature: str) -> float:
        total = sum(self.by_feature.get(feature, {}).values())
        return min(total, _LABEL_CAP) / _LABEL_CAP

    def names(self, feature: str) -> list[str]:
        return list(self.by_feature.get(feature, {}))


def _parse_int(raw: str) -> int | None:
    digits = raw.replace(",", "").replace(".", "").replace(" ", "")
    return int(digits) if digits.isdigit() and len(digits) <= 7 else None


def _length_asks(scan: _Scan, labels: _Labels) -> bool:
    """Word/page/paragraph/sentence counts. Returns True if a brevity count fired."""
    brief = False
    if not scan.has_digit:  # every count has digits
        return brief
    for m in scan.near_digits(_LENGTH_ASK):  # a count starts with its first digit
        n = _parse_int(m.group(1))
        if n is None or n == 0:
            continue
        if m.group(2):
            n *= 1000
        unit = m.group(3)
        if unit.startswith(("char", "caract", "signe", "zeichen", "caratter")):
            if n >= 3000:
                labels.add("output_length", f"{n} characters", 1.0)
            elif n >= 1000:
                labels.add("constraints", f"length limit ({n} characters)", 0.5)
            else:
                brief = True
        elif unit.startswith(("word", "palabra", "mot", "wort", "palavra", "parol")):
            if n >= 300:
                labels.add("output_length", f"{n} words", 1.0)
            elif n > 50:
                labels.add("constraints", f"length limit ({n} words)", 0.5)
            else:
                brief = True
        elif unit.startswith(("page", "pagina", "seite", "pagine")):
            if n >= 2:
                labels.add("output_length", f"{n} pages", 1.0)
            else:
                labels.add("constraints", "length limit (1 page)", 0.5)
        elif unit.startswith(("paragraph", "parrafo", "absatz", "paragrafo", "paragrafi")):
            if n >= 5:
                labels.add("output_length", f"{n} paragraphs", 1.0)
            elif n >= 3:
                labels.add("output_length", f"{n} paragraphs", 0.5)
            elif n == 2:
                labels.add("constraints", "length limit (2 paragraphs)", 0.5)
            else:
                brief = True
        else:  # sentences
            if n <= 3:
                brief = True
            else:
                labels.add("constraints", f"length limit ({n} sentences)", 0.5)
    speech = scan.search(_SPEECH_MINUTES) if id(_SPEECH_MINUTES) in scan.gated else None
    if speech is not None and int(speech.group(1) or speech.group(2)) >= 3:
        labels.add("output_length", f"{speech.group(1) or speech.group(2)}-minute speech", 1.0)
    lines = scan.search(_LINES_ASK)
    if lines is not None:
        n = int(lines.group(1))
        if n >= 40:
            labels.add("output_length", f"{n} lines", 1.0)
        elif n >= 12:
            labels.add("constraints", f"length limit ({n} lines)", 0.5)
    if not scan.text.isascii():
        for m in scan.near_digits(_CJK_LENGTH_ASK):
            chars = float(m.group(1)) * {"万": 10_000, "千": 1_000}.get(m.group(2) or "", 1)
            if chars >= 1_000:
                labels.add("output_length", f"{int(chars)} characters", 1.0)
            elif chars >= 300:
                labels.add("constraints", f"length limit ({int(chars)} characters)", 0.5)
            elif chars > 0:
                brief = True
    return brief


def _search_folded(scan: _Scan, pattern: re.Pattern[str], folded: str) -> bool:
    """Whether ``pattern`` (gated) matches ``folded``, a text without quoted spans
    blanked: through the gate if nothing was blanked (the words are the same)."""
    if folded is scan.prose or folded == scan.prose:
        return scan.search(pattern) is not None
    return pattern.search(folded) is not None


def _code_check(
    scan: _Scan, pattern: re.Pattern[str], starts: tuple[str, ...] | None, needs: tuple[str, ...]
) -> bool:
    """Whether ``pattern`` matches ``scan.text``, knowing where its matches start and what they contain."""
    text = scan.text
    for need in needs:
        if need not in text:
            return False
    if starts is None:
        positions = scan.line_starts()
    else:
        positions = []
        for start in starts:
            if start in text:
                positions += _occurrences(text, start)
        if len(positions) * 24 > len(text):  # so many tries cost more than a search
            positions = None
    if positions is None:
        return pattern.search(text) is not None
    return any(pattern.match(text, i) for i in positions)


def _has_math_symbol(raw: str) -> bool:
    return not raw.isascii() and _MATH_SYMBOL_CHARS.search(raw) is not None and _MATH_SYMBOLS.search(raw) is not None


def _code_and_math(raw: str, scan: _Scan, labels: _Labels) -> None:
    text = scan.text
    # Every math symbol is non-ASCII, so ASCII text cannot have one.
    if _has_math_symbol(raw[:_MAX_SCAN]) or (len(raw) > _MAX_SCAN and _has_math_symbol(raw[-_MAX_SCAN:])):
        labels.add("math", "math notation", 1.0)
    has_fence = _FENCES[0] in text or _FENCES[1] in text
    if has_fence:
        labels.add("code", "code block", 1.0)
    syntax_hits = 0
    for checks in _CODE_SYNTAX:
        for pattern, starts, needs in checks:
            # Cheap first test inline: the first need, or one of the starts.
            for s in needs[:1] or starts or ():
                if s in text:
                    break
            else:
                continue
            if _code_check(scan, pattern, starts, needs):
                syntax_hits += 1
                break
    if syntax_hits:
        labels.add("code", "code syntax", min(1.0, 0.5 * syntax_hits))
    code_present = has_fence or syntax_hits >= 2
    if code_present and _search_folded(scan, _DEBUG_HINT, text):
        labels.add("code", "debugging", 1.0)

    if not scan.has_digit:  # no numbers: no arithmetic, calculation or word problem
        return
    # Dates, numbers and arithmetic all start with the first digit of a run.
    if next(scan.near_digits(_DATE), None) is None:
        undated = text
        numbers = [m.group(0) for m in scan.near_digits(_NUMBER)]
        arithmetic = scan.near_digits(_ARITH)
    else:  # positions move: search the undated text in full
        undated = _DATE.sub(" ", text)
        numbers = _NUMBER.findall(undated)
        arithmetic = _ARITH.finditer(undated)
    # Arithmetic needs an operator between two numbers.
    if any(op in undated for op in "+*/×÷^%-"):
        for m in arithmetic:
            operands = _NUMBER.findall(m.group(0))
            if (
                len(operands) >= 3
                or "^" in m.group(0)
                or any(len(o.replace(",", "").replace(".", "")) >= 3 or "." in o for o in operands)
            ):
                labels.add("math", "non-trivial arithmetic", 1.5)
                break
    if not numbers:
        return
    calc = scan.strength(_CALC_VERB)
    if calc:
        nontrivial_numbers = len(numbers) >= 3 or any(
            len(n.replace(",", "").replace(".", "")) >= 3 or "." in n for n in numbers
        )
        labels.add("math", "calculation", calc * (1.0 if nontrivial_numbers else 0.5))
    if (len(numbers) >= 3 and _search_folded(scan, _WORD_PROBLEM_Q, undated)) or (
        len(numbers) >= _DATA_NUMBERS and _search_folded(scan, _DATA_QUESTION, undated)
    ):
        labels.add("math", "word problem", 1.5)


def _count_at_line_starts(scan: _Scan, pattern: re.Pattern[str]) -> int:
    """``len(pattern.findall(scan.text))`` for a non-empty pattern starting with ^."""
    starts = scan.line_starts()
    if starts is None:
        return len(pattern.findall(scan.text))
    return sum(1 for _ in _matches_from(pattern, scan.text, starts))


def _multi_part(scan: _Scan, labels: _Labels) -> None:
    text = scan.text
    # A count only matters from 2 (numbered) or 3 (bullets) up. Line-anchored
    # items need that many lines, numbers need a digit.
    newlines = text.count("\n")
    numbered = max(
        _count_at_line_starts(scan, _NUMBERED_LINE) if newlines else 0,
        # "(1) " starts 1-2 characters before its digit, "schritt 2" 5-8.
        sum(1 for _ in scan.near_digits(_NUMBERED_INLINE, (1, 2))) if ")" in text else 0,
        sum(1 for _ in scan.near_digits(_STEP_N, (5, 6, 8))),
    )
    if numbered >= 2:
        labels.add("multi_part", f"{numbered} numbered items", min(numbered, 5) * 0.4)
    bullets = _count_at_line_starts(scan, _BULLET) if newlines >= 2 else 0
    if bullets >= 3:
        labels.add("multi_part", f"{bullets} bullet points", 0.5)
    prose = scan.prose
    questions = prose.count("?")
    if questions >= 2:
        labels.add("multi_part", f"{questions} questions", min(1.5, (questions - 1) * 0.5))
    if scan.search(_SEQ_FIRST) and scan.search(_SEQ_THEN):
        labels.add("multi_part", "sequenced steps", 1.0)
    also = len(set(scan.all_matches(_SEQ_ALSO)))
    if also:
        labels.add("multi_part", "additional asks", min(1.0, 0.5 * also))


_KEYWORD_CUE_INDEX = {id(pattern): i for i, (_, _, _, pattern) in enumerate(_KEYWORD_CUES)}


def _length_value(tokens: int) -> float:
    if tokens <= _LENGTH_FLOOR:
        return 0.0
    return min(1.0, math.log2(tokens / _LENGTH_FLOOR) / math.log2(_LENGTH_CEIL / _LENGTH_FLOOR))


def _features(text: str) -> tuple[dict[str, float], _Labels, int]:
    tokens = estimate_tokens(text)
    scan = _Scan(_fold(text))
    labels = _Labels()

    # Only the cues whose gate passed, in table order (the order of the reasons).
    for i in sorted(_KEYWORD_CUE_INDEX[g] for g in scan.gated if g in _KEYWORD_CUE_INDEX):
        feature, label, strength, pattern = _KEYWORD_CUES[i]
        labels.add(feature, label, strength * scan.strength(pattern))
    _code_and_math(text, scan, labels)
    if "math" in labels.by_feature and id(_SHOW_THAT) in scan.gated:
        # "Show that <math statement>" asks for a proof.
        labels.add("reasoning", "proof", scan.strength(_SHOW_THAT))
    _multi_part(scan, labels)
    brief_count = _length_asks(scan, labels)

    values: dict[str, float] = {"length": _length_value(tokens)}
    by_feature = labels.by_feature
    for feature in _POSITIVE_FEATURES:
        values[feature] = labels.value(feature) if feature in by_feature else 0.0

    # Simple signals (0/1), recorded as labels for the reasons.
    original = scan.text if len(text) <= _REGION else _fold(text[:_REGION])
    greet = _GREETING.search(original)
    chat = scan.search(_CHIT_CHAT, 0, scan.head_end)
    if greet or chat:
        labels.add("chit_chat", (greet or chat).group(0).strip(" \t\n!,.?¡¿"), 1.0)  # type: ignore[union-attr]
        values["chit_chat"] = 1.0 if tokens <= _SHORT_PROMPT else 0.5
        # A polite opening before a real request ("Good afternoon! Could you help me
        # plan ...") says nothing about the request: only small talk counts.
        if (
            greet
            and not chat
            and any(values[f] for f in _POSITIVE_FEATURES)
            and (len(text) > _REGION or estimate_tokens(original[greet.end() :]) > _GREETING_TAIL)
        ):
            values["chit_chat"] = 0.0
    if tokens <= _SHORT_PROMPT:
        fact = _FACTUAL.search(_GREETING.sub("", scan.text, count=1).lstrip(" ,!.") or scan.text)
        if fact:
            labels.add("factual_lookup", fact.group(0).strip(" \t\n.!?:¿"), 1.0)
            values["factual_lookup"] = 1.0
    for label, pattern in _SIMPLE_TASK_CUES:
        if id(pattern) in scan.gated and scan.in_region(pattern):
            labels.add("simple_task", label, 1.0)
    if labels.names("simple_task"):
        values["simple_task"] = 1.0
    brev = scan.in_region(_BREVITY)
    if brev or brief_count:
        labels.add("brevity", brev.group(0) if brev else "short length limit", 1.0)
        values["brevity"] = 1.0

    if any(values[f] >= 0.5 for f in _STRONG_FEATURES):
        _dampen(values)
    return values, labels, tokens


def _dampen(values: dict[str, float]) -> None:
    """A strong complexity signal overrides chit-chat and weakens the other simple cues."""
    for f in ("chit_chat", "factual_lookup"):
        if f in values:
            values[f] = 0.0
    for f in ("simple_task", "brevity"):
        if f in values:
            values[f] *= 0.5


_BLANK_LINE = _lazy(r"\n[ \t]*\n")


def _pasted_splits(text: str) -> list[tuple[str, int, bool]]:
    """Ways to read the prompt as an instruction around pasted text, as
    ``(instruction, pasted characters, the instruction opens the prompt)``, most likely first:
    "<instruction>: <pasted>" or "<instruction><blank line><pasted>", each
    maybe followed by "<blank line><question?>"; then "<pasted><blank line>
    <instruction>". At least _MIN_DATA characters must be pasted."""
    if len(text) < _MIN_DATA:
        return []
    splits = []
    marker = _DATA_MARKER.search(text, 0, _REGION)
    first = _BLANK_LINE.search(text, 0, _REGION + 2)
    head_ends = [m.end() for m in (marker,) if m is not None] + [m.start() for m in (first,) if m is not None]
    last = None
    for last in _BLANK_LINE.finditer(text):
        pass
    tail_start = None
    if last is not None and len(text) - last.end() <= _REGION and text[last.end() :].strip():
        tail_start = last.end()
    if head_ends:
        head_end = min(head_ends)
        end = len(text)
        if tail_start is not None and tail_start > head_end and ("?" in text[tail_start:] or "？" in text[tail_start:]):
            end = tail_start  # a closing question about the pasted text is part of the instruction
        if end - head_end >= _MIN_DATA:
            splits.append(((text[:head_end] + "\n\n" + text[end:]).strip(), end - head_end, True))
    if tail_start is not None and tail_start >= _MIN_DATA:
        splits.append((text[tail_start:].strip(), tail_start, False))
    return splits


def _line_splits(text: str) -> list[tuple[str, int, bool]]:
    """The same with a single line break: the first or the last line as the
    instruction ("Summarize this in one line?\n<article>")."""
    splits = []
    first = text.find("\n")
    if 0 < first <= _LINE_INSTRUCTION and len(text) - first >= _MIN_DATA:
        splits.append((text[:first].strip(), len(text) - first, True))
    last = text.rfind("\n")
    if last >= _MIN_DATA and len(text) - last <= _LINE_INSTRUCTION and text[last:].strip():
        splits.append((text[last:].strip(), last, False))
    return splits


# "<a quantitative scenario>. <a question about it>?" in a short prompt, with at
# least two quantities: the
# shape of a word problem or puzzle ("Two fuses each burn an hour, unevenly.
# How do you time 45 minutes?"). Simple questions rarely state a scenario first.
_SCENARIO_QUESTION = _lazy(r"\A(?P<setup>[^?？]*[^\s.!?。！？][.!。！])\s+(?P<ask>[^.!?。！？]{2,120}[?？])\s*\Z", re.DOTALL)
_QUANTITY = _lazy(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twice|half|uno|una|dos|tres|cuatro"
    r"|cinco|deux|trois|quatre|cinq|eins?|eine[mnr]?|zwei|drei|vier|funf|um|uma|duas|dois|quatro|due|tre"
    r"|quattro)\b|[一二三四五六七八九十两]",
)
_SCENARIO_MAX_TOKENS = 40


def _scenario_question(text: str, tokens: int, labels: _Labels) -> bool:
    if tokens > _SCENARIO_MAX_TOKENS:
        return False
    m = _SCENARIO_QUESTION.match(" ".join(text.split()))  # collapsed: no whitespace runs to backtrack over
    # At least two quantities, one of them in the scenario ("I have two cats. Names?" is not a problem).
    if m is None or _QUANTITY.search(_fold(m.group("setup"))) is None or len(_QUANTITY.findall(_fold(text))) < 2:
        return False
    labels.add("reasoning", "a scenario, then a question about it", 1.0)
    return True


def _all_features(text: str) -> tuple[dict[str, float], _Labels, int, int | None, str]:
    """Features of the whole prompt, or of its instruction alone when a simple
    task is asked of pasted text (what the pasted text says does not make the
    task harder). Also the "detailed request" signal. Returns the values, the
    labels, the prompt's tokens, the pasted characters set aside (or None) and
    the text judged (the instruction or the whole prompt)."""
    splits = _pasted_splits(text)
    for index, (instruction, pasted, opens) in enumerate(splits + _line_splits(text)):
        values, labels, _ = _features(instruction)
        if opens and any(values[f] >= 0.5 for f in _STRONG_FEATURES):
            break  # the prompt opens with a real request of its own: judge all of it
        # A simple task, or (after a blank line or a colon) a lookup, on the text that follows.
        if values.get("simple_task") or (values.get("factual_lookup") and opens and index < len(splits)):
            tokens = estimate_tokens(text)
            values["length"] = _length_value(tokens)
            return values, labels, tokens, pasted, instruction
    values, labels, tokens = _features(text)
    if not values.get("simple_task") and not values.get("chit_chat") and _scenario_question(text, tokens, labels):
        values["reasoning"] = labels.value("reasoning")
        _dampen(values)  # a strong cue fired
    if not values.get("simple_task") and not values.get("chit_chat"):
        # The user's own words: the opening instruction, if the rest was pasted.
        own = estimate_tokens(splits[0][0]) if splits and splits[0][2] else tokens
        if own > _DETAIL_FLOOR:
            values["detailed_request"] = min(1.0, (own - _DETAIL_FLOOR) / (_DETAIL_FULL - _DETAIL_FLOOR))
            labels.add("detailed_request", f"{own} tokens in the user's own words", 1.0)
    return values, labels, tokens, None, text


# --------------------------------------------------------------------------
# The learned correction: a logistic regression over words, trained on the
# tuning split with the rules' score as a fixed offset (evals/train_router.py),
# so it only learns what the rules miss. Its weights ship with the layer.
# --------------------------------------------------------------------------

_WEIGHTS_FILE = Path(__file__).with_name("router_weights.json")
_LEARNED_WORD = _lazy(r"[a-z0-9]+")


def _learned_units(text: str) -> tuple[list[str], str]:
    """The folded words of ``text`` (its first and last _MAX_SCAN characters
    if long) and the folded text itself."""
    folded = _fold(text if len(text) <= 2 * _MAX_SCAN else text[:_MAX_SCAN] + "\n" + text[-_MAX_SCAN:])
    return _LEARNED_WORD.findall(folded), folded


def _cjk_pairs(folded: str) -> set[str]:
    pairs: set[str] = set()
    if not folded.isascii():
        for run in _cjk_runs().findall(folded):
            pairs.update([run[i : i + 2] for i in range(len(run) - 1)])
    return pairs


def _learned_features(text: str) -> set[str]:
    """Words ("w:"), word pairs ("b:") and, in CJK text, character pairs ("c:")
    of the folded text: the features the correction is trained on."""
    words, folded = _learned_units(text)
    found = {"w:" + w for w in words}
    found.update(["b:" + a + " " + b for a, b in zip(words, words[1:])])
    found.update(["c:" + pair for pair in _cjk_pairs(folded)])
    return found


_Weighted = tuple[str, float]  # (feature name, weight)


@functools.cache
def _learned_model() -> tuple[float, dict[str, _Weighted], dict[tuple[str, str], _Weighted], dict[str, _Weighted]]:
    """The bias and the weights of words, word pairs and CJK character pairs,
    kept apart and with their names, so that scoring a prompt builds no strings."""
    model = json.loads(_WEIGHTS_FILE.read_text(encoding="utf-8"))
    words: dict[str, _Weighted] = {}
    pairs: dict[tuple[str, str], _Weighted] = {}
    chars: dict[str, _Weighted] = {}
    for name, weight in model["weights"].items():
        kind, key = name[:2], name[2:]
        if kind == "w:":
            words[key] = (name, float(weight))
        elif kind == "b:":
            first, second = key.split(" ")
            pairs[first, second] = (name, float(weight))
        elif kind == "c:":
            chars[key] = (name, float(weight))
        else:
            raise ValueError(f"unknown feature {name!r} in {_WEIGHTS_FILE.name}")
    return float(model["bias"]), words, pairs, chars


def _rules_log_odds(values: dict[str, float]) -> float:
    """The rules' log-odds: the offset the learned correction is trained on and added to."""
    return BIAS + sum(FEATURE_WEIGHTS[f] * v for f, v in values.items() if v)


def _learned_z(text: str) -> tuple[float, list[_Weighted]]:
    """The correction to the rules' log-odds, and the features that made it."""
    bias, word_w, pair_w, char_w = _learned_model()
    words, folded = _learned_units(text)
    # Look each of the prompt's few units up (never intersect with the large weight
    # tables); dict.fromkeys counts each feature once, as in training.
    used = [word_w[w] for w in dict.fromkeys(words) if w in word_w]
    if len(words) > 1:
        used += [pair_w[pair] for pair in dict.fromkeys(zip(words, words[1:])) if pair in pair_w]
    if char_w and not folded.isascii():
        used += [char_w[c] for c in _cjk_pairs(folded) if c in char_w]
    return bias + math.fsum(weight for _, weight in used), used  # fsum: the same total in any order


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        # ValueError (not TypeError) on purpose: callers handle one error type for a bad threshold.
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")  # noqa: TRY004
    if not 0.0 < threshold < 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return float(threshold)


def classify(text: str, *, threshold: float = DEFAULT_THRESHOLD) -> Classification:
    """Classify ``text`` as ``"simple"`` or ``"complex"``.

    Raises ``ValueError`` for empty / whitespace-only text or a threshold
    outside the open interval (0, 1); ``TypeError`` if ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text must not be empty or whitespace")
    t = _check_threshold(threshold)

    values, labels, tokens, pasted, judged = _all_features(text)
    contributions = {f: FEATURE_WEIGHTS[f] * v for f, v in values.items() if v}
    z = _rules_log_odds(values)
    learned, learned_cues = _learned_z(judged)
    z += learned
    if abs(learned) >= _LEARNED_SHOWN:
        contributions["learned"] = learned
    score = round(1.0 / (1.0 + math.exp(-z)), 3)
    is_complex = score >= t
    if is_complex:
        confidence = (score - t) / (1.0 - t)
    else:
        confidence = (t - score) / t
    confidence = round(min(1.0, max(0.0, confidence)), 3)

    reasons: list[str] = []
    for feature, _ in sorted(contributions.items(), key=lambda kv: -abs(kv[1])):
        if feature == "length":
            size = "long prompt" if values["length"] >= 0.5 else "moderately long prompt"
            reasons.append(f"{size} ({tokens} tokens)")
        elif feature == "learned":
            same_sign = sorted((c for c in learned_cues if c[1] * learned > 0), key=lambda c: (-abs(c[1]), c[0]))
            cues = ", ".join(repr(name[2:]) for name, _ in same_sign[:3])
            direction = "complex" if learned > 0 else "simple"
            reasons.append(f"learned cues toward {direction} ({learned:+.1f}): {cues}" if cues else
                           f"learned prior toward {direction} ({learned:+.1f})")
        else:
            names = labels.names(feature)
            phrase = _FEATURE_PHRASES[feature]
            reasons.append(f"{phrase} ({', '.join(names)})" if names else phrase)
    ignored = [
        name
        for f, name in (("chit_chat", "greeting"), ("factual_lookup", "question phrasing"))
        if f in values and f not in contributions
    ]
    if ignored:
        reasons.append(f"{' and '.join(ignored)} ignored: the prompt carries a real task")
    if pasted is not None:
        reasons.append(f"judged on the instruction: {pasted} characters of pasted text set aside")
    if not is_complex and reasons and all(c > 0 for c in contributions.values()):
        reasons.append("complexity signals too weak to cross the threshold")
    if not reasons:
        reasons.append(
            "short prompt with no complexity signals" if tokens <= _LENGTH_FLOOR else "no complexity signals"
        )

    return Classification(
        tier="complex" if is_complex else "simple",
        is_complex=is_complex,
        score=score,
        confidence=confidence,
        reasons=tuple(reasons),
    )
