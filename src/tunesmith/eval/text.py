"""Token ids -> text pieces, one step at a time, with stop strings cut off before they are ever sent."""

from __future__ import annotations


class Detokenizer:
    """Incremental decoding: decode a short window, not the whole answer, at every step.

    The window starts one piece back so that tokenizers which drop a word's leading space at the start of a
    decode, or emit half a UTF-8 character ("\\ufffd") until its next byte arrives, still give exact text.
    """

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # start of the window
        self.read = 0  # ids before this are already turned into text

    def push(self, token: int) -> str:
        self.ids.append(token)
        return self._piece(final=False)

    def flush(self) -> str:
        return self._piece(final=True) if self.read < len(self.ids) else ""

    def _piece(self, final: bool) -> str:
        before = self.tok.decode(self.ids[self.prefix : self.read], skip_special_tokens=True)
        now = self.tok.decode(self.ids[self.prefix :], skip_special_tokens=True)
        if len(now) > len(before) and (final or not now.endswith("\ufffd")):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before) :]
        return ""


class StopText:
    """The answer so far; `add` returns what may be sent now, holding back a tail that could begin a stop string."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.text = ""
        self.sent = 0
        self.stopped = False

    def add(self, piece: str) -> str:
        self.text += piece
        if self.stops:
            # A stop string cannot start before `sent`: text that might begin one is never sent.
            hits = [i for i in (self.text.find(s, self.sent) for s in self.stops) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return self._take(len(self.text))
            return self._take(len(self.text) - self._held())
        return self._take(len(self.text))

    def flush(self) -> str:
        return self._take(len(self.text))

    def _held(self) -> int:
        """Length of the longest tail of the text that is the start of some stop string."""
        tail = self.text[self.sent :]
        for k in range(min(len(tail), max(len(s) for s in self.stops) - 1), 0, -1):
            if any(s.startswith(tail[-k:]) for s in self.stops):
                return k
        return 0

    def _take(self, upto: int) -> str:
        out = self.text[self.sent : upto]
        self.sent = max(self.sent, upto)
        return out
