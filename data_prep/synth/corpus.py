"""Plan, generate (in parallel, resumable) and assemble the synthetic corpus.

Layout of ``OUT``::

    OUT/{train,dev,test}/   Kaldi data dirs (wav.scp text utt2spk spk2utt utt2dur)
                            + ref_word.ctm ref_phone.ctm + dropped (<utt> <reason>)
    OUT/wav/<split>/<utt>.wav   16 kHz mono 16-bit
    OUT/work/<split>/<utt>.json per-utterance record (written last; reused on resume)
    OUT/synth_config.json       the plan's parameters (a resume must match them)
    OUT/summary.json            counts, hours, voices, speed, drops; OUT/.done last
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asrkd.data.datadir import DataDir, write_data_dir, write_table
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, is_done, mark_done, read_json
from asrkd.logs import progress

from .reference import Timed, ctm_lines
from .text_source import Sentence, kjv_text, load_sentences, split_sentences
from .utterance import Augment, Job, make_utterance
from .voices import pick_configs, split_configs

log = logging.getLogger("asrkd.synth")

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Preset:
    utts: dict[str, int]  # utterances per split
    max_configs: dict[str, int]  # voice configurations per split (at most)
    min_words: int = 4
    max_words: int = 20
    prosody_per_voice: int = 1  # espeak rate/pitch settings per voice


PRESETS: dict[str, Preset] = {
    # ~1 minute of audio, for tests
    "tiny": Preset({"train": 10, "dev": 4, "test": 5}, {"train": 6, "dev": 3, "test": 3}, 4, 9),
    # ~1 hour; test >= 10 minutes
    "default": Preset({"train": 560, "dev": 110, "test": 170}, {"train": 999, "dev": 999, "test": 999}),
    # ~10 hours; 7000 train utterances so that the section-6 subset (3%) is still 210 of them
    "large": Preset(
        {"train": 7000, "dev": 400, "test": 600}, {"train": 999, "dev": 999, "test": 999}, 4, 25, 3
    ),
}


@dataclass(frozen=True)
class SynthOptions:
    preset: str = "default"
    seed: int = 1
    augment: bool = True  # gain + noise for train and dev
    augment_test: bool = False  # also for test (off by default: clean test split)
    text_file: str = ""  # a UTF-8 text instead of the KJV
    aug: Augment = field(default_factory=lambda: Augment(enabled=True))


def source_text(opts: SynthOptions) -> str:
    """The text the sentences are drawn from: ``opts.text_file`` or the KJV."""
    if opts.text_file:
        path = Path(opts.text_file)
        if not path.is_file():
            raise AsrkdError(f"text file not found: {path}")
        return path.read_text(encoding="utf-8")
    return kjv_text()


def sentence_pools(opts: SynthOptions, text: str) -> dict[str, list[Sentence]]:
    """The sentences of each split (a seeded choice from ``text``; see ``split_sentences``)."""
    if opts.preset not in PRESETS:
        raise AsrkdError(f"unknown preset {opts.preset!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[opts.preset]
    sentences = load_sentences(text, p.min_words, p.max_words)
    return split_sentences(sentences, dict(p.utts), opts.seed)


def plan(opts: SynthOptions, out_dir: Path) -> list[Job]:
    """Every utterance to make, in a fixed order (same for a seed, whatever ``nj``)."""
    pools = sentence_pools(opts, source_text(opts))
    p = PRESETS[opts.preset]
    jobs: list[Job] = []
    for split in SPLITS:
        configs = pick_configs(split_configs(split, opts.seed, p.prosody_per_voice), p.max_configs[split])
        on = opts.augment and (split != "test" or opts.augment_test)
        aug = Augment(**{**asdict(opts.aug), "enabled": on})
        for i, sent in enumerate(pools[split]):
            v = configs[i % len(configs)]
            utt = f"{v.speaker}-{split}{i:05d}"
            jobs.append(Job(utt, split, v.speaker, sent, v, aug, opts.seed, str(out_dir.resolve())))
    return jobs


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker; resampling is tiny


def generate(out_dir: Path, opts: SynthOptions, nj: int = 2, force: bool = False) -> dict[str, Any]:
    """Make the corpus in ``out_dir`` (resuming a killed run); returns the summary."""
    out_dir = Path(out_dir)
    cfg = {k: v for k, v in asdict(opts).items()}
    if is_done(out_dir) and not force:
        if (out_dir / "synth_config.json").is_file() and read_json(out_dir / "synth_config.json") == json.loads(json.dumps(cfg)):
            log.info("%s is complete (remove it or use --force to redo)", out_dir)
            return read_json(out_dir / "summary.json")
    cfg_path = out_dir / "synth_config.json"
    if cfg_path.is_file() and read_json(cfg_path) != json.loads(json.dumps(cfg)) and not force:
        raise AsrkdError(
            f"{out_dir} holds a corpus made with other options ({cfg_path}); "
            "use another directory or --force"
        )
    if force and (out_dir / "work").exists():
        import shutil

        shutil.rmtree(out_dir / "work")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg_path, cfg)
    jobs = plan(opts, out_dir)
    log.info("synth: %d utterances (%s preset, seed %d) with %d workers into %s",
             len(jobs), opts.preset, opts.seed, nj, out_dir)
    t0 = time.monotonic()
    records: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")  # workers fork synthesis children: start them clean
    if nj <= 1:
        _init_worker()
        it = map(make_utterance, jobs)
        records = list(progress(it, total=len(jobs), desc="synth", every_s=20))
    else:
        with ctx.Pool(nj, initializer=_init_worker) as pool:
            it = pool.imap_unordered(make_utterance, jobs, chunksize=2)
            records = list(progress(it, total=len(jobs), desc="synth", every_s=20))
    wall = time.monotonic() - t0
    summary = assemble(out_dir, records)
    made = [r for r in records if not r.get("reused") and not r["dropped"]]
    made_s = sum(r["duration"] for r in made)
    summary["this_run"] = {
        "wall_seconds": round(wall, 1), "made_utts": len(made), "made_audio_seconds": round(made_s, 1),
        "reused_utts": sum(1 for r in records if r.get("reused")), "workers": nj,
        "x_real_time": round(made_s / wall, 2) if wall > 0 else None,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    mark_done(out_dir, {"utts": summary["total"]["utts"]})
    log.info("synth: done: %s", json.dumps(summary["total"]))
    return summary


def assemble(out_dir: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the data dirs, CTMs and drop lists from the records; returns the summary."""
    summary: dict[str, Any] = {"splits": {}}
    for split in SPLITS:
        recs = sorted((r for r in records if r["split"] == split), key=lambda r: r["utt"])
        kept = [r for r in recs if not r["dropped"]]
        d = DataDir(
            wav={r["utt"]: r["wav"] for r in kept},
            text={r["utt"]: r["text"] for r in kept},
            utt2spk={r["utt"]: r["speaker"] for r in kept},
            extra={"utt2dur": {r["utt"]: f"{r['duration']:.4f}" for r in kept}},
        )
        sdir = out_dir / split
        write_data_dir(sdir, d)
        words, phones = [], []
        for r in kept:
            words += ctm_lines(r["utt"], [Timed(*w) for w in r["words"]])
            phones += ctm_lines(r["utt"], [Timed(*p) for p in r["phones"]])
        atomic_write_text(sdir / "ref_word.ctm", "".join(x + "\n" for x in words))
        atomic_write_text(sdir / "ref_phone.ctm", "".join(x + "\n" for x in phones))
        dropped = {r["utt"]: r["dropped"] for r in recs if r["dropped"]}
        write_table(sdir / "dropped", dropped) if dropped else atomic_write_text(sdir / "dropped", "")
        for r in dropped.items():
            log.warning("synth: dropped %s: %s", *r)
        voices = {(r["voice"]["engine"], r["voice"]["voice"]) for r in kept}
        summary["splits"][split] = {
            "utts": len(kept),
            "hours": round(sum(r["duration"] for r in kept) / 3600, 4),
            "minutes": round(sum(r["duration"] for r in kept) / 60, 2),
            "speakers": len({r["speaker"] for r in kept}),
            "voices": len(voices),
            "engines": dict(Counter(r["voice"]["engine"] for r in kept)),
            "dropped": len(dropped),
            "dropped_by_reason": dict(Counter(v.split(":")[0] if "timing" not in v else v for v in dropped.values())),
        }
    all_train = {(r["voice"]["engine"], r["voice"]["voice"]) for r in records if r["split"] == "train"}
    for split in ("dev", "test"):
        seen = {(r["voice"]["engine"], r["voice"]["voice"]) for r in records if r["split"] == split}
        if seen & all_train:
            raise AsrkdError(f"{split} voices also in train: {sorted(seen & all_train)}")
    s = summary["splits"]
    summary["total"] = {
        "utts": sum(v["utts"] for v in s.values()),
        "hours": round(sum(v["hours"] for v in s.values()), 4),
        "speakers": sum(v["speakers"] for v in s.values()),
        "dropped": sum(v["dropped"] for v in s.values()),
    }
    return summary
