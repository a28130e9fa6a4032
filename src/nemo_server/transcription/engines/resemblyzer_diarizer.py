"""Diarization with the bundled Resemblyzer (GE2E) voice encoder plus clustering.

Partial embeddings (1.6 s windows, one every 0.25 s) are clustered; each 10 ms speech frame
is then scored against every speaker centroid by the windows covering it. A frame whose
second-best speaker scores almost as well as the best is marked as overlapped speech and
given both speakers.
"""

from __future__ import annotations

import threading

import numpy as np

from nemo_server.transcription.engines.base import SpeakerBounds, Turn
from nemo_server.transcription.engines.vad import FRAME_S, SpeechDetector

_WINDOW_FRAMES = 160  # Resemblyzer's partial: 1.6 s of 10 ms frames
_RATE = 4.0  # partial embeddings per second
# Two clusters are one voice when their centroids are this close (cosine), or nearly as close
# with one cluster a sliver (a single voice split in two gives a lopsided split).
_SAME_SPEAKER = 0.88
_SAME_SPEAKER_LOPSIDED = 0.78
_SLIVER = 0.12
_ONE_VOICE_P5 = 0.59  # measured: one espeak voice >= 0.63, two voices <= 0.55
_MIN_TURN_S = 0.3
_MAX_GAP_FRAMES = 15  # pauses under 150 ms inside speech are part of the turn
_MIN_SHARE = 0.05  # smallest cluster, as a share of windows, an estimated speaker may have


