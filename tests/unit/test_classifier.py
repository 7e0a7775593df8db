"""Unit tests for harpoon.classifier (the local, deterministic complexity classifier)."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harpoon.classifier import (
    BIAS,
    DEFAULT_THRESHOLD,
    FEATURE_WEIGHTS,
    Classification,
    classify,
    estimate_tokens,
)

LAYER_DIR = Path(__file__).resolve().parents[2] / "layers" / "harpoon"

# ~430 words of plain prose with no complexity cues in it.
_PARAGRAPH = (
    "The town of Millbrook sits beside a slow river. Every spring the farmers plant corn and beans "
    "in the wide fields near the water. Children walk to the small school on the hill, and in the "
    "evening families gather in the square to talk about the weather. The bakery opens early, and the "
    "smell of fresh bread drifts down the main street. On weekends a market fills the square with "
    "stalls selling apples, cheese, honey and wool. Visitors say the town feels calm and friendly. "
)
LONG_PLAIN_TEXT = _PARAGRAPH * 5

SIMPLE_PROMPTS = [
    # greetings / chit-chat
    "Hello",
    "hi there!",
    "Thanks, that's all for today.",
    "How are you doing today?",
    "Hola, ¿qué tal?",
    "Bonjour !",
    "Hallo, wie geht's?",
    "Olá, tudo bem?",
    "你好",
    # short factual lookups / definitions
    "What is the capital of France?",
    "Who wrote Pride and Prejudice?",
    "Define photosynthesis.",
    "¿Cuál es la capital de Alemania?",
    "Quelle est la capitale de l'Italie ?",
    "Was ist ein Vulkan?",
    "Qual é a capital do Brasil?",
    # definitions whose topic noun is a "hard" word are still definitions
    "What is a zero-knowledge proof?",
    "What is Fermat's Last Theorem?",
    "What is software architecture?",
    # short translations
    "Translate 'good morning' into Spanish.",
    "Traduis « bonne nuit » en anglais.",
    # spelling / grammar fixes
    "Fix the spelling: I recieved teh package yesturday.",
    "Corrija a ortografia: 'Eu fui no mercado onten.'",
    # classification / sentiment / extraction from short text
    "Classify the sentiment of this review as positive or negative: 'The battery died after two days.'",
    "Extract the email address from: 'Contact John at john@example.com for details.'",
    # short summaries, simple lists, formatting
    "Summarize in one sentence: The city council met on Tuesday and voted to extend library hours.",
    "List five fruits.",
    "Format this as a bullet list: apples, pears, plums",
    "Convert 5 kilometers to miles.",
    # long-but-easy
    "Summarize this in one sentence: " + LONG_PLAIN_TEXT,
    "Fix the spelling: " + LONG_PLAIN_TEXT.replace("the ", "teh "),
    "Translate the following paragraph into French:\n\n" + LONG_PLAIN_TEXT,
]

COMPLEX_PROMPTS = [
    # short-but-hard: proofs and reasoning
    "Prove sqrt(2) is irrational.",
    "Is P = NP? Explain why step by step.",
    "Prove that there are infinitely many primes.",
    # code writing / debugging
    (
        "Write a Python function that parses an ISO 8601 duration string and returns the total "
        "number of seconds, with unit tests."
    ),
    (
        "Debug this code:\n```python\ndef avg(xs):\n    return sum(xs) / len(xs)\nprint(avg([]))\n```\n"
        "It crashes with ZeroDivisionError."
    ),
    "Implement an LRU cache in O(1) time per operation without using OrderedDict.",
    # non-trivial computation / multi-step reasoning
    "Compute the integral of x^2 * e^x from 0 to 1 and show each step.",
    (
        "A train leaves at 3 pm at 60 mph and a second train leaves the same station at 4 pm at 80 mph. "
        "How many hours until the second train catches up?"
    ),
    (
        "1. Read the attached policy.\n2. Identify the three biggest risks.\n3. Propose mitigations for "
        "each.\n4. Estimate the cost of each mitigation."
    ),
    # in-depth analysis / comparison / evaluation, design and planning under constraints
    (
        "Compare and evaluate PostgreSQL and MongoDB for a high-write analytics workload, discussing "
        "the trade-offs in detail."
    ),
    ("Design a rate limiter for a distributed API that handles 1 million requests per second with at most 1% error."),
    (
        "Plan a 7-day itinerary in Japan with a budget of $2000; it must include at least two hiking "
        "days and no flights."
    ),
    "What are the trade-offs between eventual and strong consistency in distributed databases?",
    "Find the integral of sin(x) cos(x).",
    # long-form writing
    "Write a 1500-word essay on the causes of the First World War.",
    # other languages
    "Analiza paso a paso las ventajas y desventajas de usar microservicios frente a un monolito.",
    "Escribe una función en Python que ordene una lista sin usar sort().",
    "Démontrez que la racine carrée de 2 est irrationnelle.",
    "Analysez étape par étape l'impact économique de l'inflation sur les ménages.",
    "Beweise, dass es unendlich viele Primzahlen gibt.",
    "Analysiere Schritt für Schritt die Vor- und Nachteile der Kernenergie.",
    "Demonstre que a raiz quadrada de 3 é irracional.",
    "Escreva um ensaio de 1000 palavras sobre a Revolução Industrial.",
    "请逐步证明根号2是无理数。",
    # a greeting in front of a real task does not make it simple
    "Hi! Can you prove that there are infinitely many primes?",
]

MID_PROMPT = "Explain how photosynthesis works."


def _short_id(prompt: str) -> str:
    return prompt[:40].replace("\n", " ")


@pytest.mark.parametrize("prompt", SIMPLE_PROMPTS, ids=_short_id)
def test_simple_prompts_are_simple(prompt: str) -> None:
    result = classify(prompt)
    assert result.tier == "simple", result
    assert result.is_complex is False
    assert result.score < DEFAULT_THRESHOLD


@pytest.mark.parametrize("prompt", COMPLEX_PROMPTS, ids=_short_id)
def test_complex_prompts_are_complex(prompt: str) -> None:
    result = classify(prompt)
    assert result.tier == "complex", result
    assert result.is_complex is True
    assert result.score >= DEFAULT_THRESHOLD


def test_case_lists_cover_the_brief() -> None:
    assert len(SIMPLE_PROMPTS) >= 20
    assert len(COMPLEX_PROMPTS) >= 20
    assert "Hello" in SIMPLE_PROMPTS


@pytest.mark.parametrize("prompt", SIMPLE_PROMPTS + COMPLEX_PROMPTS + [MID_PROMPT], ids=_short_id)
def test_result_shape_and_ranges(prompt: str) -> None:
    result = classify(prompt)
    assert isinstance(result, Classification)
    assert result.tier in ("simple", "complex")
    assert result.is_complex == (result.tier == "complex")
    assert 0.0 <= result.score <= 1.0
    assert 0.0 <= result.confidence <= 1.0
    assert result.score == round(result.score, 3)
    assert result.confidence == round(result.confidence, 3)
    assert isinstance(result.reasons, tuple)
    assert result.reasons
    assert all(isinstance(r, str) and r for r in result.reasons)


def test_result_is_frozen() -> None:
    result = classify("Hello")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.tier = "complex"  # type: ignore[misc]


def test_deterministic_in_process() -> None:
    for prompt in SIMPLE_PROMPTS + COMPLEX_PROMPTS:
        assert classify(prompt) == classify(prompt)


def test_deterministic_across_hash_seeds() -> None:
    script = (
        "from harpoon.classifier import classify\n"
        "for p in ['Hello', 'Prove sqrt(2) is irrational.', 'Compare and evaluate A and B, with "
        "trade-offs, in detail.', 'Design an API. It must be fast. And also explain why?']:\n"
        "    print(repr(classify(p)))\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONPATH": str(LAYER_DIR), "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def test_confidence_is_scaled_distance_from_threshold() -> None:
    for prompt in ("Hello", MID_PROMPT, "Prove sqrt(2) is irrational."):
        for threshold in (0.3, 0.5, 0.7):
            r = classify(prompt, threshold=threshold)
            if r.is_complex:
                expected = (r.score - threshold) / (1 - threshold)
            else:
                expected = (threshold - r.score) / threshold
            assert r.confidence == pytest.approx(expected, abs=1e-3)
    # Clear cases are confident, the mid case is not.
    assert classify("Hello").confidence > 0.8
    assert classify(MID_PROMPT).confidence < 0.5


# -- reasons -------------------------------------------------------------------


def _joined(prompt: str) -> str:
    return " | ".join(classify(prompt).reasons).lower()


def test_reasons_mention_the_fired_signal() -> None:
    assert "proof" in _joined("Prove sqrt(2) is irrational.")
    assert "step by step" in _joined("Is P = NP? Explain why step by step.")
    assert "code" in _joined(COMPLEX_PROMPTS[4])  # the debugging prompt
    assert "write code" in _joined("Write a Python function that reverses a linked list.")
    assert "greeting" in _joined("Hello")
    assert "factual" in _joined("What is the capital of France?")
    assert "summarization" in _joined("Summarize this in one sentence: " + LONG_PLAIN_TEXT)
    assert "essay" in _joined("Write a 1500-word essay on the causes of the First World War.")
    assert "1500 words" in _joined("Write a 1500-word essay on the causes of the First World War.")
    assert "without using" in _joined("Sort a list in Python without using sorted().")
    assert "numbered items" in _joined(COMPLEX_PROMPTS[8])


def test_reasons_for_a_plain_short_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    import harpoon.classifier as module

    monkeypatch.setattr(module, "_learned_z", lambda text: (0.0, []))  # the rules' own explanation
    result = classify("Tell me about the sea.")
    assert result.tier == "simple"
    assert result.reasons == ("short prompt with no complexity signals",)


def test_the_learned_correction_names_its_words() -> None:
    result = classify("Monorepo or polyrepo for 40 engineers and 15 services?")
    learned = [r for r in result.reasons if r.startswith("learned cues toward")]
    assert len(learned) == 1 and "'" in learned[0]  # the words that moved the score, quoted


def test_reasons_report_long_prompt_token_count() -> None:
    text = "Please read the following notes.\n\n" + LONG_PLAIN_TEXT * 3
    result = classify(text)
    assert f"long prompt ({estimate_tokens(text)} tokens)" in result.reasons


def test_long_but_easy_stays_simple_but_length_is_a_reason() -> None:
    result = classify("Summarize this in one sentence: " + LONG_PLAIN_TEXT)
    assert result.tier == "simple"
    assert any(r.startswith(("long prompt", "moderately long prompt")) for r in result.reasons)


def test_length_alone_pushes_the_score_up() -> None:
    short = classify("Please read the following notes.")
    long = classify("Please read the following notes.\n\n" + LONG_PLAIN_TEXT * 3)
    assert long.score > short.score


def test_simple_cues_in_the_pasted_body_do_not_make_a_task_simple() -> None:
    # "translate" only appears deep inside the pasted text, not in the instruction.
    body = LONG_PLAIN_TEXT + " A visitor once asked a child to translate the sign. " + LONG_PLAIN_TEXT
    result = classify("Critique the writing style of this passage in detail and justify each point:\n\n" + body)
    assert result.tier == "complex"
    assert "translation" not in " ".join(result.reasons)


def test_quoted_text_is_data_not_instruction() -> None:
    assert classify("Give me a synonym for 'analyze'.").tier == "simple"
    assert classify('Translate "prove the theorem step by step" into German.').tier == "simple"


def test_factual_phrasing_does_not_hide_a_hard_question() -> None:
    hard = "What are the trade-offs between eventual and strong consistency in distributed databases?"
    assert classify(hard).tier == "complex"
    assert classify("What is the derivative of x^3 sin(x)?").tier == "complex"
    assert classify("What is a derivative?").tier == "simple"


# -- pasted text, own words, greetings -----------------------------------------

TECHNICAL_BODY = (
    "In this work we proposes a novel algorithm to prove convergence of distributed schedulers. We analyze "
    "the trade-offs, design a fault-tolerant architecture and derive step by step the complexity O(n log n). "
    "The evaluation compare three benchmark and shows that our method reduce latency by 18 %.\n\n"
    "```python\ndef schedule(tasks):\n    return sorted(tasks)\n```\n"
)


@pytest.mark.parametrize(
    "prompt",
    [
        "Fix the spelling and grammar only, don't touch the content:\n\n" + TECHNICAL_BODY,
        "Summarize this in one sentence:\n\n" + TECHNICAL_BODY,
        TECHNICAL_BODY + "\n\nCan you boil the above down to one line for Slack?",
        TECHNICAL_BODY.replace("\n\n", "\n") + "\nTwo-sentence summary?",
        "Extrae los nombres de personas de esta noticia:\n\n" + TECHNICAL_BODY,
    ],
    ids=["fix-before", "summarize-before", "summarize-after", "last-line", "extract-es"],
)
def test_a_simple_task_on_pasted_text_is_judged_by_its_instruction(prompt: str) -> None:
    result = classify(prompt)
    assert result.tier == "simple", result.reasons
    assert any(r.startswith("judged on the instruction") for r in result.reasons)


def test_a_question_about_pasted_data_still_counts_the_data() -> None:
    table = "\n".join(f"Store {c}: revenue ${r}k, rent ${p}k/mo, staff {s}" for c, r, p, s in
                      [("A", 420, 18, 12), ("B", 380, 11, 9), ("C", 510, 26, 16)])
    prompt = f"Here are our numbers:\n\n{table}\n\nWhich store performs best once costs count, and why?"
    result = classify(prompt)
    assert result.tier == "complex", result.reasons
    assert not any(r.startswith("judged on the instruction") for r in result.reasons)


def test_a_long_request_in_the_users_own_words_is_a_detailed_request() -> None:
    own = (
        "My partner and I are moving from Cologne to Munich at the end of July with two kids aged 4 and 7. "
        "I keep working remotely, he starts a new job on August 1st. We still have to find a flat, register "
        "the kids at a school and a kindergarten, sell the car and sort out the old lease, which ends in "
        "September. What should we do first, and how would you order the rest of it week by week?"
    )
    result = classify(own)
    assert result.tier == "complex"
    assert any(r.startswith("long, detailed request") for r in result.reasons)
    chatty = "Hi! " + "I just wanted to say the app is lovely and my whole family enjoys it a lot. " * 4
    assert classify(chatty).tier == "simple"


def test_a_greeting_before_a_real_request_is_ignored() -> None:
    result = classify("Boa tarde! Poderia me ajudar a planejar a migração de um monólito PHP para microsserviços?")
    assert result.tier == "complex"
    assert "greeting ignored: the prompt carries a real task" in result.reasons
    assert classify("Good morning! How are you today?").tier == "simple"


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("Show that the sum of two even integers is even.", "complex"),
        ("Zeig, dass jede natürliche Zahl größer als 1 eine Primfaktorzerlegung hat.", "complex"),
        ("The quarterly results show that sales rose.", "simple"),
        ("Qui a démontré le dernier théorème de Fermat ?", "simple"),
        ("ポアンカレ予想を解決した数学者の名前を教えてください。証明の中身は要らないです。", "simple"),
        ("Build a tiny Lisp interpreter in Python with closures.", "complex"),
        ("Scrivimi un web scraper asincrono in Python.", "complex"),
        ("Make a song in C major for my daughter.", "simple"),
        ("Logic puzzle: exactly one of the four suspects lies. Who did it?", "complex"),
        ("Find the heavier ball among 9 in 2 weighings.", "complex"),
        ("Écris une nouvelle de science-fiction d'environ 3 000 mots.", "complex"),
        ("地方移住をテーマにした短編小説を1万字くらいで書いてほしいです。", "complex"),
        ("Escreve um conto de uns 15 mil caracteres sobre uma avó.", "complex"),
        ("Compose a ballad of at least 60 lines about a lost ship.", "complex"),
        ("Diséñame un plan semana a semana para mi primera maratón.", "complex"),
        ("Condense these notes into 3 bullet points: we met, agreed the budget, set a date.", "simple"),
        ("Two fuses each burn an hour, unevenly. How do you time 45 minutes?", "complex"),
        ("I have two cats. What names do you suggest?", "simple"),
        ("Roughly how many piano tuners work in Chicago?", "complex"),
        ("How would you design a rate limiter for a public API?", "complex"),
        ("Pratt parser in C, please.", "complex"),
        ("A 3-minute toast for my brother's wedding, please.", "complex"),
        ("In how many ways can 8 rooks sit on a chessboard without attacking each other?", "complex"),
        ("Questa recensione è positiva o negativa? Una parola.", "simple"),
    ],
)
def test_multilingual_cues(prompt: str, tier: str) -> None:
    assert classify(prompt).tier == tier, classify(prompt).reasons


@pytest.mark.parametrize(
    "prompt",
    [
        "Build a Flask REST API with these endpoints:\n- POST /users creates a user and validates the email\n"
        "- GET /users/<id> returns the user or 404\n- DELETE /users/<id> requires an admin token\n"
        "- GET /report returns all users as CSV",
        "Write a Python script that does the following:\n1. Reads every .log file in a directory tree\n"
        "2. Parses timestamps in three different formats\n3. Groups errors by service and hour\n"
        "4. Summarize the results in a table",
        "Design a rate limiter for our public API.\n\nRequirements:\n1. 10k requests per second per tenant\n"
        "2. Burst handling\n3. Works across 12 regions\n4. Must degrade gracefully if Redis is down\n\n"
        "What is the best algorithm?",
        "What's the cleanest way to do this?\nI have a Django monolith with 40 apps and one Postgres database. "
        "Plan the migration to services step by step and analyze the risks of each phase.",
    ],
    ids=["last-bullet-as-csv", "last-item-summarize", "closing-lookup", "first-line-lookup"],
)
def test_a_request_of_its_own_is_not_set_aside_as_pasted_text(prompt: str) -> None:
    """Found in review: a simple cue in the last line, or a lookup in the first,
    must not turn the user's own request into "pasted text"."""
    result = classify(prompt)
    assert result.tier == "complex", result.reasons
    assert not any(r.startswith("judged on the instruction") for r in result.reasons)


