"""Small input files in the published formats, written by tests (no real data is committed)."""

from __future__ import annotations

import json
from pathlib import Path

ML_ITEMS = [  # item_id, title, year, genres
    ("1", "Toy Story", "1995", "Animation Children's Comedy"),
    ("2", "GoldenEye", "1995", "Action Adventure Thriller"),
    ("3", "Four Rooms", "1995", "Thriller"),
    ("4", "Get Shorty", "1995", "Action Comedy Drama"),
    ("5", "Copycat", "1995", "Crime Drama Thriller"),
    ("6", "Mystery Film", "unkonwn", "unknown"),
    ("7", "Twelve Monkeys", "1995", "Drama Sci-Fi"),
    ("8", "Babe", "1995", "Children's Comedy Drama"),
    ("9", "Dead Man Walking", "1995", "Drama"),
    ("10", "Richard III", "1995", "Drama War"),
]

# user, item, rating, ts in source row order; user 1's last two share ts 500 (tie).
ML_RATINGS = [
    ("1", "1", 5, 100), ("2", "2", 3, 100), ("1", "2", 4, 200), ("2", "3", 2, 150),
    ("1", "3", 1, 500), ("1", "4", 4, 500), ("2", "1", 5, 300), ("3", "5", 4, 50),
    ("3", "6", 3, 60), ("3", "7", 4, 60), ("2", "4", 4, 400), ("3", "8", 5, 70),
]


def write_ml(d: Path, items=ML_ITEMS, ratings=ML_RATINGS, extra_inter_lines: tuple = ()) -> Path:
    """ml-100k.item / ml-100k.inter in RecBole atomic format."""
    d.mkdir(parents=True, exist_ok=True)
    lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    lines += ["\t".join(row) for row in items]
    (d / "ml-100k.item").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in ratings] + list(extra_inter_lines)
    (d / "ml-100k.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


def write_jsonl(path: Path, rows: list) -> Path:
    """One JSON object (or raw string) per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def news_row(nid: str, cat: str = "news", title: str | None = None) -> str:
    return "\t".join([nid, cat, f"{cat}sub", title or f"Title {nid}", f"Abstract {nid}",
                      f"https://x/{nid}", "[]", "[]"])


def write_mind_set(d: Path, news: list[str], behaviors: list[tuple]) -> Path:
    """news.tsv (ids) and behaviors.tsv rows (imp_id, user, time, history, impressions)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "news.tsv").write_text("".join(news_row(n) + "\n" for n in news), encoding="utf-8")
    (d / "behaviors.tsv").write_text("".join("\t".join(b) + "\n" for b in behaviors),
                                     encoding="utf-8")
    return d


def gr_time(ts: float, hours: int = -7) -> str:
    """Epoch seconds in the Goodreads form 'Tue Oct 17 18:17:34 -0700 2017'."""
    from datetime import datetime, timedelta, timezone

    zone = timezone(timedelta(hours=hours))
    return datetime.fromtimestamp(ts, zone).strftime("%a %b %d %H:%M:%S %z %Y")


def write_gz_jsonl(path: Path, rows: list) -> Path:
    """Like write_jsonl, gzipped (the UCSD Goodreads files are .json.gz)."""
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path