class ResemblyzerDiarizer:
    """Voice-encoder embeddings + agglomerative clustering (given, bounded or estimated k)."""

    name = "resemblyzer"

    def __init__(self, device: str = "cpu", overlap_margin: float = 0.0) -> None:
        from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder(device, verbose=False)
        self._speech = SpeechDetector(aggressiveness=2)
        self.overlap_margin = overlap_margin
        self._lock = threading.Lock()
        # torch's first forward pass is several times slower than the next: pay it at load,
        # not in the first live utterance.
        noise = np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32)
        self._encoder.embed_utterance(noise)

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        """L2-normalised embedding of one utterance (None under 0.5 s)."""
        if len(audio) < 8000:
            return None
        with self._lock:
            vector = self._encoder.embed_utterance(_normalise(audio))
        return np.asarray(vector, dtype=np.float32)

    def diarize(self, audio: np.ndarray, bounds: SpeakerBounds) -> list[Turn]:
        speech = _close_gaps(self._speech.mask(audio), _MAX_GAP_FRAMES)
        if speech.sum() * FRAME_S < 0.5:
            return []
        with self._lock:
            _, partials, slices = self._encoder.embed_utterance(
                _normalise(audio), return_partials=True, rate=_RATE, min_coverage=0.5
            )
        starts = np.array([s.start // 160 for s in slices])
        keep = np.array(
            [
                speech[a : a + _WINDOW_FRAMES].mean() >= 0.4 if a < len(speech) else False
                for a in starts
            ]
        )
        if not keep.any():
            keep[:] = True
        vectors = _unit(np.asarray(partials)[keep])
        labels = cluster(vectors, bounds)
        centroids = _unit(
            np.stack([vectors[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
        )
        frame_speakers = self._frame_scores(vectors @ centroids.T, starts[keep], len(speech))
        return _turns(frame_speakers, speech, self.overlap_margin)

    @staticmethod
    def _frame_scores(sims: np.ndarray, starts: np.ndarray, n_frames: int) -> np.ndarray:
        """Mean similarity to each centroid of the windows covering each frame."""
        total = np.zeros((n_frames, sims.shape[1]), dtype=np.float32)
        count = np.zeros(n_frames, dtype=np.float32)
        for start, row in zip(starts, sims, strict=True):
            stop = min(n_frames, start + _WINDOW_FRAMES)
            total[start:stop] += row
            count[start:stop] += 1
        # Frames no window covers (the very end) borrow the nearest covered frame's scores.
        covered = np.flatnonzero(count)
        if len(covered) == 0:
            return total
        nearest = covered[
            np.clip(np.searchsorted(covered, np.arange(n_frames)), 0, len(covered) - 1)
        ]
        return total[nearest] / count[nearest][:, None]


def cluster(vectors: np.ndarray, bounds: SpeakerBounds) -> np.ndarray:
    """Cluster labels 0..k-1 for unit vectors; k given, or estimated within bounds."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=int)
    if bounds.num is not None:
        return _agglomerative(vectors, min(bounds.num, n))
    low, high = max(1, bounds.min), max(1, min(bounds.max, n - 1))
    if high < 2:
        return np.zeros(n, dtype=int)
    from sklearn.metrics import silhouette_score

    best_labels, best_score = np.zeros(n, dtype=int), -1.0
    for k in range(max(2, low), high + 1):
        labels = _agglomerative(vectors, k)
        # A "speaker" of a few windows is noise or overlapped speech, not a person: such a
        # clustering does not count (it would otherwise win on silhouette at large k).
        if np.bincount(labels).min() < max(2, _MIN_SHARE * n):
            continue
        score = float(silhouette_score(vectors, labels, metric="cosine"))
        if score > best_score:
            best_labels, best_score = labels, score
    if low <= 1 and _one_voice(vectors, best_labels):
        return np.zeros(n, dtype=int)
    return best_labels


def _one_voice(vectors: np.ndarray, labels: np.ndarray) -> bool:
    """True when the recording sounds like one person.

    Either nearly every pair of windows is similar (the 5th percentile of pairwise cosine
    similarity stays high: one voice; with two voices the cross pairs pull it down), or the
    two largest clusters are close.
    """
    pairs = (vectors @ vectors.T)[np.triu_indices(len(vectors), 1)]
    if len(pairs) and float(np.percentile(pairs, 5)) > _ONE_VOICE_P5:
        return True
    sizes = np.bincount(labels)
    if len(sizes) < 2:
        return True
    a, b = np.argsort(sizes)[::-1][:2]
    ca, cb = _unit(vectors[labels == a].mean(axis=0)), _unit(vectors[labels == b].mean(axis=0))
    similarity = float(ca @ cb)
    sliver = sizes[b] / (sizes[a] + sizes[b]) < _SLIVER
    return similarity > _SAME_SPEAKER or (sliver and similarity > _SAME_SPEAKER_LOPSIDED)


def _agglomerative(vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if k <= 1:
        return np.zeros(len(vectors), dtype=int)
    labels = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(
        vectors
    )
    # Relabel by first appearance so SPEAKER_00 is whoever speaks first.
    order = {old: new for new, old in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[x] for x in labels.tolist()], dtype=int)


def _turns(scores: np.ndarray, speech: np.ndarray, overlap_margin: float) -> list[Turn]:
    n_frames, n_speakers = scores.shape
    best = scores.argmax(axis=1)
    best = _smooth(best, int(_MIN_TURN_S / FRAME_S))
    active = np.zeros((n_frames, n_speakers), dtype=bool)
    active[np.arange(n_frames), best] = True
    if overlap_margin > 0 and n_speakers > 1:
        ranked = np.sort(scores, axis=1)
        active |= (scores >= (ranked[:, -1:] - overlap_margin)) & (ranked[:, -1:] > 0)
    active &= speech[:, None]
    turns: list[Turn] = []
    for k in range(n_speakers):
        for start, stop in _runs(active[:, k]):
            if (stop - start) * FRAME_S >= 0.1:
                turns.append(Turn(start * FRAME_S, stop * FRAME_S, speaker_label(k)))
    return sorted(turns, key=lambda t: (t.start, t.speaker))


def speaker_label(k: int) -> str:
    return f"SPEAKER_{k:02d}"


def _smooth(labels: np.ndarray, width: int) -> np.ndarray:
    """Remove label flickers shorter than `width` frames (they take the previous label)."""
    out = labels.copy()
    runs = _label_runs(out)
    for i, (start, stop, _) in enumerate(runs):
        if stop - start < width and i > 0:
            out[start:stop] = runs[i - 1][2]
    return out


def _label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i, int(labels[start])))
            start = i
    return runs


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _close_gaps(mask: np.ndarray, width: int) -> np.ndarray:
    """Fill silent runs of at most `width` frames between speech (stops between words)."""
    out = mask.copy()
    for start, stop in _runs(~mask):
        if start > 0 and stop < len(mask) and stop - start <= width:
            out[start:stop] = True
    return out


def _normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    return (audio / peak * 0.9).astype(np.float32) if peak > 0 else audio.astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-9)