def test_a_blank_line_before_the_question_does_not_change_the_answer() -> None:
    body = ("Our team keeps missing sprint goals. The product owner changes priorities mid-sprint, two seniors "
            "left in March, and the new hires need a lot of review time. Stand-ups run 40 minutes. ")
    assert classify(body + "What should we do?").tier == classify(body + "\n\nWhat should we do?").tier


def test_line_counts_of_pasted_input_are_not_a_length_request() -> None:
    assert not any("lines" in r for r in classify("Why do these 200 lines of logs repeat?").reasons)
    assert any("60 lines" in r for r in classify("A poem of at least 60 lines, please.").reasons)


# -- threshold -----------------------------------------------------------------


def test_threshold_moves_the_decision() -> None:
    default = classify(MID_PROMPT)
    assert 0.05 < default.score < 0.95
    assert classify(MID_PROMPT, threshold=0.05).tier == "complex"
    assert classify(MID_PROMPT, threshold=0.95).tier == "simple"
    # The score itself does not depend on the threshold.
    assert classify(MID_PROMPT, threshold=0.05).score == default.score


def test_default_threshold() -> None:
    assert DEFAULT_THRESHOLD == 0.5
    assert classify(MID_PROMPT) == classify(MID_PROMPT, threshold=DEFAULT_THRESHOLD)


