"""Voice search core: real synthesised speech through decoding and pocketsphinx."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from mobimart.errors import DomainError
from mobimart.search.voice import AUDIO_MAX_BYTES, Recognizer, decode_audio
from tests.conftest import absent

# A small shop: product names, brands and categories, as merchants write them.
CATALOGUE = [
    "Steel Kettle",
    "Ceramic Tea Mug",
    "Red Running Shoes",
    "Leather Wallet",
    "Wireless Headphones",
    "Bamboo Cutting Board",
    "Wool Scarf",
    "Glass Water Bottle",
    "Cotton Bath Towel",
    "Wooden Desk Lamp",
    "Blue Denim Jacket",
    "Yoga Mat",
    "Stainless Steel Frying Pan",
    "Silver Necklace",
    "Electric Toothbrush",
    "Portable Speaker",
    "Phone Charger",
    "Kids Rain Boots",
    "Acme",
    "Nike",
    "Philips",
    "Samsung",
    "Sony",
    "JBL",
    "Kitchen",
    "Footwear",
    "Electronics",
    "Home & Garden",
    "Beauty",
    "Toys",
]
SPOKEN = [
    "red running shoes",
    "steel kettle",
    "ceramic tea mug",
    "wireless headphones",
    "glass water bottle",
]


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.build(CATALOGUE)


@pytest.fixture(scope="module")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    """Text → WAV bytes (16 kHz mono s16), synthesised by espeak-ng and converted by sox."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        absent("espeak-ng and sox are needed to synthesise speech (apt-get install espeak-ng sox)")
    folder = tmp_path_factory.mktemp("speech")

    def say(text: str) -> bytes:
        raw, wav = folder / "raw.wav", folder / "q.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", raw, text], check=True)
        subprocess.run(
            ["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav, "pad", "0.5", "0.5"],
            check=True,
        )
        return Path(wav).read_bytes()

    return say


def _wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def _webm_opus(pcm: bytes) -> bytes:
    """What Chrome's MediaRecorder uploads: Opus at 48 kHz in a WebM container."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48_000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 16_000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def test_the_grammar_keeps_known_words_lower_cased_once() -> None:
    built = Recognizer.build(["Steel Kettle", "steel  KETTLE", "Lenovo Laptop", "Xiaomi", "", "LG"])
    # Lenovo and Xiaomi aren't in the pronunciation dictionary; LG is spelled letter by letter.
    assert built.phrases == ("steel kettle", "laptop", "lg")
    assert Recognizer.build(["Xiaomi"]).recognize(b"\0\0" * 16_000) == ""


def test_spoken_catalogue_phrases_are_recognised(
    recognizer: Recognizer, speak: Callable[[str], bytes]
) -> None:
    heard = {text: recognizer.recognize(decode_audio(speak(text))) for text in SPOKEN}
    missed = {text: got for text, got in heard.items() if got != text}
    print("missed (said → heard):", missed or "none")
    assert len(missed) <= 1, missed


def test_browser_webm_opus_is_decoded_and_recognised(
    recognizer: Recognizer, speak: Callable[[str], bytes]
) -> None:
    webm = _webm_opus(decode_audio(speak("steel kettle")))
    assert webm[:4] == b"\x1a\x45\xdf\xa3"  # EBML: really a WebM file
    pcm = decode_audio(webm)
    assert 1.5 < len(pcm) / 2 / 16_000 < 4
    assert recognizer.recognize(pcm) == "steel kettle"


def test_one_recognizer_serves_threads_alike(
    recognizer: Recognizer, speak: Callable[[str], bytes]
) -> None:
    clips = [decode_audio(speak(text)) for text in SPOKEN[:2]]
    alone = [recognizer.recognize(pcm) for pcm in clips]
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = recognizer.recognize(clips[i % 2])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(6)] == alone * 3


def test_random_bytes_are_unsupported_audio() -> None:
    with pytest.raises(DomainError) as caught:
        decode_audio(random.Random(0).randbytes(4096))
    assert (caught.value.code, caught.value.status) == ("unsupported_audio", 415)


@pytest.mark.parametrize(
    "samples",
    [np.zeros(16_000), 8_000 * np.sin(np.arange(3_200) * 2 * np.pi * 440 / 16_000)],
    ids=["a second of silence", "a fifth of a second"],
)
def test_silence_or_too_short_is_empty_audio(samples: np.ndarray) -> None:
    with pytest.raises(DomainError) as caught:
        decode_audio(_wav(samples))
    assert (caught.value.code, caught.value.status) == ("empty_audio", 422)


def test_too_long_or_too_large_is_refused() -> None:
    tone = 8_000 * np.sin(np.arange(16 * 16_000) * 2 * np.pi * 440 / 16_000)
    for data in (_wav(tone), b"RIFF" + bytes(AUDIO_MAX_BYTES)):
        with pytest.raises(DomainError) as caught:
            decode_audio(data)
        assert (caught.value.code, caught.value.status) == ("audio_too_long", 413)
