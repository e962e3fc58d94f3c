r"""Grammar-constrained beam search, with a free (unconstrained) greedy decode in the same batch.

Each decoder call runs the constrained beams and the free hypothesis together, so the free
decode (used to judge how much the grammar had to bend what the model heard) costs little
extra. Scores are sums of token log-probabilities; once the best finished sentence scores
above every live beam the search stops, since scores only fall as tokens are added.

A search is written as a generator of :class:`DecoderCall`\ s: it yields each decoder run it
needs and is sent back the log-probabilities and cache. :func:`run_alone` carries the calls
out one by one; :func:`run_together` drives the searches of several utterances side by side
and runs the calls that are alike (as many new tokens, as long a cache) as one decoder run
for all of them. The run's fixed cost (reading the weights, the vocabulary projection's
above all) is then paid once per step instead of once per utterance: about half the time
per utterance for four utterances on a 2-core CPU (docs/scaling.md), and what a GPU needs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from .constraint import State, TokenConstraint
from .errors import ConfigError
from .grammar.wordgraph import WordGraph
from .speech_model import CrossKeys, EncoderOutput, KVCache, SpeechModel

logger = logging.getLogger("assistant.decoding")

BLANK_TOKEN = 220  # " " in Whisper's vocabulary, suppressed as the first token like Whisper does


@dataclass(frozen=True)
class DecodingOptions:
    beam_size: int = 4
    free_decoding: bool = True
    tokens_per_second: float = 8.0  # cap on the length of a hypothesis ...
    min_max_tokens: int = 32  # ... but never below this
    max_tokens_limit: int = 200

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")

    def max_tokens(self, audio_s: float) -> int:
        cap = max(self.min_max_tokens, int(self.tokens_per_second * audio_s) + 8)
        return min(cap, self.max_tokens_limit)


@dataclass
class Hypothesis:
    tokens: list[int]
    logprob: float = 0.0
    regret: float = 0.0  # sum over steps of (best logprob in the vocabulary - chosen logprob)
    max_regret: float = 0.0
    state: State = field(default_factory=frozenset)
    log_branching: float = 0.0  # sum over steps of log(tokens the grammar allowed there)

    def extend(self, token: int, logprob: float, best: float, state: State,
               allowed: int = 1) -> Hypothesis:
        gap = best - logprob
        return Hypothesis(
            tokens=[*self.tokens, token],
            logprob=self.logprob + logprob,
            regret=self.regret + gap,
            max_regret=max(self.max_regret, gap),
            state=state,
            log_branching=self.log_branching + math.log(max(allowed, 1)),
        )


@dataclass(frozen=True)
class Decoded:
    """What one utterance's decoding produced."""

    hypotheses: list[Hypothesis]  # finished constrained hypotheses, best first (may be empty)
    free_tokens: list[int]
    free_logprob: float
    no_speech_prob: float
    steps: int


