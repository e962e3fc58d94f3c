"""What the assistant must *not* accept: speech outside the grammar and non-speech.

* :data:`OUT_OF_DOMAIN`: everyday sentences from other domains (questions, chat, other apps).
* :data:`SHORT_UTTERANCES`: single words and fragments people say to assistants.
* :func:`near_misses`: grammar sentences with one word swapped for a word the grammar does not
  allow there ("can I get a large pizza"), checked not to parse.
* :func:`non_speech`: coloured noise, hum and near-silence, seeded.
* :func:`templated_out_of_domain`: more everyday sentences, generated from templates.
* :func:`out_of_domain_for`: a seeded mix of all of the above speech negatives that the given
  grammar does not accept (an out-of-domain list can hit another grammar's command).

Sentences here are never the evaluation sets' (see ``benchmarks/``), which keep their own.
"""

from __future__ import annotations

import random

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.grammar import (
    Context,
    compile_word_graph,
    normalize_text,
    parse,
    sample_sentences,
)

OUT_OF_DOMAIN = (
    "what's the capital of australia",
    "how many calories are in a banana",
    "tell me a joke",
    "remind me to call the dentist on monday",
    "who won the game last night",
    "how do you spell necessary",
    "open the garage door",
    "what's on my calendar today",
    "read me the news",
    "translate good morning into spanish",
    "how far is the moon from the earth",
    "lock the front door",
    "what's the score of the basketball game",
    "send an email to my boss",
    "find me a good italian restaurant",
    "what does the fox say",
    "i think i left the stove on",
    "did you feed the cat this morning",
    "the meeting has been moved to three o'clock",
    "my flight was delayed by two hours",
    "can you hear me now",
    "i'm not sure what i want yet",
    "let me think about it for a second",
    "could you repeat that please",
    "that's not what i asked for",
    "we need more paper towels",
    "is it going to snow this weekend",
    "how old is the universe",
    "what's twelve times fifteen",
    "start a workout",
    "record a voice memo",
    "show me pictures from last summer",
    "where did i park my car",
    "what's the exchange rate for euros",
    "buy tickets for the concert",
    "how do i get to the airport",
    "add milk to the grocery list",
    "water the plants at six",
    "the kids are asleep upstairs",
    "happy birthday to you",
    "i'll have the chicken salad and a glass of water",
    "can i get a cheeseburger with fries",
    "a hot chocolate with whipped cream please",
    "one green tea to go",
    "i'd like a blueberry muffin",
    "do you have any gluten free options",
    "how much does a sandwich cost",
    "could i get the bill please",
    "two orange juices and a croissant",
    "a glass of red wine please",
    "where is the bathroom",
    "sorry wrong number",
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "peter piper picked a peck of pickled peppers",
    "it was the best of times it was the worst of times",
)

SHORT_UTTERANCES = (
    "yes", "no", "okay", "hello", "hi there", "thanks", "what", "hmm", "wait", "sorry",
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero", "ten",
    "hey", "good morning", "goodbye", "maybe", "sure", "really", "excuse me", "uh huh",
)

# Words to swap in: common, concrete, and unlikely to be in a command grammar.
DISTRACTORS = (
    "pizza", "tea", "purple", "yesterday", "elephant", "window", "bicycle", "sandwich",
    "orange", "juice", "blanket", "garden", "lemon", "chocolate", "candle", "mountain",
    "guitar", "pencil", "tomato", "river", "jacket", "castle", "rabbit", "violin", "carpet",
    "seven", "slowly", "bright", "frozen", "twenty", "monday", "vanilla", "honey", "oat",
    "caramel", "cinnamon", "hot", "cold", "chai", "matcha", "smoothie", "bagel", "cookie",
)


def near_misses(context: Context, n: int, seed: int) -> list[str]:
    """``n`` sentences one edit away from the grammar that the grammar does not accept.

    A word is swapped for a distractor, a distractor inserted, or a word deleted. A one-word
    sentence ("computer", "seven") cannot lose its word: it is swapped (the distractor said
    alone) or gets a distractor before or after it, so one-word grammars (keywords, digits)
    get near misses too; they had none."""
    rng = random.Random(seed)
    vocabulary = set(compile_word_graph(context).vocabulary)
    distractors = [d for d in DISTRACTORS if d not in vocabulary]
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    pool = sample_sentences(context, max(4 * n, 20), seed=seed)
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        words = normalize_text(rng.choice(pool).text)
        if not words:
            continue
        i = rng.randrange(len(words))
        edit = rng.random()
        if len(words) == 1:
            if edit < 0.5:
                words[0] = rng.choice(distractors)
            else:
                words.insert(rng.randrange(2), rng.choice(distractors))
        elif edit < 0.7:
            words[i] = rng.choice(distractors)
        elif edit < 0.85:
            words.insert(i, rng.choice(distractors))
        else:
            del words[i]
        text = " ".join(words)
        if text in seen or parse(context, text) is not None:
            continue
        seen.add(text)
        out.append(text)
    return out


