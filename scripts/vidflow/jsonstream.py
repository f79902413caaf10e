"""Read and write big per-frame JSON documents a piece at a time (standard library only).

Our per-frame outputs (``tracking.json``, ``faces.json``, the reduced files) are one JSON object whose members are
small except one long array (``frames``, ``frames_analysis``). :func:`read_members` yields the object's members in
file order and a streamed array's items one at a time, so memory holds one item and one read block, never the whole
document; values are decoded by the same decoder as :func:`json.load`, so they are equal to a full load.
:func:`write_object` writes the bytes of :func:`vidflow.io.dumps_json` (compact) with the array streamed in.
Keys are sorted in our files, so members after the array (``height``, ``width``, ...) are known only at its end.
"""

import json
import re

from .io import atomic_path, dumps_json

CHUNK = 1 << 20  # characters read at a time
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_CUT_MARGIN = 64  # a decode error this close to the end of the read block may be the block's cut, not the file's


class NotAnObject(ValueError):
    """The document is valid JSON but not an object (callers fall back to a full load)."""


def compact(value):
    """One value as :func:`vidflow.io.dumps_json` writes it inside a compact document (sorted keys, no newline)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Without:
    """A text file whose reads leave out the members ``names`` whose value is an array of arrays of numbers followed
    by another member (``"landmarks":[[x,y,z],...],``, as the compact per-frame files write landmarks: most of a
    tracking.json's size and decoding time, for readers that do not use them). A member cut by the end of a read
    block is kept for the next read, so every block boundary gives the same text.

    Found with ``str.find`` (C speed), not a regular expression: a member is its ``"name":[[`` and the text up to the
    first ``]],`` after it, left out when that text holds no ``"``, ``{`` or ``}`` (then it is not an array of arrays
    of numbers: the text stays). 194 MB of a 10-minute faces.json: 1.7 s with the expression."""

    _PARTIAL = re.compile(r'"[a-z_]*(?:"(?::(?:\[(?:\[[^"{}]*)?)?)?)?$')  # a member's start, cut by the block's end

    def __init__(self, handle, names):
        self.handle, self.carry = handle, ""
        self.starts = ['"' + name + '":[[' for name in names]

    def read(self, size):
        while True:
            block = self.handle.read(size)
            text = self._drop(self.carry + block)
            self.carry = ""
            if block:
                cut = self._partial(text)
                if cut is not None:
                    text, self.carry = text[:cut], text[cut:]
            if text or not block:
                return text

    def _drop(self, text):
        kept, copied, search = [], 0, 0
        while True:
            found = [(at, len(start)) for start in self.starts if (at := text.find(start, search)) >= 0]
            if not found:
                break
            at, length = min(found)
            end = text.find("]],", at + length)
            if end < 0:  # no member here can end in this text
                break
            value = text[at + length:end]
            if '"' in value or "{" in value or "}" in value:
                search = at + 1
                continue
            kept.append(text[copied:at])
            copied = search = end + 3
        kept.append(text[copied:])
        return "".join(kept)

    def _partial(self, text):
        """Where a member cut by the end of ``text`` starts (None: none is). It starts at one of the last two ``"``
        (the name's opening one, or with the name whole its opening one before the closing one)."""
        last = text.rfind('"')
        before = text.rfind('"', 0, last) if last > 0 else -1
        for at in (before, last):
            if at >= 0 and self._PARTIAL.match(text, at):
                return at
        return None


class _Buffer:
    """A text file read in blocks; ``text[pos:]`` is what is not parsed yet, ``base`` the offset of ``text[0]``."""

    def __init__(self, handle, chunk):
        self.handle, self.chunk = handle, chunk
        self.text, self.pos, self.base = "", 0, 0
        self.lines, self.last_newline = 0, -1  # newlines dropped so far, offset of the last one
        self.eof = False

    def more(self, size=None):
        """Drop the parsed text and read another block; False at the end of the file."""
        if self.eof:
            return False
        block = self.handle.read(size or self.chunk)
        if not block:
            self.eof = True
            return False
        done = self.text[:self.pos]
        if done:
            newlines = done.count("\n")
            if newlines:
                self.lines += newlines
                self.last_newline = self.base + done.rfind("\n")
            self.text, self.base, self.pos = self.text[self.pos:], self.base + self.pos, 0
        self.text += block
        return True

    def peek(self):
        """The next character that is not whitespace ("" at the end of the file), not consumed."""
        while True:
            self.pos = _WS.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def value(self, raw=False):
        """Decode the next value (after whitespace) with the json module's decoder; ``raw``: ``(value, its text)``."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
                # a number ("1" of "1.5", "1e" of "1e5") may end at the block's cut: want a few characters after it
                if self.eof or len(self.text) - end >= 3:
                    start, self.pos = self.pos, end
                    return (value, self.text[start:end]) if raw else value
            except json.JSONDecodeError as err:
                cut = err.pos + _CUT_MARGIN >= len(self.text) or err.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise self.error(err.msg, err.pos) from None
            self.more(max(self.chunk, len(self.text) - self.pos))  # a long value: read as much again

    def error(self, msg, pos=None):
        """:class:`json.JSONDecodeError` with the line, column and offset in the whole file, as json.load says."""
        pos = self.pos if pos is None else pos
        before = self.text.count("\n", 0, pos)
        newline = self.text.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.base + pos - self.last_newline
        err = json.JSONDecodeError.__new__(json.JSONDecodeError)
        ValueError.__init__(err, f"{msg}: line {self.lines + before + 1} column {column} (char {self.base + pos})")
        err.msg, err.doc, err.pos = msg, None, self.base + pos
        err.lineno, err.colno = self.lines + before + 1, column
        return err

    def expect(self, char, msg):
        if self.peek() != char:
            raise self.error(msg)
        self.pos += 1


class Items:
    """The items of one streamed array, decoded one at a time (iterate once, before reading on); ``raw``: each as
    ``(value, its text in the file)``."""

    def __init__(self, buffer, raw=False):
        self._buffer, self._started, self._done, self._raw = buffer, False, False, raw

    def __iter__(self):
        return self

    def __next__(self):
        buffer = self._buffer
        if self._done:
            raise StopIteration
        if self._started:
            if buffer.peek() == "]":
                return self._end()
            buffer.expect(",", "Expecting ',' delimiter")
            return buffer.value(self._raw)
        self._started = True
        buffer.expect("[", "Expecting '['")
        if buffer.peek() == "]":
            return self._end()
        return buffer.value(self._raw)

    def _end(self):
        self._buffer.pos += 1
        self._done = True
        raise StopIteration


def read_members(path, streamed=(), chunk=None, raw=False, without=()):
    """Yield ``(key, value)`` for each member of the JSON object in ``path``, in file order.

    The value of a key in ``streamed`` that holds an array is an :class:`Items` iterator (items not read by the
    caller are skipped when the next member is asked for; ``raw``: with their texts); every other value is decoded
    whole. ``without``: member names left out where they hold arrays of arrays of numbers (:class:`_Without`; the
    texts and error offsets are then those of the file without them). Invalid JSON raises the
    :class:`json.JSONDecodeError` that :func:`json.load` raises; valid JSON that is no object :class:`NotAnObject`.
    """
    with open(path, encoding="utf-8") as handle:
        buffer = _Buffer(_Without(handle, without) if without else handle, chunk or CHUNK)
        if buffer.peek() != "{":
            buffer.value()
            if buffer.peek():
                raise buffer.error("Extra data")
            raise NotAnObject(f"{path}: not a JSON object")
        buffer.pos += 1
        closing = buffer.peek() == "}"
        while not closing:
            if buffer.peek() != '"':
                raise buffer.error("Expecting property name enclosed in double quotes")
            key = buffer.value()
            buffer.expect(":", "Expecting ':' delimiter")
            if key in streamed and buffer.peek() == "[":
                items = Items(buffer, raw)
                yield key, items
                for _ in items:
                    pass
            else:
                yield key, buffer.value()
            closing = buffer.peek() == "}"
            if not closing:
                buffer.expect(",", "Expecting ',' delimiter")
        buffer.pos += 1
        if buffer.peek():
            raise buffer.error("Extra data")


def read_document(path, key, chunk=None, raw=False, without=()):
    """``(header, items)``: ``items`` yields the items of the top-level array ``key`` (``raw``: ``(item, its text)``;
    ``without``: see :func:`read_members`); ``header`` gets every other member as it is read (complete once ``items``
    is exhausted), and ``key`` itself as ``[]``."""
    header = {}

    def items():
        for name, value in read_members(path, (key,), chunk, raw, without):
            if isinstance(value, Items):
                header[name] = []
                yield from value
            else:
                header[name] = value
    return header, items()


def write_object(path, members, key, item_texts, late=None):
    """Write ``{**members, key: [...], **late()}`` as compact JSON with sorted keys, atomically, streaming the array.

    ``item_texts`` yields each item's :func:`compact` text; ``late`` (optional) returns the members that are known
    only once the items are written, which must sort after ``key``. The bytes equal
    ``dumps_json({**members, key: [items], **late()}, compact=True)``.
    """
    mark = "\u0000" + key + "\u0000"
    quoted = json.dumps(mark, ensure_ascii=False)
    before = dumps_json({**members, key: mark}, compact=True).split(quoted, 1)[0]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(before + "[")
        for n, text in enumerate(item_texts):
            handle.write(("," if n else "") + text)
        head, after = dumps_json({**members, key: mark, **(late() if late else {})}, compact=True).split(quoted, 1)
        if head != before:
            raise ValueError(f"late members must sort after {key!r}")
        handle.write("]" + after)
