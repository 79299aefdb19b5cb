"""Goodreads loader: kinds, times, items (text, genre shelf), filters, sample, bad input."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from model.records import read_jsonl
from streams.cli import main
from streams.data.goodreads import GoodreadsOptions, parse_goodreads_time, prepare_goodreads
from streams.data.goodreads_books import genre_shelf, shorten
from streams.data.subset import k_core
from streams.errors import DataError
from tests.data.helpers import gr_time, write_gz_jsonl, write_jsonl

T0 = 1_500_000_000
RATINGS = {"u1": [5, 3, 4, 0], "u2": [2, 5, 5, 4], "u3": [4, 4, 1, 5], "u4": [3, 0, 5, 5]}


def row(user: str, book: str, t: int, rating: int = 5, is_read: bool = True, read_at: bool = True) -> dict:
    return {"user_id": user, "book_id": book, "review_id": f"r-{user}-{book}", "is_read": is_read,
            "rating": rating, "review_text_incomplete": "", "date_added": gr_time(T0 + t),
            "date_updated": gr_time(T0 + t + 9), "read_at": gr_time(T0 + t + 5) if read_at else "",
            "started_at": ""}


def interactions() -> list[dict]:
    """u1-u4 read b1-b4 (16 rows, one without read_at); b5 read once and u5 twice (both fall
    to the 3-core); one shelved-not-read row."""
    rows = [row(u, f"b{j + 1}", 100 * k + 10 * j, r, read_at=(u, j) != ("u2", 1))
            for k, (u, ratings) in enumerate(RATINGS.items(), 1) for j, r in enumerate(ratings)]
    return rows + [row("u1", "b5", 50), row("u5", "b1", 60), row("u5", "b2", 70),
                   row("u1", "b6", 80, rating=0, is_read=False, read_at=False)]


LONG = "First sentence of a long blurb. " + "word " * 200
BOOKS = [
    {"book_id": "b1", "title": "The Hobbit", "description": "A hobbit goes there and back.",
     "popular_shelves": [{"count": "100", "name": "to-read"}, {"count": "50", "name": "currently-reading"},
                         {"count": "30", "name": "fantasy"}, {"count": "20", "name": "favorites"}],
     "authors": [{"author_id": "656983", "role": ""}], "publication_year": "1937"},
    {"book_id": "b2", "title": "Divergent", "description": LONG,
     "popular_shelves": [{"count": "9", "name": "books-i-own"}, {"count": "8", "name": "2017-reads"},
                         {"count": "5", "name": "young-adult"}]},
    {"book_id": "b3", "title": "", "title_without_series": "Dune", "description": ""},
    {"book_id": "b4", "title": "Emma", "popular_shelves": [{"count": "3", "name": "classics"}]},
    {"book_id": "b5", "title": "Rare"}, {"book_id": "b6", "title": "Shelved"},
    {"book_id": "b7", "popular_shelves": "not checked: nobody read b7"},
]


@pytest.fixture
def files(tmp_path):
    return (write_gz_jsonl(tmp_path / "goodreads_interactions_x.json.gz", interactions()),
            write_gz_jsonl(tmp_path / "goodreads_books_x.json.gz", BOOKS))


def opts(inter, books, **kw) -> GoodreadsOptions:
    return GoodreadsOptions(inter, books, **{"min_user_engagements": 3, "min_item_engagements": 3, **kw})


def test_engagements_kinds_times_and_counts(files, tmp_path):
    meta = prepare_goodreads(opts(*files), tmp_path / "out")
    eng = read_jsonl(tmp_path / "out" / "engagements.jsonl")
    assert len(eng) == 16 and [e["ts"] for e in eng] == sorted(e["ts"] for e in eng)
    u2 = [(e["item_id"], e["kind"], e["rating"], e["ts"] - T0) for e in eng if e["user_id"] == "u2"]
    assert u2 == [("b1", "view", 2, 205), ("b2", "like", 5, 210), ("b3", "like", 5, 225), ("b4", "like", 4, 235)]
    assert {e["kind"] for e in eng if e["rating"] == 0} == {"view"}  # read, not rated
    g = meta["goodreads"]
    assert g["counts"] == {"rows": 20, "shelved_not_read_skipped": 1, "rows_dropped_by_k_core": 3}
    assert meta["counts"] == {"items": 4, "engagements": 16, "users": 4}
    assert meta["split_counts"] == {"train": 8, "valid": 4, "test": 4, "impressions_valid": 4,
                                    "impressions_test": 4}
    test = read_jsonl(tmp_path / "out" / "test.jsonl")
    assert {(e["user_id"], e["item_id"]) for e in test} == {(u, "b4") for u in RATINGS}
    assert "cold_items" not in meta


def test_items_text_category_and_time(files, tmp_path):
    prepare_goodreads(opts(*files, description_chars=100), tmp_path / "out")
    items = {i["item_id"]: i for i in read_jsonl(tmp_path / "out" / "items.jsonl")}
    assert set(items) == {"b1", "b2", "b3", "b4"}  # only engaged books
    assert (items["b1"]["title"], items["b1"]["category"]) == ("The Hobbit", "fantasy")
    assert items["b1"]["authors"] == ["656983"] and items["b1"]["publication_year"] == "1937"
    assert items["b2"]["category"] == "young-adult"  # owned/year shelves are not genres
    body = items["b2"]["body"]  # the only sentence end is early: cut at a word
    assert body.startswith("First sentence of a long blurb. word") and body.endswith("word…")
    assert len(body) <= 101
    assert (items["b3"]["title"], items["b3"]["category"]) == ("Dune", "")
    assert items["b1"]["ts"] == T0 + 105  # first engagement (u1 reads b1 first)


def test_plain_file_shelved_as_view_and_cli(files, tmp_path, capsys):
    plain = write_jsonl(tmp_path / "plain.json", interactions())
    meta = prepare_goodreads(opts(plain, files[1], shelved="view", min_item_engagements=1), tmp_path / "o")
    eng = read_jsonl(tmp_path / "o" / "engagements.jsonl")
    assert ("u1", "b6", "view") in {(e["user_id"], e["item_id"], e["kind"]) for e in eng}
    assert meta["goodreads"]["counts"]["rows"] == 20
    rc = main(["data", "prepare", "goodreads", "--interactions", str(files[0]), "--books", str(files[1]),
               "--out", str(tmp_path / "cli"), "--min-user-engagements", "3", "--min-item-engagements", "3"])
    assert rc == 0 and "users 4" in capsys.readouterr().out


def test_default_k_core_is_5_and_5_and_an_empty_result_is_an_error(files, tmp_path):
    with pytest.raises(DataError, match=r"no engagement left of 19 read rows .*users >= 5, books >= 5"):
        prepare_goodreads(GoodreadsOptions(*files), tmp_path / "out")
    assert not (tmp_path / "out" / "meta.json").exists()


@pytest.mark.parametrize("bad, reason", [
    ('{"user_id": "u1", "book_id": ', "malformed line: invalid JSON"),
    ({**row("u1", "b2", 1), "read_at": "", "date_added": ""}, "missing field: no read_at and no date_added"),
    ({**row("u1", "b2", 1), "read_at": "2017-10-17"}, "bad timestamp: read_at '2017-10-17' is not like"),
    ({**row("u1", "b2", 1), "rating": 7}, "bad value: rating 7"),
    ({**row("u1", "b2", 1), "is_read": "yes"}, "wrong type: is_read 'yes'"),
    (row("u1", "b404", 1), "unknown item: book 'b404'"),
    ({k: v for k, v in row("u1", "b2", 1).items() if k != "user_id"}, "missing field: missing field 'user_id'"),
])
def test_bad_interaction_line(tmp_path, files, bad, reason):
    rows = interactions()
    path = write_gz_jsonl(tmp_path / "bad.json.gz", [*rows[:2], bad, *rows[2:]])
    with pytest.raises(DataError) as err:
        prepare_goodreads(opts(path, files[1]), tmp_path / "out")
    assert str(err.value).startswith(f"{path}:3: {reason}")
    meta = prepare_goodreads(opts(path, files[1]), tmp_path / "out", skip_bad=True)
    assert meta["skipped_bad_input"] == {reason.split(":")[0]: 1}
    assert meta["counts"]["engagements"] == 16


def test_bad_book_line_only_when_the_book_is_needed(tmp_path, files):
    books = write_gz_jsonl(tmp_path / "books.json.gz", [*BOOKS[:3], {"book_id": "b4", "title": " "}, *BOOKS[4:]])
    with pytest.raises(DataError, match=rf"^{books}:4: missing field: missing field 'title'"):
        prepare_goodreads(opts(files[0], books), tmp_path / "out")  # b7 (line 7) is never checked
    meta = prepare_goodreads(opts(files[0], books), tmp_path / "out", skip_bad=True)
    # b4 gone: its rows are unknown items, and the 3-core then drops the rest
    assert meta["skipped_bad_input"] == {"missing field": 1, "unknown item": 4}


def test_corrupt_gzip_names_the_file(tmp_path, files):
    data = files[0].read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"^{cut}:\d+: cannot read"):
        prepare_goodreads(opts(cut, files[1]), tmp_path / "out")


def test_bad_settings_are_refused_before_reading(tmp_path):
    with pytest.raises(DataError, match="shelved 'maybe'.*like rating 9"):
        prepare_goodreads(GoodreadsOptions(tmp_path / "x", tmp_path / "y", shelved="maybe", like_rating=9),
                          tmp_path / "out")


def crowd(n_users: int = 30) -> list[dict]:
    return [row(f"u{u:02d}", f"b{j + 1}", 10 * u + j) for u in range(n_users) for j in range(3)]


def test_max_users_is_a_seeded_sample_of_exact_size(tmp_path, files):
    def users(rows, seed, name):
        path = write_jsonl(tmp_path / f"{name}.json", rows)
        prepare_goodreads(opts(path, files[1], max_users=10, seed=seed, min_user_engagements=1,
                               min_item_engagements=1), tmp_path / name)
        return {e["user_id"] for e in read_jsonl(tmp_path / name / "engagements.jsonl")}

    picked = users(crowd(), 0, "a")
    assert len(picked) == 10
    assert users(crowd()[::-1], 0, "b") == picked  # the same users whatever the row order
    assert users(crowd(), 1, "c") != picked


def test_k_core_repeats_until_stable():
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z")]
    # z has one row -> c drops to one row -> c goes too; x, y keep 2 each
    assert k_core(rows, lambda r: r[0], lambda r: r[1], 2, 2) == rows[:4]


def test_shelves_text_and_times():
    assert genre_shelf([{"count": "9", "name": "to-read"}, {"count": "5", "name": "read-in-2016"},
                        {"count": "4", "name": "my-kindle-books"}, {"count": "3", "name": "science-fiction"},
                        {"count": "3", "name": "classics"}]) == "science-fiction"
    assert genre_shelf([{"count": "1", "name": "favourites"}]) == "" and genre_shelf(None) == ""
    assert shorten("One.  Two   three. Four five six seven.", 25) == "One. Two three."
    assert shorten("short  text\n here", 100) == "short text here"
    text = "Tue Oct 17 18:17:34 -0700 2017"
    assert parse_goodreads_time(text, "read_at") == datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").timestamp()


def test_cold_split_on_goodreads_says_when_there_is_no_late_item(files, tmp_path):
    meta = prepare_goodreads(opts(*files), tmp_path / "out", cold_items=0.25, cold_seed=0)
    # u1 reads all four books first: none is first engaged in the last 30%
    assert meta["cold_split"]["wanted"] == 1 and meta["cold_items"] == []
    assert "only 0 candidates" in json.loads((tmp_path / "out" / "meta.json").read_text())["cold_split"]["note"]
