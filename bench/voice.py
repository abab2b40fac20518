"""Voice search at catalogue scale: the recogniser built, as the server builds it, from the
titles of `../shared/data/search/products.csv.gz`, then spoken product types (espeak-ng, 120
words a minute) recognised, against the same recogniser built from every phrase (the
baseline: no vocabulary limit).

    python -m bench.voice [--products 50000] [--products-csv PATH]

Summary: voice products=N phrases=P exact=E/T baseline_exact=B/T p95_ms=Z
"""

from __future__ import annotations

import argparse
import csv
import gzip
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, say
from mobimart.search import listening, voice

SPOKEN = [
    "copper pipe", "kitchen faucet", "shower head", "door knob", "ceiling fan",
    "garden hose", "led light bulb", "paint brush", "toilet seat", "wood screws",
    "storage cabinet", "patio chair",
]  # fmt: skip


def _clip(text: str, tmp: Path) -> bytes:
    raw, clip = tmp / "raw.wav", tmp / "clip.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(clip), "pad", "0.5", "0.5"],
        check=True,
    )
    return voice.decode_audio(clip.read_bytes())


def _run(recognizer: voice.Recognizer, clips: dict[str, bytes]) -> tuple[int, list[float]]:
    exact, times = 0, []
    for text, pcm in clips.items():
        started = time.perf_counter()
        heard = recognizer.recognize(pcm)
        times.append((time.perf_counter() - started) * 1000)
        exact += heard == text
        say(f"  {text!r} -> {heard!r} ({times[-1]:.0f} ms)")
    return exact, sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument(
        "--products-csv",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "search" / "products.csv.gz",
    )
    args = parser.parse_args()
    with gzip.open(args.products_csv, "rt", encoding="utf-8") as fh:
        titles = [row["product_title"] for row in csv.DictReader(fh)][: args.products]
    per_product = [listening.name_phrases(t) for t in titles]
    tmp = Path(tempfile.mkdtemp(prefix="mobimart-bench-voice-"))
    clips = {text: _clip(text, tmp) for text in SPOKEN}

    started = time.perf_counter()
    limited = voice.Recognizer.build(listening.most_shared(per_product))
    say(
        f"{len(titles):,} titles: {len(limited.phrases):,} phrases kept, "
        f"built in {time.perf_counter() - started:.2f} s"
    )
    exact, times = _run(limited, clips)
    everything = voice.Recognizer.build(listening.most_shared(per_product, limit=10**9))
    say(f"baseline: every phrase, {len(everything.phrases):,}")
    baseline, _ = _run(everything, clips)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    say(
        f"voice products={len(titles)} phrases={len(limited.phrases)} "
        f"exact={exact}/{len(SPOKEN)} baseline_exact={baseline}/{len(SPOKEN)} p95_ms={p95:.0f}"
    )


if __name__ == "__main__":
    main()
