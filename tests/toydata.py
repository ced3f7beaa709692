"""Tiny corpora shared by the tests and the session's trained models (tests/conftest.py)."""
from __future__ import annotations

import json

WORDS = "der die das ein eine hund katze mann frau kind läuft sitzt spielt im park haus garten".split()
TEXT = "to be or not to be, that is the question.\n" * 20
TAGGED = [
    ("Angela Merkel visited Paris .".split(), ["B-PER", "I-PER", "O", "B-LOC", "O"]),
    ("The EU rejects German calls".split(), ["O", "B-ORG", "O", "B-MISC", "O"]),
    ("Peter Blackburn lives in New York".split(), ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]),
    ("Paris Saint-Germain beat Chelsea".split(), ["B-ORG", "I-ORG", "O", "B-ORG"]),
    ("Merkel met Chelsea fans in York .".split(), ["B-PER", "O", "B-ORG", "O", "O", "B-LOC", "O"]),
    ("German officials visited the EU".split(), ["B-MISC", "O", "O", "O", "B-ORG"]),
]
EMAILS = [
    ("Hi team, the quarterly budget meeting is moved to Friday afternoon. Please confirm.", "Budget meeting moved"),
    ("Attached is the draft contract for the Zanzibar project. Comments by Monday please.", "Zanzibar contract draft"),
    ("The server will be down for maintenance tonight from 10pm to midnight.", "Server maintenance tonight"),
    ("Please review the attached report on gas trading volumes for last week.", "Gas trading report"),
    ("Lunch with the new analysts is scheduled for Thursday at noon in the main room.", "Lunch Thursday"),
    ("Can you send me the latest version of the pipeline capacity spreadsheet?", "Pipeline capacity spreadsheet"),
]


def conll_text(sentences) -> str:
    """CoNLL-2003 layout: word, POS, chunk, NER; documents start with -DOCSTART-."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, tags in sentences:
        lines += [f"{w} NNP I-NP {t}" for w, t in zip(words, tags)] + [""]
    return "\n".join(lines) + "\n"


def jsonl_records(pairs) -> str:
    """AESLC layout: email_body, subject_line and three annotations."""
    rows = [{"email_body": d, "subject_line": s, "ann0": s.lower(), "ann1": s + " update", "ann2": "re " + s}
            for d, s in pairs]
    return "".join(json.dumps(r) + "\n" for r in rows)
