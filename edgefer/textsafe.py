"""Text from files (labels, file and machine names) made safe for where it is shown or written.

A label, a file name or a machine name can hold anything: a newline that forges an extra line of
output, an ANSI escape that rewrites the terminal, a ``|`` or ``<script>`` that breaks a Markdown or
HTML table, a leading ``=`` that a spreadsheet runs as a formula. Each place edgefer shows such text
goes through one of these:

- ``printable``: terminals and one-line messages; control characters (C0, C1, DEL, bidirectional
  overrides) become visible ``\\xNN`` / ``\\uNNNN`` escapes;
- ``markdown_cell``: Markdown tables (which render as HTML): printable, then HTML and Markdown
  punctuation escaped;
- ``csv_safe`` (through ``edgefer.fileio.csv_cell``, which every CSV writer uses): printable, then
  OWASP's rule against formula injection (a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return gets a leading ``'``); numbers are kept;
- ``plot_label``: matplotlib text: printable, with ``$`` escaped (mathtext);
- ``json_text``: JSON without bare NaN or Infinity (not JSON): non-finite floats become null.
"""

from __future__ import annotations

import json
import math
import re

#: C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
#: What can start raw HTML, an autolink or an entity in CommonMark: "<" before a letter, "/", "!" or "?", and
#: "&" before a letter or "#". A "<" before a space or a digit ("30 samples < 64") is plain text and stays.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])|&(?=[A-Za-z#])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape, str(text))


def _escape(match: re.Match) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def markdown_cell(text: object) -> str:
    """Text for a Markdown table cell: printable; Markdown emphasis, code, link and table punctuation
    backslash-escaped (``|`` cannot end the cell nor ``[x](...)`` make a link); a ``<`` or ``&`` that could
    start HTML or an entity written as one (``<script>`` -> ``&lt;script>``); ``30 samples < 64`` stays."""
    safe = _MARKDOWN.sub(r"\\\1", printable(text))
    return _HTML_START.sub(lambda m: "&lt;" if m.group() == "<" else "&amp;", safe)


def csv_safe(text: str) -> str:
    """Text for a CSV cell: printable and, when a spreadsheet would read it as a formula, prefixed with
    ``'`` (OWASP CSV injection). ``edgefer.fileio.csv_cell`` applies it to every text cell."""
    return printable("'" + text if text.startswith(_FORMULA_START) else text)


def plot_label(text: object) -> str:
    """Text for a matplotlib label: printable, and ``$`` escaped so that it is not read as mathtext."""
    return printable(text).replace("$", r"\$")


def json_text(data: object, **options: object) -> str:
    """``json.dumps`` with every NaN or infinite float written as null (bare NaN is not JSON)."""
    return json.dumps(_finite(data), allow_nan=False, **options)


def _finite(data: object) -> object:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data
