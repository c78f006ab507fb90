"""Making ticket text inert in Slack mrkdwn, and cutting text to Block Kit limits safely.

Untrusted text (anything from a ticket) goes through `untrusted()`:
- `&`, `<`, `>` are escaped, so no `<!channel>`, `<@U…>`, `<!subteam^…>`,
  `<#C…>`, `<!date^…>` or `<https://evil|label>` can be formed;
- styling characters `* _ ~ `` ` `` are wrapped in zero-width joiners, so they can
  neither open nor close bold/italic/strike/code (Slack needs a word boundary);
- every `&gt;` gets a joiner in front, so no line starts a block quote;
- `@channel`/`@here`/`@everyone` get a joiner after the `@` (inert even if
  someone later enables `link_names`); `](` is split so no markdown link forms;
- control, bidi-override and zero-width characters from the ticket are dropped.
Bare URLs stay as text (Slack shows them as themselves); we post with
`unfurl_links=False`/`unfurl_media=False` so no preview card can relabel them.
"""

from __future__ import annotations

import re
from urllib.parse import quote

ZWJ = "\u200d"
ELLIPSIS = "…"

_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_GUARD_STYLE = {ord(c): f"{ZWJ}{c}{ZWJ}" for c in "*_~`"}
RAW_MAX = 3001  # no Slack text we send holds more; escaping only makes text longer
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone|group)\b)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_SAFE_URL = re.compile(r"^https?://[^\s<>|\"]+$", re.IGNORECASE)


def trusted(text: str) -> str:
    """Escape config text (rule names, labels) so `&`, `<`, `>` display as typed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def untrusted(text: object, *, multiline: bool = False) -> str:
    """Ticket text made inert for mrkdwn: no mention, link, date token, quote or styling survives.

    Input past `RAW_MAX` characters is dropped up front: the caller cuts to a
    Block Kit limit (<= 3000) afterwards anyway, with an ellipsis.
    """
    raw = "" if text is None else str(text)
    clipped = len(raw) > RAW_MAX * 4
    raw = _INVISIBLE.sub("", raw[: RAW_MAX * 4].replace("\r\n", "\n").replace("\r", "\n"))
    if multiline:
        raw = "\n".join(_SPACES.sub(" ", line).strip() for line in raw.split("\n"))
        raw = re.sub(r"\n{3,}", "\n\n", raw).strip()
    else:
        raw = _SPACES.sub(" ", raw).strip()
    if clipped or len(raw) > RAW_MAX:
        raw = raw[:RAW_MAX] + ELLIPSIS
    out = trusted(raw).translate(_GUARD_STYLE)
    out = out.replace("&gt;", ZWJ + "&gt;")
    out = _BROADCAST.sub("@" + ZWJ, out)
    return out.replace("](", "]" + ZWJ + "(")


def slack_len(text: str) -> int:
    """Length as Slack counts it, conservatively in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` (Slack length) with an ellipsis, never inside an entity, a link or a guard."""
    if slack_len(text) <= limit:
        return text
    budget = max(limit - 1, 0)
    used = 0
    end = 0
    for end, char in enumerate(text):  # noqa: B007 - `end` is used after the loop
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
    cut = text[:end]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    opening = cut.rfind("<")
    if opening > cut.rfind(">"):
        cut = cut[:opening]
    cut = cut.rstrip(ZWJ + "*_~`")
    return cut + ELLIPSIS


def link(url: str, label: str) -> str:
    """`<url|label>` for an http(s) helpdesk URL (label already escaped); just the label otherwise."""
    url = (url or "").strip()
    if not _SAFE_URL.match(url):
        return label
    safe = quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")
    return f"<{trusted(safe)}|{label}>" if label else f"<{trusted(safe)}>"
