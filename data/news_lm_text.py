"""Unlabelled news text for the tagger's contextual character LMs (`nmt/models/context.py`), forward and reversed.

The CoNLL-2003 training sentences (their words only, no tags) and the Gigaword article and headline samples, in
the LMs' normalised form (lowercased, digits as '#'), one sentence a line. CoNLL-2003 dev and test text is not used.
The forward file ends with Gigaword, whose last 10% validates; the backward file is each part reversed.

    python data/news_lm_text.py --out runs/newslm      # writes forward.txt and backward.txt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt import corpora                                   # noqa: E402
from nmt.data import read_conll                           # noqa: E402
from nmt.models.context import normalise                  # noqa: E402

GIGAWORD = ["train_sample_10k/train.article.txt", "train_sample_10k/train.title.txt",
            "dev_4k/valid.article.filter.4K.txt", "dev_4k/valid.title.filter.4K.txt"]
BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "<unk>": "unk", "``": '"', "''": '"'}


def conll_text(path: Path) -> str:
    return "".join(normalise(" ".join(words)) + "\n" for words, _ in read_conll(path) if words)


def gigaword_text(folder: Path) -> str:
    lines = []
    for name in GIGAWORD:
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            lines.append(" ".join(BRACKETS.get(w, w) for w in line.split()))
    return normalise("\n".join(lines)) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/newslm")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    conll = conll_text(corpora.data_root("conll2003", args.data_dir) / "conll2003" / "train.txt")
    news = gigaword_text(corpora.data_root("gigaword", args.data_dir) / "gigaword")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "forward.txt").write_text(conll + news, encoding="utf-8")
    (out / "backward.txt").write_text(conll[::-1] + news[::-1], encoding="utf-8")
    print(f"{out}: CoNLL-2003 train {len(conll):,} + Gigaword {len(news):,} characters")


if __name__ == "__main__":
    main()