@pytest.mark.parametrize("threshold", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_threshold_raises_value_error(threshold: object) -> None:
    with pytest.raises(ValueError):
        classify("Hello", threshold=threshold)  # type: ignore[arg-type]


# -- input validation ----------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n"])
def test_empty_text_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        classify(text)


def test_non_string_text_raises_type_error() -> None:
    with pytest.raises(TypeError):
        classify(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        classify(b"hello")  # type: ignore[arg-type]


# -- estimate_tokens -----------------------------------------------------------


def test_estimate_tokens_latin() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("   \n\t") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd" * 100) == 100
    assert estimate_tokens("hello world") == 3  # 11 chars / 4, rounded up
    # Runs of whitespace count once.
    assert estimate_tokens("hello      world") == estimate_tokens("hello world")


def test_estimate_tokens_cjk_counts_each_character() -> None:
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("こんにちは") == 5
    assert estimate_tokens("hello 你好") == 2 + 2  # "hello " -> 2, two CJK chars -> 2
    # The same meaning in CJK costs more tokens per character than Latin text.
    assert estimate_tokens("你" * 400) > estimate_tokens("a" * 400)


def test_estimate_tokens_is_monotonic_in_length() -> None:
    counts = [estimate_tokens(_PARAGRAPH * n) for n in range(1, 6)]
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)
    words = len(_PARAGRAPH.split())
    # ~4 chars per token for English prose is roughly 1.3 tokens per word.
    assert 1.0 * words <= estimate_tokens(_PARAGRAPH) <= 2.0 * words


# -- module hygiene ------------------------------------------------------------


def test_feature_weights_documented_and_signed() -> None:
    import harpoon.classifier as module

    doc = module.__doc__ or ""
    for name, weight in FEATURE_WEIGHTS.items():
        assert name in doc
        assert f"{weight:+.1f}" in doc
    assert BIAS < 0  # a prompt with no signals is simple
    for name in ("chit_chat", "factual_lookup", "simple_task", "brevity"):
        assert FEATURE_WEIGHTS[name] < 0
    for name in ("length", "reasoning", "multi_part", "code", "math", "constraints", "output_length"):
        assert FEATURE_WEIGHTS[name] > 0


def test_import_pulls_in_no_third_party_modules() -> None:
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import harpoon.classifier\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "third = sorted(m for m in new if m != 'harpoon' and m not in sys.stdlib_module_names)\n"
        "banned = sorted(m for m in ('boto3', 'botocore', 'httpx', 'pydantic', 'aws_lambda_powertools') "
        "if m in sys.modules)\n"
        "print('third=' + ','.join(third))\n"
        "print('banned=' + ','.join(banned))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(LAYER_DIR)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = dict(line.split("=", 1) for line in proc.stdout.strip().splitlines())
    assert lines["banned"] == "", proc.stdout
    assert lines["third"] == "", proc.stdout


def test_large_input_is_classified() -> None:
    # How fast, including inputs built to make a regex backtrack, is `make bench`'s business.
    text = ("Analyze the following log line by line. " + "x" * 60 + "\n") * 400  # ~40 KB
    result = classify(text)
    assert result.tier == "complex"
    assert math.isfinite(result.score)
