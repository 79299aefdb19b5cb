"""CLI flags come from the config classes: names, types, choices, help and defaults said once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.cli.flags import add_flags, given
from streams.cli.main import build_parser
from streams.cli.worker import settings_given
from streams.worker.config import ENGINE_FLAGS, LANE_FLAGS, WorkerSettings


@dataclass
class Opts:
    steps: int = 1000  # optimiser steps
    # the tokens kept per session
    max_tokens: int | None = None
    mode: Literal["a", "b"] = "a"  # which mode
    out: Path = Path("x")
    live: bool = True
    table: dict | None = None  # not settable from a CLI


class Env(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLAGTEST_")
    rate: float = Field(2.5, gt=0)  # events per second


def _parser(cls) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_flags(p, cls)
    return p


def test_flags_follow_the_fields_and_their_comments():
    p = _parser(Opts)
    helps = {a.dest: a.help for a in p._actions}
    assert helps["steps"] == "optimiser steps (default: 1000)"
    assert helps["max_tokens"] == "the tokens kept per session"
    assert "table" not in helps
    args = p.parse_args(["--steps", "5", "--mode", "b", "--out", "y", "--no-live"])
    assert given(args, Opts) == {"steps": 5, "mode": "b", "out": Path("y"), "live": False}
    assert given(p.parse_args([]), Opts) == {}  # nothing given: the class decides


def test_a_bad_choice_or_type_is_refused():
    p = _parser(Opts)
    for bad in (["--mode", "c"], ["--steps", "many"]):
        try:
            p.parse_args(bad)
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError(bad)


def test_environment_applies_when_no_flag_is_given(monkeypatch):
    monkeypatch.setenv("FLAGTEST_RATE", "7")
    p = _parser(Env)
    assert Env(**given(p.parse_args([]), Env)).rate == 7
    assert Env(**given(p.parse_args(["--rate", "3"]), Env)).rate == 3


def test_every_worker_setting_has_a_flag():
    sub = build_parser()._subparsers._group_actions[0].choices["worker"]
    dests = {a.dest for a in sub._actions}
    assert set(WorkerSettings.model_fields) - {"kafka", "limits", "engine"} <= dests
    assert {*ENGINE_FLAGS, *LANE_FLAGS, "refresh"} <= dests  # the engine's, under their field names
    args = sub.parse_args(["--batch-size", "7", "--bootstrap", "h:1", "--data-dir", "d"])
    assert (args.batch_size, args.bootstrap, args.data_dir) == (7, "h:1", Path("d"))


def _sub(name: str) -> argparse.ArgumentParser:
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_train_flags_build_the_config_and_options_the_recipes_name():
    from model.config import EmbSumConfig
    from model.training.train import TrainOptions

    recipe = ["--data", "d", "--out", "o", "--sample-by", "user", "--batch-size", "16",
              "--lr", "1e-4", "--freeze-layers", "3", "--max-sessions", "4", "--lambda-sum=0",
              "--m=1", "--history-mode=one_chunk", "--precision", "bf16"]
    args = _sub("train").parse_args(recipe)
    cfg, opts = EmbSumConfig(**given(args, EmbSumConfig)), TrainOptions(**given(args, TrainOptions))
    assert (cfg.freeze_layers, cfg.max_sessions, cfg.lambda_sum, cfg.m, cfg.history_mode) == \
        (3, 4, 0.0, 1, "one_chunk")
    assert (opts.sample_by, opts.batch_size, opts.lr, opts.precision) == ("user", 16, 1e-4, "bf16")
    bare = _sub("train").parse_args(["--data", "d", "--out", "o"])
    assert EmbSumConfig(**given(bare, EmbSumConfig)) == EmbSumConfig()
    assert TrainOptions(**given(bare, TrainOptions)) == TrainOptions()
    assert "--llm-api-key" not in _sub("train").format_help()  # secrets come from the env only


def test_demo_flags_fill_the_demo_options():
    from streams.demo.run import DemoOptions

    args = _sub("demo").parse_args(["--events", "40", "--rate", "0", "--no-live"])
    opts = DemoOptions(**given(args, DemoOptions))
    assert (opts.events, opts.rate, opts.live, opts.refresh) == (40, 0.0, False, "session_close")


def test_lane_flags_bound_the_engines_summary_lane():
    from model.config import EmbSumConfig
    from streams.engine.config import LaneLimits

    sub = _sub("worker")
    args = sub.parse_args(["--lane-max-jobs", "8", "--lane-max-bytes", "4096", "--lane-batch", "2"])
    ws = WorkerSettings(**settings_given(args))
    assert ws.engine_config(EmbSumConfig(), "x").lane == LaneLimits(max_jobs=8, max_bytes=4096, batch=2)
    bare = WorkerSettings(**settings_given(sub.parse_args([])))
    assert bare.engine_config(EmbSumConfig(), "x").lane == LaneLimits()  # the defaults live once


def test_engine_flags_and_variables_keep_their_names(monkeypatch):
    from model.config import EmbSumConfig
    from streams.engine.config import EngineConfig, RefreshPolicy

    monkeypatch.setenv("THREADREC_TOP_K", "7")
    monkeypatch.setenv("THREADREC_REFRESH", "every_n:3")
    monkeypatch.setenv("THREADREC_LANE_BATCH", "4")
    args = _sub("worker").parse_args(["--top-k", "5", "--no-summary-lane", "--ttl-s", "60"])
    cfg = WorkerSettings(**settings_given(args)).engine_config(EmbSumConfig(max_sessions=3), "v")
    assert (cfg.top_k, cfg.summary_lane, cfg.ttl_s) == (5, False, 60.0)  # a flag over its variable
    assert (cfg.refresh, cfg.lane.batch) == (RefreshPolicy("every_n", every_n=3), 4)
    assert (cfg.max_sessions, cfg.model_version) == (3, "v")  # the checkpoint's session rules
    monkeypatch.delenv("THREADREC_TOP_K")
    bare = WorkerSettings().engine
    assert (bare.top_k, bare.candidates, bare.max_seen) == \
        (EngineConfig.top_k, EngineConfig.candidates, EngineConfig.max_seen)  # said once, there
    for bad in (dict(top_k=0), dict(lane_batch=0), dict(ttl_s=-1)):
        with pytest.raises(ValidationError):
            WorkerSettings(**bad)
