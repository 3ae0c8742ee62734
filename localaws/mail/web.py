"""Server-rendered pages of the mail catcher: a message list and one page per message.

Every value is escaped by Jinja's autoescape. An HTML body is served from its
own URL with a `sandbox` Content-Security-Policy and shown in a sandboxed
iframe, so its scripts never run and it never gets the page's origin. The
pages load no external assets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

import jinja2
from aiohttp import web

from localaws.mail.mime import DecodedMessage, decode_message
from localaws.mail.store import MessageStore, StoredMessage

PAGE_SIZE = 50

PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; form-action 'none'; base-uri 'none'"
)
# `sandbox` without allow-scripts or allow-same-origin gives the document an
# opaque origin and blocks its scripts, even when it is opened outside the iframe.
HTML_BODY_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_TEMPLATES = {
    "base.html": """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{% block title %}{% endblock %} - localaws mail</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
th { background: #f3f3f3; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f8f8; padding: 0.8rem; }
iframe { width: 100%; height: 32rem; border: 1px solid #ccc; }
.muted { color: #777; }
</style>
</head>
<body>
<p><a href="/">All messages</a></p>
{% block content %}{% endblock %}
</body>
</html>
""",
    "index.html": """{% extends "base.html" %}
{% block title %}Messages{% endblock %}
{% block content %}
<h1>Messages</h1>
<p class="muted">{{ total }} message(s) stored.
{%- if total %} Showing {{ start + 1 }} to {{ start + rows|length }}, newest first.{% endif %}</p>
{% if rows %}
<table>
<thead><tr><th>From</th><th>To</th><th>Subject</th><th>Received</th></tr></thead>
<tbody>
{% for row in rows %}
<tr class="message">
<td>{{ row.sender }}</td>
<td>{{ row.recipients }}</td>
<td><a class="subject" href="{{ row.url }}">{{ row.subject or "(no subject)" }}</a></td>
<td>{{ row.created }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
<p>
{% if previous_start is not none %}<a href="/?start={{ previous_start }}">Newer</a>{% endif %}
{% if next_start is not none %}<a href="/?start={{ next_start }}">Older</a>{% endif %}
</p>
{% endblock %}
""",
    "message.html": """{% extends "base.html" %}
{% block title %}{{ decoded.subject or "(no subject)" }}{% endblock %}
{% block content %}
<h1>{{ decoded.subject or "(no subject)" }}</h1>
<table>
<tr><th>ID</th><td>{{ message.id }}</td></tr>
<tr><th>Received</th><td>{{ created }}</td></tr>
<tr><th>HELO</th><td>{{ message.helo }}</td></tr>
<tr><th>Envelope from</th><td>{{ message.mail_from }}</td></tr>
<tr><th>Envelope to</th><td>{{ message.rcpt_tos|join(", ") }}</td></tr>
</table>

<h2>Headers</h2>
<table>
{% for name, value in decoded.headers %}
<tr><th>{{ name }}</th><td>{{ value }}</td></tr>
{% endfor %}
</table>

<h2>Attachments</h2>
{% if decoded.attachments %}
<ul>
{% for attachment in decoded.attachments %}
<li class="attachment">{{ attachment.filename }}
<span class="muted">({{ attachment.content_type }}, {{ attachment.size }} bytes)</span></li>
{% endfor %}
</ul>
{% else %}
<p class="muted">None.</p>
{% endif %}

{% if decoded.html is not none %}
<h2>HTML body</h2>
<iframe sandbox src="{{ html_url }}" title="HTML body"></iframe>
{% endif %}
{% if decoded.text is not none %}
<h2>Text body</h2>
<pre>{{ decoded.text }}</pre>
{% endif %}
{% if decoded.html is none and decoded.text is none %}
<h2>Raw message</h2>
<pre>{{ raw_text }}</pre>
{% endif %}
<p><a href="{{ download_url }}">Download the raw message</a></p>
{% endblock %}
""",
}

_environment = jinja2.Environment(
    loader=jinja2.DictLoader(_TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class _ListRow:
    url: str
    sender: str
    recipients: str
    subject: str
    created: str


def message_page_url(message_id: str) -> str:
    """Return the path of a message's page."""
    return f"/messages/{quote(message_id, safe='@')}"


def setup_routes(app: web.Application, store: MessageStore) -> None:
    """Add the HTML pages to `app`."""
    pages = _Pages(store)
    app.router.add_get("/", pages.index)
    app.router.add_get("/messages/{id}", pages.message)
    app.router.add_get("/messages/{id}/html", pages.html_body)


class _Pages:
    def __init__(self, store: MessageStore) -> None:
        self._store = store

    async def index(self, request: web.Request) -> web.Response:
        start = _non_negative_int(request.query.get("start"))
        html = await asyncio.to_thread(self._render_index, start)
        return _html_response(html, PAGE_POLICY)

    async def message(self, request: web.Request) -> web.Response:
        message_id = request.match_info["id"]
        html = await asyncio.to_thread(self._render_message, message_id)
        return _html_response(html, PAGE_POLICY)

    async def html_body(self, request: web.Request) -> web.Response:
        message_id = request.match_info["id"]
        message = await asyncio.to_thread(self._load, message_id)
        decoded = await asyncio.to_thread(decode_message, message.raw)
        if decoded.html is None:
            raise web.HTTPNotFound(text=f"Message {message_id} has no HTML body.")
        return _html_response(decoded.html, HTML_BODY_POLICY)

    def _render_index(self, start: int) -> str:
        total = self._store.count()
        messages = self._store.list_messages(start, PAGE_SIZE)
        rows = [_list_row(message) for message in messages]
        next_start = start + PAGE_SIZE if start + PAGE_SIZE < total else None
        previous_start = max(start - PAGE_SIZE, 0) if start > 0 else None
        return _environment.get_template("index.html").render(
            rows=rows,
            total=total,
            start=start,
            next_start=next_start,
            previous_start=previous_start,
        )

    def _render_message(self, message_id: str) -> str:
        message = self._load(message_id)
        decoded = decode_message(message.raw)
        quoted_id = quote(message_id, safe="@")
        return _environment.get_template("message.html").render(
            message=message,
            decoded=decoded,
            created=_format_time(message),
            html_url=f"/messages/{quoted_id}/html",
            download_url=f"/api/v1/messages/{quoted_id}/download",
            raw_text=message.raw.decode("utf-8", errors="replace"),
        )

    def _load(self, message_id: str) -> StoredMessage:
        message = self._store.get(message_id)
        if message is None:
            raise web.HTTPNotFound(
                text=f"Message {message_id} not found. It may have been deleted; see / for"
                " the stored messages."
            )
        return message


def _list_row(message: StoredMessage) -> _ListRow:
    decoded: DecodedMessage = decode_message(message.raw)
    return _ListRow(
        url=message_page_url(message.id),
        sender=decoded.sender or message.mail_from,
        recipients=decoded.recipients or ", ".join(message.rcpt_tos),
        subject=decoded.subject,
        created=_format_time(message),
    )


def _format_time(message: StoredMessage) -> str:
    return message.created.strftime("%Y-%m-%d %H:%M:%S UTC")


def _non_negative_int(value: str | None) -> int:
    if value is None or not value.isdigit():
        return 0
    return int(value)


def _html_response(html: str, policy: str) -> web.Response:
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