def non_speech(n: int, seed: int, duration_s: float = 2.0) -> list[tuple[str, np.ndarray]]:
    """``n`` clips of noise or hum, ``(kind, audio)``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    kinds = ("white", "pink", "brown", "hum", "quiet")
    clips = []
    size = int(duration_s * SAMPLE_RATE_HZ)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        white = rng.standard_normal(size).astype(np.float32)
        if kind == "white":
            audio = white
        elif kind in ("pink", "brown"):
            spectrum = np.fft.rfft(white)
            freqs = np.maximum(np.fft.rfftfreq(size, 1 / SAMPLE_RATE_HZ), 20.0)
            spectrum /= np.sqrt(freqs) if kind == "pink" else freqs
            audio = np.fft.irfft(spectrum, n=size).astype(np.float32)
        elif kind == "hum":
            t = np.arange(size) / SAMPLE_RATE_HZ
            base = rng.choice([50.0, 60.0])
            audio = sum(np.sin(2 * np.pi * base * k * t) / k for k in range(1, 6))
            audio = (audio + 0.05 * white).astype(np.float32)
        else:
            audio = white * 0.01
        peak = float(np.abs(audio).max()) or 1.0
        level = 10 ** rng.uniform(-2.5, -0.5)
        clips.append((kind, (audio / peak * level).astype(np.float32)))
    return clips


# Templates for more out-of-domain sentences: {slot} names a word list below.
TEMPLATES = (
    "remind me to {chore} {when}",
    "how do i {chore}",
    "i need to {chore} {when}",
    "did you remember to {chore}",
    "call {person} {when}",
    "send a message to {person}",
    "tell {person} i'll be late",
    "add {item} to the shopping list",
    "do we have any {item} left",
    "where can i buy {item}",
    "how much is {item} at the store",
    "what's a good recipe with {item}",
    "search the web for {topic}",
    "tell me something about {topic}",
    "how does {topic} work",
    "book a table for {count} {when}",
    "is the {place} open {when}",
    "how long does it take to get to the {place}",
    "{person} is coming over {when}",
    "let's go to the {place} {when}",
)
FILLERS = {
    "chore": ("take out the trash", "walk the dog", "pay the rent", "fix the sink",
              "wash the car", "buy a present", "clean the windows", "pack my bag",
              "renew my passport", "mow the lawn"),
    "when": ("tomorrow", "tonight", "on friday", "next week", "after lunch", "later",
             "this weekend", "in the morning", "right now", "before dinner"),
    "person": ("mom", "dad", "my sister", "grandma", "the doctor", "my boss", "alex",
               "the plumber", "our neighbor", "my friend sam"),
    "item": ("eggs", "bread", "rice", "apples", "toothpaste", "batteries", "butter",
             "dog food", "olive oil", "tomatoes"),
    "topic": ("black holes", "the roman empire", "photosynthesis", "electric cars",
              "the stock market", "volcanoes", "jazz music", "the olympics", "dinosaurs",
              "solar panels"),
    "count": ("two", "four", "six", "three people", "a big group"),
    "place": ("library", "pharmacy", "post office", "gym", "bank", "museum", "airport",
              "train station", "supermarket", "park"),
}


def templated_out_of_domain(n: int, seed: int) -> list[str]:
    """``n`` distinct everyday sentences from :data:`TEMPLATES` (fewer if they run out)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(20 * n):
        if len(out) >= n:
            break
        template = rng.choice(TEMPLATES)
        text = template.format(**{k: rng.choice(v) for k, v in FILLERS.items()
                                  if "{" + k + "}" in template})
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def out_of_domain_for(context: Context, n: int, seed: int) -> list[str]:
    """``n`` out-of-domain sentences (listed, short and templated) that ``context`` rejects.

    The fixed lists come first in a seeded order, then templated sentences fill up to ``n``.
    """
    rng = random.Random(seed)
    fixed = list(OUT_OF_DOMAIN) + list(SHORT_UTTERANCES)
    rng.shuffle(fixed)
    pool = fixed + templated_out_of_domain(max(n, 1), seed)
    return [text for text in pool if parse(context, text) is None][:n]
