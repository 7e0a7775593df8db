"""harpoon.classifier's speed shortcuts must not change a single result.

* Plain mode: a few hundred varied prompts, generated below from a seeded RNG
  and a fixed phrase list that makes every cue fire somewhere, are classified
  twice, normally and with every shortcut patched out (plain_mode: no gates,
  plain regex calls over the whole text), and compared field by field (tier,
  is_complex, score, confidence, reasons, and estimate_tokens). When plain
  mode was introduced it reproduced, for all 490 prompts, the outputs frozen
  from the implementation written before any shortcut existed.
* Each shortcut's assumption is also checked on its own: every gate is proven
  sound from the regex syntax tree; the gated, digit- and line-anchored searches
  and the rewritten code-syntax and quote patterns are compared with plain
  regex calls on random text; the character tables are checked against
  unicodedata and str.isspace.

No timings are asserted here (see the module docstring for what is fast).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import re
import re._constants as sre  # the regex syntax tree, to prove the gates sound
import re._parser as sre_parse
import sys
import unicodedata
from collections.abc import Iterator

import pytest

import harpoon.classifier as clf

THRESHOLDS = (0.5, 0.3, 0.7)

# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------

# One example for (nearly) every alternative of every cue pattern, in the
# folded form the patterns use (the generator re-capitalises some).
PHRASES = [
    'prove', 'proofs of', 'demonstrate that', 'demuestra', 'demostrar', 'demostracion', 'prueba que', 'demontre',
    'prouver', 'beweis', 'demonstre', 'prova que', 'dimostra', 'докажb', 'доказаabx', '证明', '証明', 'proof',
    'show that', 'muestra que', 'montrer que', 'zeige dass', 'mostre que', 'derivation', 'derive', 'deriva',
    'derivar', 'derivez', 'herleitcby', 'deduce', 'step-by-step', 'paso a paso', 'etape par etape',
    'schritt fur schritt', 'passo a passo', 'passo dopo passo', 'шаг за шагом', '一步一步', '逐步', 'ステッフハイステッフ', '段階的に',
    'show all the reasoning', 'show each step', 'chain of thought', 'muestra tu procedimiento',
    'montrez votre raisonnement', 'mit rechenweg', 'mostre seu raciocinio', 'explain in detail', 'explica por que',
    'expliquez em detalhe', 'erklare im detail', 'spiega perche', 'объясни, почему', 'explainz', 'explica1',
    'expliqueabz', 'erklarung', 'how do aaz work', 'como funciona', 'comment fonctionne', 'wie funktioniert', '解释',
    '説明', '为什么', 'なせ', 'analyzed', 'analiza', 'analyser', 'analysiere', 'analisar', 'analizzacax',
    'проанализируca', 'анализby', '分析', 'analisis', 'provide;evaluation', 'compara', 'contrast', 'vergleiche',
    'confrontazbb', 'сравниx1c', '比较', '比較', 'comparaison', 'vergleich', 'versus', 'vs', 'frente a',
    'difference between', 'diferencia entre', 'difference entre', 'unterschied zwischen', 'diferenca entre', '区别',
    '違い', 'evaluate', 'assessing', 'evalua', 'evaluer', 'evaluez', 'bewertec', 'beurteilea', 'avaliar', '评估', '評価',
    'evaluation', 'assessment', 'evaluacion', 'avaliacao', 'bewertung', 'critique1', 'criticize', 'critica',
    'criticar', 'kritisiercc', 'review my architecture', '批判', 'design my', 'designing a', 'system design',
    'design document', 'architect an', 'disene', 'concevoir', 'concois', 'entwerfen', 'projetar', 'progettc', '设计',
    '設計', 'design', 'diseno', 'entwurf', 'architecture', 'arquitectura', 'scalabcac', 'scale the',
    'high availability', 'fault-toleran', 'distributed systems', 'load balanc', 'escalab', 'skalierbarx',
    'escalavel', "passer a l'echelle", 'optimize', 'optimiza', 'optimiser', 'optimierezxy', 'otimizar', '优化',
    '最適化', 'optimierung', 'tradeoffs', 'pros and cons', 'advantages and disadvantages', 'strengths and weaknesses',
    'ventajas y desventajas', 'pros y contras', 'avantages et inconvenients', 'vor- und nachteile',
    'vorteile und nachteile', 'vantagens e desvantagens', 'pros e contras', '利弊', '优缺点', 'メリットとテメリット', 'justify',
    'justifier', 'begrundbx', 'outline,migration plan', 'planifica:e:plan', 'etablis;itineraire',
    'monte cronograma', 'plan for', 'strategx_a', 'roadmap', 'planifia1b', 'planej', '计划', 'solve', 'resuelve',
    'resolver', 'resous', 'resolvez', 'resoudre', 'resolva', 'figure out', 'work out', 'puzzle', 'riddle',
    'what would happen if', 'what if', 'how would you', 'implications', 'consequences', 'que pasaria si',
    'que se passerait-il si', 'was ware wenn', 'o que aconteceria se', 'reason about', 'think carefully',
    'root cause', 'critically', 'to what extent', 'argue against', 'implement ,server', 'crea,script',
    'ecrire,fonction', 'implemente consulta', '写xb脚本', '编写', '関数を書', 'implementxyx', 'implementabcc', '实现', '実装',
    'debug', 'refactor', 'traceback', 'stacktrace', 'segmentation fault', 'segfault', 'compil error',
    'syntaxerror', 'typeerror', 'nullpointerexception', 'indexerror', 'keyerror', 'zerodivisionerror', 'depuraca',
    'refactoriz', 'debogu', 'refator', 'refaktorier', '调试', 'テハック', 'kotlin', 'c++', 'big o', 'theorem', 'lemma',
    'corollary', 'axiom', 'conjecture', 'teorema', 'theoreme', 'lemme', 'conjetura', 'vermutung', 'conjectura',
    '定理', '引理', 'integral', 'integrale', 'integration by parts', 'derivative', 'differentiat', 'limit of', 'lim_',
    'converge', 'diverge', 'differential equation', 'derivada', 'derivee', 'ableitung', 'integrier1b', 'grenzwert',
    'ecuacion diferencial', 'equation differentielle', 'differentialgleichung', 'equacao diferencial', '微分', '积分',
    '積分', '导数', '極限', '极限', 'probabilitb', 'expected value', 'variance', 'standard deviation', 'bayesy',
    'stochastic', 'probabilidad', 'wahrscheinlichkeitz_', 'probabilidade', 'erwartungswert', '概率', '確率', 'matrix',
    'eigenyy', 'determinant', 'vector space', 'primes', 'prime number', 'irrationalz1', 'rational numbers',
    'modulo', 'modular arithmetic', 'gcd', 'lcm', 'polynomial', 'logarithma_b', 'factorial', 'combinatori1a',
    'permutation', 'sqrt', 'square root', 'equation', 'inequalitc_', 'numeros primos', 'nombres premiers',
    'primzahl', 'matriz', 'matrice', 'irracional', 'irrationnely', 'raiz cuadrada', 'racine carree',
    'quadratwurzel', 'ecuacion1b', 'gleichungc1z', 'equacao', 'equacoes', '质数', '素数', '无理数', '無理数', '方程',
    'q \t^ f', '7u \t -5', 'j - \t\t7  =\t \tk', 'w\t= -235 f', 'f( j  ) =', 'd  /   dz', 'log_024 \t (',
    'cosh\t\t\t( \t\tw', '\\prod', 'must', 'has to', 'have to', 'required', 'mandatory', 'debe', 'tiene que',
    'dois', 'doivent', 'il faut', 'musszyb', 'devem', 'tem que', 'obligatoricy_', 'without any imports',
    'do not use', 'must not', 'not allowed', 'no libraries', 'only use', 'sin usar', 'sans utiliser',
    "n'utilisez pas", 'ohne zu benutzen', 'verwende kein', 'sem usar', 'nao use', '不使用', '不要使用', '使わすに', 'at most',
    'no fewer than', 'exactly 7', 'within 3', 'under 2', 'up to 6', 'al menos', 'como minimo', 'no mas de',
    'exactamente', 'au plus', 'pas plus de', 'exactement', 'mindestens', 'hochstens', 'nicht mehr als', 'genau 4',
    'pelo menos', 'no minimo', 'nao mais de', 'exatamente', '至少', '最多', 'o(m\t )', 'linear time', 'constant time',
    'logarithmic time', 'in place', 'budget', 'deadline', 'requirements', 'constraint', 'presupuesto',
    'restricciones', 'requisitos', 'contraintes', 'exigences', 'frist', 'einschrankungen', 'anforderungen',
    'orcamento', 'restricoes', 'prazo', 'plazo', 'delai', 'essays', 'ensayo', 'dissertation', 'aufsatz', 'essai',
    'redacao', 'ensaio', 'thesis', 'tesis', 'tese', '论文', '論文', 'full report', 'whitepaper', 'research paper',
    'literature review', 'business plan', 'case study', 'informe detallado', 'rapport detaille',
    'detaillierten bericht', 'relatorio detalhado', 'plan de negocios', 'plano de negocios', 'businessplan', '报告',
    'レホート', 'ecris:articulo', 'escribe,conto', 'comprehensive', 'exhaustive', 'in-depth', 'exhaustivo', 'a fondo',
    'exhaustif', 'approfondicby', 'en profondeur', 'umfassend1', 'ausfuhrlichb', 'abrangente', 'aprofundada',
    'exaustivo', '详细', '詳細', '全面', 'detailed', 'thorough', 'in detail', 'detallada', 'en detalle', 'detaillee',
    'en detail', 'detailliert1', 'im detail', 'detalhada', 'em detalhe', 'guide', 'translat1c1', 'traduc1',
    'traduisa', 'traduire', 'traduza', 'traduzir', 'ubersetzz', 'how do you say', 'como se dice', 'comment dit-on',
    'wie sagt man', 'como se diz', '翻译', '翻訳', 'proofreadzbapunctuation', 'proofreadz', 'spellcheckz1',
    'corrija fautes', 'ortografia', 'orthographe', 'rechtschreibung1', 'sentiment', 'classify', 'categorise',
    'positive or neutral', 'extract', 'sentimiento', 'clasificabby', 'extrae', 'classifier', 'extrais', 'extraire',
    'stimmung', 'klassifiziere', 'extrahierec1c', 'sentimento', 'classifique', 'classificar', 'extraia', '情感',
    '情绪', '感情分析', 'summarizx', 'summary', 'tldr', 'resumir', 'fassaa zusammen', 'zusammenfass1a', 'sintetiza',
    'gist', '总结', '概括', '要約', 'まとめ', '.   enumerate\t   tres', '.   dame  cinco', 'turn markdown',
    'sort bcalphabeticala_x', 'alphabetize', 'in uppercase', 'convert 8, b in ycxc', 'convierte 9', 'convertis 9',
    'rechne 40azzy in', 'converta 7', 'rephrase1cy', 'make this more polite', 'to sound friendly', 'reformulbbz',
    'parafrasez', 'umformulierayb', 'reescrev1ac', 'hiya', '.您好', 'how are you', "how's it going", "what's up",
    'nice to meet you', 'who are you', "what's your name", 'tell me a joke', 'have a good day', 'como estas',
    'que tal', 'ca va', 'comment ca va', "wie geht's", 'tudo bem', 'como vai', 'como voce esta', 'come stai',
    'как дела', '你好吗', 'お元気てすか', '¿(wie alt', '什么是', '是什么', '谁是', 'とは', 'in 1 sentence', 'one word answer',
    'in a few words', 'briefly', 'short answer', 'yes or no', 'en una frase', 'en pocas palabras', 'brevemente',
    'en une ligne', 'en un mot', 'en quelques mots', 'brievement', 'in einem wort', 'in wenigen worten', 'kurz',
    'em uma palavra', 'em poucas palavras', 'resumidamente', 'ja oder nein', 'oui ou non', 'si o no', 'sim ou nao',
    '一句话', '简短', '一言て', 'bug', 'falla', 'erreur', 'fehler', 'erro', '计算', '計算', 'how fast', 'what time',
    'when does', 'cuantos', 'combien', 'wie lange', 'quantos', '多少', '几', '何時', 'いくつ', 'firstly', '首先', 'ます',
    'next', '然后', '最后', '次に', 'de plus', '另外', '此外',
]

EXTRA = [
    # accented / original spellings, other scripts, greetings, small talk
    "Démontrez que", "Schritt für Schritt", "ステップバイステップ", "デバッグ", "メリットとデメリット", "使わずに",
    "お元気ですか", "一言で", "Analysez étape par étape", "Escreva um ensaio", "Revolução Industrial", "¿Qué tal?",
    "¡Hola!", "Olá, tudo bem?", "Hallo, wie geht's?", "Привет", "Спасибо", "你好", "您好", "こんにちは", "안녕하세요",
    "Thanks!", "Good morning", "Bonjour !", "Hi there", "Tschüss", "Grazie", "ありがとう", "请逐步证明根号2是无理数。",
    "Qual é a capital do Brasil?", "Quelle est la capitale de l'Italie ?", "Was ist ein Vulkan?",
    "¿Cuál es la capital?",
    # math and code
    "∫ x² dx", "∑ i = n(n+1)/2", "x ≤ 3 and y ≥ 4", "a ≠ b", "√2 ≈ 1.414", "∀ε>0 ∃δ", "A ⊆ B ∪ C", "x³ - y³",
    r"\frac{a}{b} + \sqrt{x}", r"\int_0^1 x^2 \, dx", r"$\alpha + \beta = \gamma$", "x^2 + 3x - 4 = 0",
    "f(x) = 3x + 2", "dy/dx", "sin(x) cos(x)", "log2(n)", "2x + 3 = 7", "y = 2x", "4821 * 37", "12 + 7",
    "3.5 / 1.2", "2^10", "17 % 5", "100 - 37", "1,234,567 + 89", "7 × 8", "81 ÷ 9", "O(n log n)", "O(1)", "O(V + E)",
    "```python\ndef avg(xs):\n    return sum(xs) / len(xs)\nprint(avg([]))\n```",
    "```js\nfunction add(a, b) {\n  return a + b;\n}\nconsole.log(add(1, 2));\n```",
    "~~~\nSELECT name, age FROM users WHERE age > 30;\n~~~",
    "public static void main(String[] args) {\n    System.out.println(\"hi\");\n}",
    "#include <stdio.h>\nint main() { printf(\"%d\", 42); }",
    "Traceback (most recent call last):\n  File \"x.py\", line 3\nKeyError: 'bar'",
    "$ ls -la\n#!/bin/bash\necho $HOME", "const x = 5; let y = x => x * 2; if (a == b && c != d) { i++; }",
    "<div class=\"a\">hello</div>", "import numpy as np\nfrom os import path\nclass Foo(Base):\n    pass",
    "obj.method(arg1, arg2) and std::vector<int> v; a->b", "  }\n};\n", "var total = 0",
    # numbers, dates, lengths, lists
    "3", "42", "1,000", "3.14", "2024-05-17", "17/05/2024", "12.5.2023", "007", "12,5", "1.234.567", "in 3 paragraphs",
    "2 paragraphs", "1 page", "5 pages", "100 words", "in 2 sentences", "10 sentences", "20 words", "1,500 words",
    "7 paragraphs", "300 words", "0 words", "200-word", "en 400 palabras", "2 seiten", "1.000 palavras",
    "12345678 words", "step 2", "paso 3", "schritt 4", "(1) first (2) second", "1) a 2) b 3) c",
    "1. Read it.\n2. List risks.\n3. Fix them.", "- one\n- two\n- three\n- four", "a) apples\nb) pears",
    "i. one\nii. two", "What? Why? How?",
    # cues added with the routing evaluation set
    "Logic puzzle: who owns the fish?", "Find the fake coin in 3 weighings.", "shortest sequence of moves",
    "Solve this riddle for me", "brainteaser", "un acertijo", "une énigme", "ein Rätsel", "谜题", "パズル",
    "Reason it out.", "Show the deduction.", "show me how you got it", "check each case", "順を追って説明して",
    "一步步来", "Zeig, dass n gerade ist.", "Show that every integer n > 1 has a prime factorization.",
    "証明の中身", "请证明这个结论", "を証明してください", "。证明：", "サイコロの確率を導出して", "推导公式",
    "Implement insertion in C.", "Build a Lisp interpreter in Python", "Schreib einen Sudoku-Löser in Haskell.",
    "Make a song in C major", "用Python写一个爬虫", "Rustで書いてください", "a thread-safe red-black tree",
    "比较一下这两个方案", "天气比较热", "Break it down for me", "average annual growth rate", "compound interest",
    "Diséñame un plan semana a semana", "Hazme una rutina", "week-by-week schedule",
    "migrate the monolith to microservices", "計画を立ててください", "制定一个学习计划", "予算は800万円",
    "Compose a long narrative poem (at least 60 lines).", "a multi-section user manual", "Long story short, no.",
    "un long poème", "写一篇科幻小说", "短編小説を書いてください", "長編", "3 000 mots", "1万字", "500字", "100字以内",
    "about 20 lines", "错别字", "誤字脱字を直して", "Condense these notes", "boil it down", "key takeaways",
    "just the definition", "solo la definición", "in a couple of lines", "no need for examples", "要らないです",
    "into 3 bullet points", "c'est qui qui a démontré le théorème", "qui a démontré", "ポアンカレ予想は誰",
    "Hello! Could you please help me design a database schema for a veterinary clinic with appointments?",
    "Store A: 10, 20, 30. Which store is best?", "Is he right? It grew 20%, fell 20%, grew 10%.",
    "What is the net change after +20%, -20% and +10%?",
    "Summarize this:\n\n" + "The council met on Monday to discuss the budget and the new library. " * 4
    + "\n\nWhich items were approved?",
    'Fix the grammar only: "' + "We evaluates the algorithm on three benchmark and shows it analyze data. " * 5 + '"',
    "Roughly how many piano tuners work in Chicago?", "Estime en détaillant.", "In how many ways can 8 rooks sit?",
    "digits summing to 20", "expected number of rolls", "I'm 3x my son's age; in 12 years 2x.",
    "What weekday is 29 February 2052?", "How would you design a rate limiter?", "Como você estruturaria isso?",
    "Pratt parser in C, please.", "monthly payment on a $340k loan at 6.1% APR? Show the formula.",
    "Detailed grant proposal, full draft.", "Vergleich gründlich: A oder B?", "Svelte o React? Analisi seria.",
    "Turn these notes into a checklist", "Mach mir daraus eine Liste", "リストにして", "multi-tenant SaaS",
    # odd characters
    "ﬁnd the ﬁle", "Straße und Maß", "İstanbul", "\u212a kelvin", "がぎぐげご", "ｆｕｌｌｗｉｄｔｈ １２３",
    "e\u0301te\u0301", "naïve café résumé", "Ærø œuvre", "ŉ ǰ", "\u00a0nbsp\u00a0", "zero\u200bwidth", "line\u2028sep",
    "ideographic\u3000space", "\x1cfs\x1dgs", "emoji 😀🚀", "\ud800 lone surrogate", "Ελληνικά", "العربية",
    "עברית", "हिन्दी", "٣ + ٤ = ٧", "①②③", "H₂O", "½ + ¼", "’quoted’ “double” „low“", "ʼapostrophe", "\u0301x",
    "ﷺ", "Ⅻ chapter", "ℌ𝔢𝔩𝔩𝔬", "Й й ё", "«guillemets»", "「かぎ」",
]

NATURAL = [
    "What's the difference between a process and a thread?",
    "My sourdough starter smells like nail polish remover. Is it dead, or can I still save it?",
    "Write a short, friendly email to my landlord asking if the heating can be checked this week.",
    "A train leaves at 3 pm at 60 mph and a second train leaves at 4 pm at 80 mph. How many hours until it catches up?",
    "Tom has 3 apples, buys 15 more and gives 4 away. How many apples does he have now?",
    "Summarize the following article in three bullet points: remote work has changed how companies hire.",
    "I'm planning a week in Portugal in October. We land in Lisbon and fly out of Porto. What route would you suggest?",
    "Translate into German: 'The meeting has been moved to Thursday at 3 pm.'",
    "I need a SQL query that returns, for each customer, the date of their most recent order in 2023.",
    "Compare PostgreSQL and MySQL for a small SaaS app with about 10k users.",
    "Draft a two-week study plan for the AWS Solutions Architect exam. I can study 90 minutes on weekdays.",
    "Can you explain what a p-value actually means? My stats teacher said it's not a probability.",
    "Our Kubernetes pods keep getting OOMKilled during traffic spikes. We run a Java service with -Xmx set.",
    "Please proofread: Their going to announce the results tomorow, and everyone are excited.",
    "Classify these reviews as positive, negative or neutral: 1) 'Loved it' 2) 'Arrived broken' 3) 'It's fine'",
    "¿Me puedes recomendar una receta fácil de cena con pollo y verduras para cuatro personas?",
    "Kannst du mir erklären, wie eine Wärmepumpe funktioniert und ob sie sich für ein altes Haus lohnt?",
    "用简单的话解释一下什么是区块链。",
    "日本の桜の季節はいつですか？",
    "Write a 500-word short story about a lighthouse keeper who finds a message in a bottle.",
]

FILLERS = [
    "The town of Millbrook sits beside a slow river. Every spring the farmers plant corn and beans in the wide "
    "fields near the water. Children walk to the small school on the hill, and in the evening families gather in "
    "the square to talk about the weather. The bakery opens early. On weekends a market fills the square.",
    "El pueblo está junto a un río lento. Cada primavera los campesinos siembran maíz. Los niños caminan a la "
    "escuela pequeña en la colina.",
    "La ville se trouve près d'une rivière calme. Chaque printemps, les agriculteurs sèment du maïs. Les enfants "
    "marchent jusqu'à l'école.",
    "Die Stadt liegt an einem langsamen Fluss. Jeden Frühling pflanzen die Bauern Mais. Die Kinder gehen zur "
    "kleinen Schule auf dem Hügel.",
    "这个小镇坐落在一条缓慢的河流旁边。每年春天，农民们在田里种植玉米和豆子。孩子们走到山上的小学校。",
    "町はゆっくり流れる川のそばにあります。毎年春になると、農家はトウモロコシと豆を植えます。",
    "Город стоит у медленной реки. Каждую весну фермеры сажают кукурузу. Дети идут в маленькую школу на холме.",
]

SEPARATORS = [" ", ". ", "\n", ", ", "? ", "\n\n", "; ", " - ", ": ", "! ", "\t"]


def _decorate(rng: random.Random, phrase: str) -> str:
    r = rng.random()
    if r < 0.2:
        return phrase.capitalize()
    if r < 0.25:
        return phrase.upper()
    if r < 0.3:
        return phrase.title()
    if r < 0.36:
        return rng.choice(["'", '"', "`", "«", "「", "“"]) + phrase + rng.choice(["'", '"', "`", "»", "」", "”"])
    return phrase


def _filler(rng: random.Random, size: int) -> str:
    text = rng.choice(FILLERS)
    while len(text) < size:
        text += " " + rng.choice(FILLERS)
    return text[:size]


def _mix(rng: random.Random, k: int) -> str:
    parts = []
    for _ in range(k):
        r = rng.random()
        if r < 0.55:
            parts.append(_decorate(rng, rng.choice(PHRASES)))
        elif r < 0.8:
            parts.append(rng.choice(EXTRA))
        else:
            parts.append(_filler(rng, rng.randint(10, 160)))
    text = parts[0]
    for part in parts[1:]:
        text += rng.choice(SEPARATORS) + part
    return text


def _long(rng: random.Random, size: int) -> str:
    """An ask, a long body with cues sprinkled in, maybe a closing ask; cues also
    straddle the region and scan-window boundaries (400, 800, 4000 from either end)."""
    body = list(_filler(rng, size))
    for _ in range(rng.randint(0, 8)):
        at = rng.randrange(len(body) + 1)
        body[at:at] = " " + _decorate(rng, rng.choice(PHRASES + EXTRA)) + " "
    text = _mix(rng, rng.randint(1, 4)) + "\n\n" + "".join(body)
    if rng.random() < 0.6:
        text += "\n\n" + _mix(rng, rng.randint(1, 3))
    for _ in range(rng.randint(0, 3)):
        edge = rng.choice([400, 800, len(text) - 400, 4000, len(text) - 4000, 8000])
        phrase = rng.choice(PHRASES)
        at = max(0, min(len(text), edge + rng.randint(-len(phrase) - 2, 2)))
        text = text[:at] + phrase + text[at:]
    return text


def corpus() -> list[str]:
    """The fixed corpus: the same list on every run (seeded RNG)."""
    rng = random.Random(20240607)
    shuffled = rng.sample(PHRASES, len(PHRASES))  # every phrase once, four to a prompt
    prompts = [
        rng.choice(SEPARATORS).join(_decorate(rng, p) for p in shuffled[i : i + 4]) for i in range(0, len(shuffled), 4)
    ]
    prompts += NATURAL + [_decorate(rng, p) for p in rng.sample(PHRASES, 80)]
    prompts += [_mix(rng, rng.randint(2, 6)) for _ in range(100)]
    prompts += [
        rng.choice(["Please {}.", "Can you {}?", "{}: {}", "First, {}. Then {}.", "1. {}\n2. {}\n3. {}",
                    "- {}\n- {}\n- {}", "Hi! {}", "Give me a synonym for '{}'.", "{}, in one sentence.",
                    "What is {}?", "{} and also {}"]).format(*(_decorate(rng, rng.choice(PHRASES)) for _ in range(3)))
        for _ in range(40)
    ]
    prompts += [_mix(rng, 3) + " " + _filler(rng, rng.randint(100, 900)) + " " + _mix(rng, 2) for _ in range(50)]
    prompts += [_long(rng, rng.randint(900, 9000)) for _ in range(25)]
    prompts += [_long(rng, rng.randint(20_000, 32 * 1024 - 600)) for _ in range(4)]
    prompts += [
        "Summarize this in one sentence: " + _filler(rng, 32 * 1024),
        "Analyze the following log line by line. " + ("x" * 60 + "\n") * 530,
        "Résume ce texte : " + FILLERS[2] * 200,
        "请总结以下内容：" + FILLERS[4] * 150,
        ("e\u0301" * 3000) + " prove that " + ("ﬁ" * 3000) + " step by step " + "é" * 4000,
        "1. step\n" * 3000,
        ("'" + "analyze " * 30 + "' ") * 120,
        "Hello", "x", "?", "é", "a" * 50, " \n padded \t ", "\u3000全角\u3000",
    ]
    return prompts


def record(module, text: str) -> dict:
    """Everything public that classify and estimate_tokens return for ``text``."""
    out: dict = {"sha": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]}
    out["tokens"] = module.estimate_tokens(text)
    for t in THRESHOLDS:
        r = module.classify(text, threshold=t)
        out[str(t)] = [r.tier, r.is_complex, r.score, r.confidence, list(r.reasons)]
    return out


# --------------------------------------------------------------------------
# 1. Same outputs as the plain implementation
# --------------------------------------------------------------------------


@contextlib.contextmanager
def plain_mode() -> Iterator[None]:
    """Run harpoon.classifier without its shortcuts: every cue pattern is tried
    (no gates), with plain ``search`` / ``finditer`` / ``findall`` calls over
    the whole text (no word, digit or line anchoring)."""
    every_gated = {id(p) for p in clf._GATES}

    def search(self, pattern, pos=0, endpos=None):
        return pattern.search(self.prose, pos, len(self.prose) if endpos is None else endpos)

    def all_matches(self, pattern):
        return pattern.findall(self.prose)

    def near_digits(self, pattern, lead=(0,)):
        return pattern.finditer(self.text)

    def check_gates(self, prose):
        return set(every_gated)

    patches = {
        (clf._Scan, "search"): search,
        (clf._Scan, "all_matches"): all_matches,
        (clf._Scan, "near_digits"): near_digits,
        (clf._Scan, "_check_gates"): check_gates,
        (clf, "_code_check"): lambda scan, pattern, starts, needs: pattern.search(scan.text) is not None,
        (clf, "_search_folded"): lambda scan, pattern, folded: pattern.search(folded) is not None,
        (clf, "_count_at_line_starts"): lambda scan, pattern: len(pattern.findall(scan.text)),
    }
    saved = {key: getattr(*key) for key in patches}
    try:
        for (owner, name), value in patches.items():
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)


@functools.cache
def plain_records() -> tuple[dict, ...]:
    with plain_mode():
        return tuple(record(clf, prompt) for prompt in corpus())


def test_plain_mode_really_bypasses_the_shortcuts() -> None:
    with plain_mode():
        scan = clf._Scan("nothing to see here")
        assert scan.gated == {id(p) for p in clf._GATES}
        assert scan.search(clf._BREVITY) is None  # and the plain search still works
        assert clf._Scan("briefly").search(clf._BREVITY) is not None


def test_outputs_equal_the_plain_implementation() -> None:
    mismatches = []
    for i, (prompt, expected) in enumerate(zip(corpus(), plain_records(), strict=True)):
        got = record(clf, prompt)
        if got != expected:
            mismatches.append((i, prompt[:80], expected, got))
    assert not mismatches, f"{len(mismatches)} prompts differ from the plain implementation, first: {mismatches[0]}"


def test_every_cue_fires_somewhere_in_the_corpus() -> None:
    reasons = " | ".join(r for g in plain_records() for t in THRESHOLDS for r in g[str(t)][4])
    for _, label, _, _ in clf._KEYWORD_CUES:
        assert label in reasons, label
    for label, _ in clf._SIMPLE_TASK_CUES:
        assert label in reasons, label
    for phrase in clf._FEATURE_PHRASES.values():
        assert phrase in reasons, phrase
    for label in ("code block", "code syntax", "debugging", "math notation", "non-trivial arithmetic",
                  "calculation", "word problem", "numbered items", "bullet points", "questions", "sequenced steps",
                  "additional asks", "long prompt", "moderately long prompt", "ignored: the prompt carries",
                  "too weak to cross", "no complexity signals", "length limit", "short length limit"):
        assert label in reasons, label


def test_results_do_not_depend_on_history() -> None:
    prompts = corpus()[:60]
    first = [clf.classify(p) for p in prompts]
    assert [clf.classify(p) for p in reversed(prompts)] == first[::-1]


# --------------------------------------------------------------------------
# 2. Every gate is sound (proven from the regex syntax tree)
# --------------------------------------------------------------------------
# A gate group passes if the prompt has one of its words (a maximal run of
# ASCII letters, digits and "_", compared on the first 6 characters, or the
# first 4 for a 4-5 character stem) or one of its texts. The proof enumerates,
# for each alternative of a pattern, the words or literal texts every match
# must contain (starting where the match starts, for a first group) and checks
# that the gate tests one of them. Anything it cannot enumerate fails the test.

_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
_ASCII_WORD = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_CAP = 400


def _items(sub) -> list:
    return list(sub.data) if hasattr(sub, "data") else list(sub)


def _is_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _class_chars(av) -> list[str] | None:
    chars = []
    for op, arg in av:
        if op is sre.LITERAL:
            chars.append(chr(arg))
        elif op is sre.RANGE and arg[1] - arg[0] < 40:
            chars.extend(map(chr, range(arg[0], arg[1] + 1)))
        else:
            return None
    return chars


def _nonword_class(av) -> bool:
    """Every character of the class is outside [A-Za-z0-9_]."""
    for op, arg in av:
        if op is sre.LITERAL and not _is_word(chr(arg)):
            continue
        if op is sre.CATEGORY and arg in (sre.CATEGORY_SPACE, sre.CATEGORY_NOT_WORD):
            continue
        if op is sre.RANGE and not any(_is_word(chr(c)) for c in range(arg[0], min(arg[1], 0x7F) + 1)):
            continue
        return False
    return True


def _excludes_ascii_words(look) -> bool:
    """(?<!X) / (?!X) where X holds every ASCII word character of folded (lower-case) text."""
    if len(look) != 1 or look[0][0] is not sre.IN:
        return False
    chars = set()
    for op, arg in look[0][1]:
        if op is sre.LITERAL:
            chars.add(chr(arg))
        elif op is sre.RANGE:
            chars.update(map(chr, range(arg[0], arg[1] + 1)))
        elif op is sre.CATEGORY and arg is sre.CATEGORY_WORD:
            return True
        elif op is sre.NEGATE:
            return False
    return _ASCII_WORD <= chars


def _min_width(items) -> int:
    total = 0
    for op, av in items:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY):
            total += 1
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            total += av[0] * _min_width(_items(av[2]))
        elif op is sre.SUBPATTERN:
            total += _min_width(_items(av[3]))
        elif op is sre.BRANCH:
            total += min(_min_width(_items(a)) for a in av[1])
    return total


def _strings(items, prefix: str, word_mode: bool, out: set) -> None:
    """What a match can start with here: in word mode the ASCII word, else the
    literal text, as (string, kind); kind "exact" = the word surely ends there,
    "exact_b" = it ends there unless the search was cut right after it (endpos),
    "prefix" = it may go on."""
    if len(out) > _CAP:
        raise OverflowError
    if not items:
        out.add((prefix, "prefix"))
        return
    (op, av), rest = items[0], items[1:]
    if op is sre.LITERAL:
        ch = chr(av)
        if not word_mode or _is_word(ch):
            _strings(rest, prefix + ch, word_mode, out)
        else:
            out.add((prefix, "exact"))
    elif op is sre.IN:
        chars = _class_chars(av)
        if word_mode and _nonword_class(av):
            out.add((prefix, "exact"))
        elif chars is not None and len(chars) <= 8 and (not word_mode or all(map(_is_word, chars))):
            for ch in chars:
                _strings(rest, prefix + ch, word_mode, out)
        else:
            out.add((prefix, "prefix"))
    elif op is sre.AT and av is sre.AT_BOUNDARY:
        if not prefix:
            _strings(rest, prefix, word_mode, out)
        elif word_mode:
            out.add((prefix, "exact" if _min_width(rest) else "exact_b"))
        else:
            out.add((prefix, "prefix"))
    elif op is sre.SUBPATTERN:
        _strings(_items(av[3]) + rest, prefix, word_mode, out)
    elif op is sre.BRANCH:
        for alt in av[1]:
            _strings(_items(alt) + rest, prefix, word_mode, out)
    elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        lo, hi, sub = av
        body = _items(sub)
        if lo == 0:
            _strings(rest, prefix, word_mode, out)
        if hi == 0:
            return
        if hi <= 2 and len(body) == 1 and body[0][0] in (sre.LITERAL, sre.IN):
            more = [(op, (max(lo - 1, 0), hi - 1, sub))] if hi > 1 else []
            _strings(body + more + rest, prefix, word_mode, out)
        elif word_mode and len(body) == 1 and body[0][0] is sre.IN and _nonword_class(body[0][1]):
            out.add((prefix, "exact"))
        else:
            out.add((prefix, "prefix"))
    elif op is sre.ASSERT and av[0] == 1 and word_mode and prefix:  # (?=...)
        look = _items(av[1])
        if look and look[0][0] is sre.IN and _nonword_class(look[0][1]):
            out.add((prefix, "exact"))
        else:
            _strings(rest, prefix, word_mode, out)
    elif op is sre.ASSERT_NOT and av[0] == 1 and word_mode and prefix and _excludes_ascii_words(_items(av[1])):
        out.add((prefix, "exact" if _min_width(rest) else "exact_b"))
    elif op in _ZERO_WIDTH:
        _strings(rest, prefix, word_mode, out)
    else:
        out.add((prefix, "prefix"))


def _starts_word(op, av, before: bool) -> bool:
    """After this item, does a word character start an ASCII word?"""
    if op is sre.LITERAL:
        return not _is_word(chr(av))
    if op is sre.IN:
        return _nonword_class(av)
    if op is sre.AT:
        starts = (sre.AT_BOUNDARY, sre.AT_BEGINNING, sre.AT_BEGINNING_STRING, sre.AT_BEGINNING_LINE)
        return True if av in starts else before
    if op is sre.ASSERT_NOT and av[0] == -1 and _excludes_ascii_words(_items(av[1])):
        return True
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return before
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        body = _items(av[2])
        once = _ends_word(body, before)
        taken = once and _ends_word(body, once)
        return taken if av[0] >= 1 else (before and taken)
    if op is sre.BRANCH:
        return all(_ends_word(_items(alt), before) for alt in av[1])
    if op is sre.SUBPATTERN:
        return _ends_word(_items(av[3]), before)
    return False


def _ends_word(items, before: bool) -> bool:
    for op, av in items:
        before = _starts_word(op, av, before)
    return before


def _tests_of(keys: clf._Keys) -> set[tuple[str, str]]:
    return {("w6", k) for k in keys.words6} | {("w4", k) for k in keys.words4} | {("text", t) for t in keys.texts}


def _implied(mode: str, s: str, kind: str, test: tuple[str, str], truncated: bool, leading: bool) -> bool:
    what, key = test
    if what == "text":
        return s.startswith(key) if leading else key in s
    if mode != "word":
        return False
    n = 6 if what == "w6" else 4
    if len(s) >= n:
        return s[:n] == key
    return (kind == "exact" or (kind == "exact_b" and not truncated)) and s == key


def _covered(items, tests, truncated: bool, word_start: bool, leading: bool) -> bool:
    """Does every match of ``items`` pass one of ``tests``?"""
    for i, (op, av) in enumerate(items):
        if leading and any(o not in _ZERO_WIDTH for o, _ in items[:i]):
            return False
        for word_mode in (True, False):
            if word_mode and not word_start:
                continue
            out: set = set()
            try:
                _strings(items[i:], "", word_mode, out)
            except OverflowError:
                continue
            mode = "word" if word_mode else "text"
            if all(s for s, _ in out) and all(
                any(_implied(mode, s, kind, t, truncated, leading) for t in tests) for s, kind in out
            ):
                return True
        inner = _items(av[3]) if op is sre.SUBPATTERN else [(op, av)]
        if len(inner) == 1 and inner[0][0] is sre.BRANCH:
            rest = items[i + 1 :]
            if all(_covered(_items(alt) + rest, tests, truncated, word_start, leading) for alt in inner[0][1][1]):
                return True
        word_start = _starts_word(op, av, word_start)
    return False


def _alternatives(pattern: re.Pattern[str]) -> list[list]:
    data = _items(sre_parse.parse(pattern.pattern, pattern.flags))
    head = []
    while len(data) > 1 and data[0][0] is sre.AT:
        head.append(data.pop(0))
    if len(data) == 1 and data[0][0] is sre.BRANCH:
        return [head + _items(alt) for alt in data[0][1][1]]
    return [head + data]


def _unproven(pattern: re.Pattern[str], tests, *, truncated: bool, leading: bool) -> list:
    return [alt for alt in _alternatives(pattern) if not _covered(alt, tests, truncated, False, leading)]


def _cut_at_region_end() -> set[int]:
    """Patterns also searched with endpos (the instruction region)."""
    return {id(p) for _, p in clf._SIMPLE_TASK_CUES} | {id(clf._BREVITY), id(clf._CHIT_CHAT)}


_GATED = sorted(clf._GATES, key=lambda p: p.pattern)


@pytest.mark.parametrize("pattern", _GATED, ids=lambda p: p.pattern[:40])
def test_gate_is_sound(pattern: re.Pattern[str]) -> None:
    gate = clf._GATE_BY_ID[id(pattern)]
    truncated = id(pattern) in _cut_at_region_end()
    first = _unproven(pattern, _tests_of(gate.start), truncated=truncated, leading=not gate.anywhere)
    assert not first, f"matches can start without a word of the gate's first group: {first[:2]}"
    for keys in gate.more:
        missed = _unproven(pattern, _tests_of(keys), truncated=truncated, leading=False)
        assert not missed, f"matches can lack every word of a later group: {missed[:2]}"


def test_the_proof_rejects_unsound_gates() -> None:
    """The prover itself: dropping a needed word, or offering an inner word as a
    start, must fail; stems compare on 4 or 6 characters."""
    prove = re.compile(r"\bprove\b|\bshow that\b|step[- ]by[- ]step|证明")
    ok = clf._Keys("prove show *step 证明")
    assert not _unproven(prove, _tests_of(ok), truncated=False, leading=True)
    for bad in ("show *step 证明", "prove that *step 证明", "prove show step* 证明", "prove show *step"):
        assert _unproven(prove, _tests_of(clf._Keys(bad)), truncated=False, leading=True), bad
    cut = re.compile(r"\bbriefly\b|\bkurz\b")  # "kurz" could be the start of "kurzweil" cut at the region end
    assert not _unproven(cut, _tests_of(clf._Keys("briefly kurz")), truncated=False, leading=True)
    assert _unproven(cut, _tests_of(clf._Keys("briefly kurz")), truncated=True, leading=True)
    assert not _unproven(cut, _tests_of(clf._Keys("briefly kurz*")), truncated=True, leading=True)
    assert _unproven(re.compile(r"\bin a few\b"), _tests_of(clf._Keys("few")), truncated=False, leading=True)


def test_gate_syntax() -> None:
    gate = clf._Gate("~ word stem* *inside 文字 = | more")
    assert gate.anywhere and len(gate.more) == 1
    assert gate.start.words6 == {"word"} and gate.start.words4 == {"stem"}
    assert gate.start.texts == {"inside", "文字", "="}
    with pytest.raises(ValueError):
        clf._Gate("abc*")


@pytest.mark.parametrize("index", range(len(clf._CODE_SYNTAX)))
def test_code_syntax_checks_are_sound(index: int) -> None:
    for pattern, starts, needs in clf._CODE_SYNTAX[index]:
        if starts is None:
            first = _items(sre_parse.parse(pattern.pattern, pattern.flags))[0]
            assert first == (sre.AT, sre.AT_BEGINNING) and pattern.flags & re.MULTILINE, pattern.pattern
        else:
            tests = {("text", s) for s in starts}
            assert not _unproven(pattern, tests, truncated=False, leading=True), pattern.pattern
        for need in needs:
            assert not _unproven(pattern, {("text", need)}, truncated=False, leading=False), (pattern.pattern, need)


# --------------------------------------------------------------------------
# 3. The other shortcuts, against plain regex calls on random text
# --------------------------------------------------------------------------


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    noise = ["(", ")", "1", "22", "3.5", "1,000", "2024-01-02", "\n", "  ", "'", '"', "`", ";", "{", "}", "-", "=",
             ".", "?", "!", ":", "é", "й", "中", "x", "a", "I", "1)", "(2)", "step 3", "- ", "* ", "\n1. ", "$ ls",
             "#!/", "print(", "a.b(c)", "x->y", "a == b", "<b>", "»", "「", "」"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 40)):
            parts.append(rng.choice(PHRASES) if rng.random() < 0.5 else rng.choice(noise + EXTRA[:40]))
        text = "".join(p + rng.choice([" ", "", "\n", ". ", ", "]) for p in parts)
        if rng.random() < 0.3:
            text = _filler(rng, rng.randint(300, 1500)) + " " + text + " " + _filler(rng, rng.randint(0, 900))
        texts.append(clf._fold(text))
    return texts


_TEXTS = _random_texts(250, 7)


def test_gated_search_equals_plain_search() -> None:
    cut = _cut_at_region_end()
    for text in _TEXTS:
        scan = clf._Scan(text)
        prose = scan.prose
        bounds = [(0, None), (scan.tail_start, None), (len(prose) // 3, None)]
        for pattern in clf._GATES:
            for pos, endpos in bounds + [(0, scan.head_end), (0, len(prose) // 2)] * (id(pattern) in cut):
                plain = pattern.search(prose, pos, len(prose) if endpos is None else endpos)
                gated = scan.search(pattern, pos, endpos)
                assert (plain and (plain.span(), plain.group(0))) == (gated and (gated.span(), gated.group(0))), (
                    pattern.pattern[:50],
                    prose[:80],
                    pos,
                    endpos,
                )
        assert scan.all_matches(clf._SEQ_ALSO) == clf._SEQ_ALSO.findall(prose)


@pytest.mark.parametrize(
    ("pattern", "lead"),
    [
        (clf._DATE, (0,)),
        (clf._NUMBER, (0,)),
        (clf._ARITH, (0,)),
        (clf._LENGTH_ASK, (0,)),
        (clf._CJK_LENGTH_ASK, (0,)),
        (clf._NUMBERED_INLINE, (1, 2)),
        (clf._STEP_N, (5, 6, 8)),
    ],
    ids=["date", "number", "arith", "length", "cjk-length", "numbered", "step"],
)
def test_digit_anchored_search_equals_finditer(pattern: re.Pattern[str], lead: tuple[int, ...]) -> None:
    for text in _TEXTS:
        scan = clf._Scan(text)
        assert [m.span() for m in scan.near_digits(pattern, lead)] == [m.span() for m in pattern.finditer(scan.text)]


def test_line_anchored_counts_equal_findall() -> None:
    for text in _TEXTS:
        scan = clf._Scan(text)
        for pattern in (clf._NUMBERED_LINE, clf._BULLET):
            assert clf._count_at_line_starts(scan, pattern) == len(pattern.findall(scan.text))


# The code-syntax and quote patterns as they were before being rewritten for speed.
_PLAIN_CODE_SYNTAX = [
    r"\bdef \w+\s*\(", r"\bfunction[ \t]*\w*[ \t]*\([^)\n]{0,200}\)[ \t]*\{", r"\bclass \w+\s*[:({]", r"#include\s*<",
    r"^[ \t]*(?:import [\w.]+|from [\w.]+ import )", r"=>|->|::", r"\bconsole\.log\(|\bprintf?\(|\bsystem\.out\.",
    r"\bpublic (?:static )?(?:void|int|class|string)\b", r"\bselect\s+(?:\*|[\w.]+(?:\s*,\s*[\w.]+)*)\s+from\s+\w+",
    r"[;{][ \t]*$|^[ \t]*\}[ \t]*;?[ \t]*$", r"\b(?:var|let|const) \w+\s*=", r"\b\w+\.\w+\([^)\n]{0,200}\)",
    r"==|!=|&&|\|\||\+\+", r"</?[a-z][a-z0-9]{0,20}(?:\s[^>\n]{0,200})?>", r"`[^`\n]{1,200}`",
    r"^[ \t]*#!/|^[ \t]*\$ \w+",
]
_PLAIN_QUOTED = re.compile(
    r"(?<!\w)'[^'\n]{1,300}'(?!\w)|\"[^\"\n]{1,3000}\"|«[^»«\n]{1,3000}»|`[^`\n]{1,300}`|「[^」「\n]{1,3000}」"
)


def test_code_syntax_checks_equal_the_plain_patterns() -> None:
    assert len(clf._CODE_SYNTAX) == len(_PLAIN_CODE_SYNTAX)
    plain = [re.compile(p, re.MULTILINE) for p in _PLAIN_CODE_SYNTAX]
    for text in _TEXTS + [t.replace(" ", "") for t in _TEXTS[:50]]:
        scan = clf._Scan(text)
        for checks, original in zip(clf._CODE_SYNTAX, plain):
            fast = any(clf._code_check(scan, *check) for check in checks)
            assert fast == (original.search(scan.text) is not None), (original.pattern, text[:80])


def test_quoted_span_pattern_equals_the_plain_one() -> None:
    rng = random.Random(3)
    for text in _TEXTS + ["".join(rng.choice("ab 'x\"`«»「」\n.") for _ in range(60)) for _ in range(500)]:
        assert clf._QUOTED.sub("#", text) == _PLAIN_QUOTED.sub("#", text)


def test_factored_word_boundaries_keep_the_alternatives() -> None:
    for pattern in clf._GATES:
        source = pattern.pattern
        assert "|".join(clf._top_level_alternatives(source)) == source
    plain = r"\bab\b|\bcd|ef|\b(?:g|h)\b|[|(]\|"
    assert clf._factor_word_boundaries(plain) == r"\b(?:ab\b|cd)|ef|\b(?:(?:g|h)\b)|[|(]\|"


# --------------------------------------------------------------------------
# 4. Character tables
# --------------------------------------------------------------------------


def test_not_marks_holds_no_combining_character() -> None:
    everything = "".join(map(chr, range(0x30000)))
    kept = clf._not_marks().sub("", everything)
    assert len(kept) < len(everything)
    for ch in set(everything) - set(kept):
        assert unicodedata.combining(ch) == 0, hex(ord(ch))


def test_str_split_and_regex_agree_on_whitespace() -> None:
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    assert re.findall(r"\s", everything) == [ch for ch in everything if ch.isspace()]


def test_fold_and_token_estimate_fast_paths_equal_the_plain_ones() -> None:
    def plain_fold(text: str) -> str:
        quotes = str.maketrans(
            {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"'}
        )
        decomposed = unicodedata.normalize("NFKD", text.translate(quotes))
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()

    def plain_tokens(text: str) -> int:
        collapsed = re.sub(r"\s+", " ", text).strip()
        cjk = sum(1 for ch in collapsed if any(lo <= ord(ch) <= hi for lo, hi in clf._CJK_RANGES))
        latin = sum(1 for ch in collapsed if ord(ch) < 0x250)
        other = len(collapsed) - cjk - latin
        return cjk + -(-latin // 4) + -(-other // 2)

    rng = random.Random(11)
    pool = "".join(EXTRA) + "".join(FILLERS) + "Ǆǅǈ ĳ ŀ ſ ẞ ǰ ΐ ﬀ ﬃ İ ı Ω K Å ℃ ™ ① ⑴ ㈱ ㍿ ｶﾞ \u0345 \u0301\u0300"
    for _ in range(400):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 120)))
        assert clf._fold(text) == plain_fold(text), text
        assert clf.estimate_tokens(text) == plain_tokens(text), text