@dataclass(frozen=True)
class DecoderCall:
    """One decoder run a search asks for: ``tokens`` [rows, new] on the rows ``rows`` of
    ``cache`` (None: all of them, in order), attending to ``encoded``."""

    tokens: np.ndarray
    cache: KVCache
    rows: Sequence[int] | None
    encoded: EncoderOutput

    @property
    def new(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def selected(self) -> KVCache:
        return self.cache if self.rows is None else self.cache.select(list(self.rows))


T = TypeVar("T")
Steps = Generator[DecoderCall, tuple[np.ndarray, KVCache], T]


def run_alone(model: SpeechModel, steps: Steps[T]) -> T:
    """Carry out one search's decoder calls one by one; its result."""
    try:
        call = next(steps)
        while True:
            call = steps.send(model.decode(call.tokens, call.selected, call.encoded))
    except StopIteration as done:
        return done.value


@dataclass(frozen=True)
class Failed:
    """In :func:`run_together`'s results: the search raised ``error`` (the others went on)."""

    error: Exception


def run_together(model: SpeechModel, searches: Sequence[Steps[T]],
                 on_run: Callable[[int], None] | None = None) -> list[T | Failed]:
    """Drive several searches side by side: each round, the decoder calls alike (as many
    new tokens, as long a cache) run as one decoder run. Their results in order; a search
    that raised gets :class:`Failed` in its place. ``on_run(utterances)`` is told the size
    of every decoder run."""
    results: dict[int, T | Failed] = {}
    pending: dict[int, DecoderCall] = {}
    together = model.decodes_together

    def advance(i: int, value: tuple[np.ndarray, KVCache] | None,
                error: Exception | None = None) -> None:
        try:
            if error is not None:  # its decoder run failed: the search hears it
                pending[i] = searches[i].throw(error)
            else:
                pending[i] = next(searches[i]) if value is None else searches[i].send(value)
        except StopIteration as done:
            pending.pop(i, None)
            results[i] = done.value
        except Exception as e:  # one utterance's failure is its own
            pending.pop(i, None)
            results[i] = Failed(e)

    def alone(i: int) -> None:
        call = pending[i]
        if on_run is not None:
            on_run(1)
        try:
            out = model.decode(call.tokens, call.selected, call.encoded)
        except Exception as e:
            advance(i, None, e)
            return
        advance(i, out)

    for i in range(len(searches)):
        advance(i, None)
    keys_of: dict[tuple[int, ...], CrossKeys] = {}
    while pending:
        alike: dict[tuple[int, int], list[int]] = {}
        for i, call in pending.items():
            alike.setdefault((call.new, call.cache.length), []).append(i)
        for members in alike.values():
            if len(members) == 1 or not together:
                for i in members:
                    alone(i)
                continue
            calls = [pending[i] for i in members]
            # The ids stay valid: every search holds its encoder output until it ends.
            key = tuple(id(c.encoded) for c in calls)
            try:
                if key not in keys_of:  # the same utterances usually step together a while
                    if len(keys_of) >= 4:
                        keys_of.clear()
                    keys_of[key] = model.keys_together([c.encoded.keys for c in calls])
                outs = _decode_together(model, calls, keys_of[key])
            except Exception:  # find out whose it is: each alone
                logger.exception("a shared decoder run failed; running its %d utterances "
                                 "one by one", len(calls))
                for i in members:
                    alone(i)
                continue
            if on_run is not None:
                on_run(len(calls))
            for i, out in zip(members, outs, strict=True):
                advance(i, out)
    return [results[i] for i in range(len(searches))]


def _decode_together(model: SpeechModel, calls: Sequence[DecoderCall], keys: CrossKeys
                     ) -> list[tuple[np.ndarray, KVCache]]:
    """One decoder run for ``calls`` (alike; one utterance each). Each utterance gets as many
    rows as the call with the most; the others' rows are padded with copies of their last
    row, whose outputs are dropped."""
    width = max(c.tokens.shape[0] for c in calls)
    index = [np.minimum(np.arange(width), c.tokens.shape[0] - 1) for c in calls]
    tokens = np.concatenate([c.tokens[rows] for c, rows in zip(calls, index, strict=True)])
    # Each call's cache rows, padded: chosen once, taken from every cache array.
    chosen = [rows if c.rows is None else np.asarray(c.rows)[rows]
              for c, rows in zip(calls, index, strict=True)]
    cache = model.gather_cache([(c.cache, rows) for c, rows in zip(calls, chosen, strict=True)])
    logprobs, cache = model.decode(tokens, cache, keys)
    outs = []
    for g, c in enumerate(calls):
        span = slice(g * width, g * width + c.tokens.shape[0])
        outs.append((logprobs[span], KVCache({k: v[span] for k, v in cache.arrays.items()})))
    return outs


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    if values.size <= k:
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k)[:k]
    return part[np.argsort(-values[part], kind="stable")]


class BeamSearch:
    """Constrained beam search over one :class:`SpeechModel` and one :class:`TokenConstraint`."""

    def __init__(self, model: SpeechModel, constraint: TokenConstraint, options: DecodingOptions):
        self.model = model
        self.constraint = constraint
        self.options = options
        special = model.special
        vocab = model.dims.n_vocab
        # The free decode writes text only: no special or timestamp tokens but end-of-text.
        self._free_mask = np.zeros(vocab, dtype=bool)
        self._free_mask[special.eot + 1 :] = True
        self._eot = special.eot
        self._no_speech = special.no_speech

    def _free_pick(self, logprobs: np.ndarray, first: bool) -> int:
        masked = np.where(self._free_mask, -np.inf, logprobs)
        if first:
            masked[BLANK_TOKEN] = -np.inf
            masked[self._eot] = -np.inf
        return int(np.argmax(masked))

    def decode(self, encoded: EncoderOutput, audio_s: float) -> Decoded:
        """:meth:`steps`, its decoder calls run one by one."""
        return run_alone(self.model, self.steps(encoded, audio_s))

    def steps(self, encoded: EncoderOutput, audio_s: float) -> Steps[Decoded]:
        """The search as a generator of decoder calls (see module docs)."""
        prompt = np.array([self.model.prompt], dtype=np.int64)
        logprobs, cache = yield DecoderCall(prompt, KVCache.empty(self.model.dims, 1), None,
                                            encoded)
        no_speech = (
            float(np.exp(logprobs[0, 0, self._no_speech])) if self._no_speech is not None else 0.0
        )
        beams = [Hypothesis(tokens=[], state=self.constraint.start)]
        beam_logprobs = [logprobs[0, -1]]
        free = _FreeDecode(live=self.options.free_decoding, last=logprobs[0, -1])
        finished: list[Hypothesis] = []
        max_tokens = self.options.max_tokens(audio_s)
        steps = 0
        while (beams or free.live) and steps < max_tokens:
            steps += 1
            new_beams, parents = self._step(beams, beam_logprobs, finished)
            if free.live and not new_beams:
                free.live = False  # the free decode only informs the constrained search
            if free.live:
                self._free_step(free)
            if not new_beams and not free.live:
                break
            rows = list(parents)
            tokens = [h.tokens[-1] for h in new_beams]
            if free.live:
                rows.append(free.row)
                tokens.append(free.tokens[-1])
            logprobs, cache = yield DecoderCall(np.array(tokens, dtype=np.int64)[:, None],
                                                cache, rows, encoded)
            beams = new_beams
            beam_logprobs = [logprobs[i, -1] for i in range(len(beams))]
            free.row = len(beams)
            if free.live:
                free.last = logprobs[free.row, -1]
        finished.sort(key=lambda h: -h.logprob)
        return Decoded(
            hypotheses=finished,
            free_tokens=free.tokens,
            free_logprob=free.logprob,
            no_speech_prob=no_speech,
            steps=steps,
        )

    def rescore(self, encoded: EncoderOutput, audio_s: float,
                sentences: Sequence[Sequence[str]]) -> list[Hypothesis]:
        """:meth:`rescore_steps`, its decoder calls run one by one."""
        return run_alone(self.model, self.rescore_steps(encoded, audio_s, sentences))

    def rescore_steps(self, encoded: EncoderOutput, audio_s: float,
                      sentences: Sequence[Sequence[str]]) -> Steps[list[Hypothesis]]:
        """The finished hypotheses of a search constrained to ``sentences`` (word sequences of
        this search's grammar), best first, in whatever case, digits and punctuation the model
        writes them; their branching is counted in this search's grammar, as if this search
        had found them. The search is as wide and as pruned as this one, so it completes the
        best of the sentences (often one or two of them, in several writings), not each: a
        search that scored every sentence cost three times as much in a trial."""
        if not sentences:
            return []
        constraint = self.constraint.restricted(WordGraph.of_sentences(sentences))
        search = BeamSearch(self.model, constraint, replace(self.options, free_decoding=False))
        found = (yield from search.steps(encoded, audio_s)).hypotheses
        return [replace(h, log_branching=self._log_branching(h.tokens)) for h in found]

    def _log_branching(self, tokens: Sequence[int]) -> float:
        """Sum over ``tokens`` of log(tokens this search's grammar allowed there)."""
        state = self.constraint.start
        total = 0.0
        for i, token in enumerate(tokens):
            ids, _ = self.constraint.allowed(state)
            allowed = int(ids.size - (i == 0 and BLANK_TOKEN in ids))
            total += math.log(max(allowed, 1))
            following = self.constraint.next_state(state, token)
            if following is None:
                break  # cannot happen for words of this grammar
            state = following
        return total

    def _step(self, beams: list[Hypothesis], beam_logprobs: list[np.ndarray],
              finished: list[Hypothesis]) -> tuple[list[Hypothesis], list[int]]:
        """One token for every beam: the best ``beam_size`` extensions the grammar allows.

        Extensions that end a sentence go to ``finished``; the live ones come back with the
        beam each extends. Beams that can no longer beat the best finished one are dropped.
        """
        candidates = self._candidates(beams, beam_logprobs)
        candidates.sort(key=lambda c: -c[0])
        new_beams: list[Hypothesis] = []
        parents: list[int] = []
        for _total, b, token, state, score, best, allowed in candidates:
            if len(new_beams) >= self.options.beam_size:
                break
            hyp = beams[b].extend(token, score, best, state, allowed)
            if token == self._eot:
                finished.append(hyp)
            else:
                new_beams.append(hyp)
                parents.append(b)
        if finished:
            # Scores only fall from here: a beam below the best finished one cannot win.
            floor = max(h.logprob for h in finished)
            kept = [i for i, h in enumerate(new_beams) if h.logprob > floor]
            new_beams = [new_beams[i] for i in kept]
            parents = [parents[i] for i in kept]
        return new_beams, parents

    def _candidates(self, beams: list[Hypothesis], beam_logprobs: list[np.ndarray]
                    ) -> list[tuple[float, int, int, State, float, float, int]]:
        """(total score, beam, token, state, token log-prob, best log-prob, tokens allowed)
        per extension."""
        candidates: list[tuple[float, int, int, State, float, float, int]] = []
        for b, hyp in enumerate(beams):
            lp = beam_logprobs[b]
            ids, states = self.constraint.allowed(hyp.state)
            if not hyp.tokens:
                keep = ids != BLANK_TOKEN
                ids = ids[keep]
                states = [s for s, k in zip(states, keep, strict=True) if k]
            if ids.size == 0:
                continue
            scores = lp[ids]
            best = float(lp.max())
            for j in _top_k(scores, self.options.beam_size):
                score = float(scores[j])
                candidates.append((hyp.logprob + score, b, int(ids[j]), states[j], score, best,
                                   int(ids.size)))
        return candidates

    def _free_step(self, free: _FreeDecode) -> None:
        token = self._free_pick(free.last, first=not free.tokens)
        free.logprob += float(free.last[token])
        if token == self._eot:
            free.live = False
        else:
            free.tokens.append(token)


@dataclass
class _FreeDecode:
    """The unconstrained greedy hypothesis that runs in the same batch as the beams."""

    live: bool
    last: np.ndarray  # its log-probs for the next token
    row: int = 0  # its row in the decoder's key/value cache
    tokens: list[int] = field(default_factory=list)
    logprob: float = 0.0
